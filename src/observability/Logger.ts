/**
 * Structured JSON logs, one object per line: `timestamp`, `level`, `message`, `fiber`, the log
 * annotations as top-level fields (`messageId`, `trackingId`, `clientId`, ...), `spans` and `cause`
 * when there are any.
 *
 * Nothing secret or personal is written: every E.164 number anywhere in a line (message, annotation,
 * cause) is masked with `maskNumber`, API keys keep only their public key id, and annotations whose
 * name says secret (`apiKey`, `secret`, `password`, `token`, `authorization`) are replaced.
 */
import { Cause, FiberId, HashMap, Inspectable, List, Logger, Redacted } from "effect"
import { maskNumber } from "../domain/PhoneNumber.js"

const E164_ANYWHERE = /\+[1-9]\d{6,14}(?!\d)/g
const PHONE_STREAM = /\bphone-(\d{7,15})\b/g
const API_KEY = /\b(smsgw_[0-9a-f]{16})\.[A-Za-z0-9_-]+/g
const SECRET_NAME = /(api[-_]?key|secret|password|passwd|token|authorization|credential)/i

const RESERVED = new Set(["timestamp", "level", "message", "fiber", "spans", "cause"])

/** Masks phone numbers and API key secrets in free text. */
export const scrub = (text: string): string =>
  text
    .replace(E164_ANYWHERE, (number) => maskNumber(number))
    .replace(PHONE_STREAM, (_, digits: string) => `phone-${maskNumber(`+${digits}`).slice(1)}`)
    .replace(API_KEY, (_, keyId: string) => `${keyId}.***`)

const toJsonSafe = (value: unknown, depth = 0): unknown => {
  if (value === null || value === undefined) return value
  if (typeof value === "string") return scrub(value)
  if (typeof value === "number" || typeof value === "boolean") return value
  if (typeof value === "bigint") return value.toString()
  if (Redacted.isRedacted(value)) return "<redacted>"
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? "Invalid Date" : value.toISOString()
  if (depth > 6) return "[…]"
  if (Array.isArray(value)) return value.map((item) => toJsonSafe(item, depth + 1))
  if (value instanceof Error) return scrub(value.message)
  if (typeof value === "object") {
    const out: Record<string, unknown> = {}
    const source = Inspectable.toJSON(value)
    if (typeof source !== "object" || source === null) return toJsonSafe(source, depth + 1)
    for (const [key, inner] of Object.entries(source)) {
      out[key] = SECRET_NAME.test(key) ? "<redacted>" : toJsonSafe(inner, depth + 1)
    }
    return out
  }
  return scrub(String(value))
}

const messageText = (message: unknown): string => {
  const parts = Array.isArray(message) ? message : [message]
  return parts
    .map((part) => (typeof part === "string" ? part : JSON.stringify(toJsonSafe(part))))
    .map(scrub)
    .join(" ")
}

/** A JSON-lines logger writing each line with `write`. */
export const jsonLogger = (write: (line: string) => void) =>
  Logger.make<unknown, void>(({ annotations, cause, date, fiberId, logLevel, message, spans }) => {
    const entry: Record<string, unknown> = {
      timestamp: date.toISOString(),
      level: logLevel.label,
      message: messageText(message),
      fiber: FiberId.threadName(fiberId)
    }
    for (const [key, value] of HashMap.toEntries(annotations)) {
      const name = RESERVED.has(key) ? `annotation.${key}` : key
      entry[name] = SECRET_NAME.test(key) ? "<redacted>" : toJsonSafe(value)
    }
    if (List.isCons(spans)) {
      const now = date.getTime()
      entry.spans = Object.fromEntries([...spans].map((span) => [span.label, now - span.startTime]))
    }
    if (!Cause.isEmpty(cause)) entry.cause = scrub(Cause.pretty(cause, { renderErrorCause: true }))
    let text: string
    try {
      text = JSON.stringify(entry)
    } catch {
      text = JSON.stringify({
        timestamp: entry.timestamp,
        level: entry.level,
        message: String(entry.message)
      })
    }
    write(text)
  })

/** A logfmt logger with the same fields and masking, for people reading a terminal (`LOG_FORMAT=logfmt`). */
export const logfmtLogger = (write: (line: string) => void) => {
  let last = "{}"
  const json = jsonLogger((line) => {
    last = line
  })
  return Logger.make<unknown, void>((options) => {
    json.log(options)
    const fields: Array<string> = []
    for (const [key, value] of Object.entries(JSON.parse(last) as Record<string, unknown>)) {
      if (value === undefined || value === null) continue
      const text = typeof value === "string" ? value : JSON.stringify(value)
      fields.push(`${key}=${/[\s"=]/.test(text) || text === "" ? JSON.stringify(text) : text}`)
    }
    write(fields.join(" "))
  })
}

/**
 * Lines written in one turn of the event loop leave in one write: stdout is a pipe or a file, where
 * node writes synchronously, and a write per line was a syscall per message on the hot path. What
 * is pending is written before the process exits.
 */
let pending: Array<string> = []
const flush = () => {
  if (pending.length === 0) return
  const text = `${pending.join("\n")}\n`
  pending = []
  process.stdout.write(text)
}
process.on("exit", flush)

const stdout = (line: string) => {
  if (pending.length === 0) setImmediate(flush)
  pending.push(line)
}

/** The gateway's logger: JSON lines on stdout (or masked logfmt with `LOG_FORMAT=logfmt`). */
export const LoggerLive = Logger.replace(
  Logger.defaultLogger,
  process.env.LOG_FORMAT === "logfmt" ? logfmtLogger(stdout) : jsonLogger(stdout)
)
