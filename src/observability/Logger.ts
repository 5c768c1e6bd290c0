/**
 * Structured JSON logs, one object per line: `timestamp`, `level`, `message`, the log annotations as
 * top-level fields (`messageId`, `trackingId`, `clientId`, ...), `spans` and `cause` when there are
 * any. (No fiber id: it names nothing an operator can look up, and changes from line to line.)
 *
 * Nothing secret or personal is written: every E.164 number anywhere in a line (message, annotation,
 * cause) is masked with `maskNumber`, API keys keep only their public key id, and annotations whose
 * name says secret (`apiKey`, `secret`, `password`, `token`, `authorization`) are replaced.
 */
import { Cause, Effect, FiberRef, HashMap, Inspectable, List, Logger, LogLevel, Redacted } from "effect"
import type { MessageEvent, SmsRequested } from "../domain/Message.js"
import { maskNumber } from "../domain/PhoneNumber.js"

const E164_ANYWHERE = /\+[1-9]\d{6,14}(?!\d)/g
const PHONE_STREAM = /\bphone-(\d{7,15})\b/g
const API_KEY = /\b(smsgw_[0-9a-f]{16})\.[A-Za-z0-9_-]+/g
const SECRET_NAME = /(api[-_]?key|secret|password|passwd|token|authorization|credential)/i

const RESERVED = new Set(["timestamp", "level", "message", "spans", "cause"])

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
  Logger.make<unknown, void>(({ annotations, cause, date, logLevel, message, spans }) => {
    const entry: Record<string, unknown> = {
      timestamp: date.toISOString(),
      level: logLevel.label,
      message: messageText(message)
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
 * Whether Info lines are written. The actors ask once per batch, and build their per-message lines
 * only when it is true: at `LOG_LEVEL=Warning` (the bench) those lines cost nothing.
 */
export const infoEnabled: Effect.Effect<boolean> = Effect.map(
  FiberRef.get(FiberRef.currentMinimumLogLevel),
  (minimum) => LogLevel.lessThanEqual(minimum, LogLevel.Info)
)

/** The recorded events of one message, with the request that names its number and tracking id. */
export interface RecordedMessage {
  readonly request: SmsRequested
  readonly events: ReadonlyArray<MessageEvent>
  /** the work item's, when the caller has it; else the request's, else the message id */
  readonly trackingId?: string | undefined
  /** intake's refusal (inactive number, no provider): its `SmsFailed` reads "message refused" */
  readonly refused?: boolean
}

/** The line of one event: its message text and fields (besides the message's own). */
const eventLine = (event: MessageEvent, refused: boolean): readonly [string, Record<string, unknown>] => {
  switch (event._tag) {
    case "SmsRequested":
      return ["message requested", { clientId: event.clientId }]
    case "SmsDispatched":
      return [
        "message dispatched",
        { provider: event.provider, providerMessageId: event.providerMessageId, attempt: event.attempt }
      ]
    case "SmsRetried":
      return [
        "message retrying",
        {
          provider: event.provider,
          attempt: event.attempt,
          reason: event.reason,
          detail: event.detail,
          nextAttemptAt: event.nextAttemptAt,
          nextProvider: event.nextProvider ?? event.provider
        }
      ]
    case "SmsDelivered":
      // a report against a final status is on the record for the audit only: not "delivered"
      return event.contradicts === undefined
        ? [
            "message delivered",
            {
              provider: event.provider,
              providerMessageId: event.providerMessageId,
              rawStatus: event.rawStatus
            }
          ]
        : [
            "contradicting report",
            {
              provider: event.provider,
              reported: "delivered",
              final: event.contradicts,
              rawStatus: event.rawStatus
            }
          ]
    case "SmsFailed": {
      const fields = {
        provider: event.provider,
        reason: event.reason,
        code: event.code,
        detail: event.detail
      }
      if (event.contradicts !== undefined) {
        return ["contradicting report", { ...fields, reported: "failed", final: event.contradicts }]
      }
      return [refused ? "message refused" : "message failed", fields]
    }
    case "SmsStatusReported":
      return ["message status reported", { provider: event.provider, rawStatus: event.rawStatus }]
    case "SmsResubmitted":
      return ["message resubmitted", { by: event.by, reason: event.reason, provider: event.provider }]
    case "SmsStatusUnknown":
      return ["message status unknown", { provider: event.provider, deadlineMs: event.deadlineMs }]
    default: {
      // an event this table does not name yet still gets its line
      const other = event as { readonly _tag: string; readonly provider?: unknown }
      return [`message event ${other._tag}`, { provider: other.provider }]
    }
  }
}

/**
 * One Info line per recorded event, each with `messageId`, `trackingId` and the masked `to`: grepping
 * a message id shows its whole life. Callers check `infoEnabled` first (once per batch).
 */
export const logMessageEvents = (recorded: ReadonlyArray<RecordedMessage>): Effect.Effect<void> =>
  Effect.suspend(() => {
    const lines: Array<Effect.Effect<void>> = []
    for (const { events, refused, request, trackingId } of recorded) {
      const to = maskNumber(request.to)
      // a provider's text may quote the number without its "+", which `scrub` would not see
      const digits = request.to.slice(1)
      const hide = (text: unknown) => (typeof text === "string" ? text.split(digits).join(to.slice(1)) : text)
      for (const event of events) {
        const [message, fields] = eventLine(event, refused === true)
        const annotations: Record<string, unknown> = {
          messageId: request.messageId,
          trackingId: trackingId ?? request.trackingId ?? request.messageId,
          to
        }
        for (const [key, value] of Object.entries(fields)) {
          if (value !== undefined) annotations[key] = hide(value)
        }
        lines.push(Effect.annotateLogs(Effect.logInfo(message), annotations))
      }
    }
    return Effect.all(lines, { discard: true })
  })

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
