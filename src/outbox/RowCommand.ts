/**
 * A claimed row becomes a `SendSms` (or a refusal naming the row's column): pure, so the claim's
 * decisions are plain functions of the row and the mapping.
 *
 * The idempotency key is the table and the row's primary key (`outbox:<table>:<id>`), so the message
 * id (`uuidv5(clientId + "\n" + key)`) is the same however often the row is claimed: a claim that
 * stored the command and crashed before marking the row finds the same message on the next claim.
 */
import { Either, Predicate } from "effect"
import { messageIdFor, type MessageId } from "../domain/Ids.js"
import { parseSendSms, type SendSms, type SendSmsLimits } from "../domain/SendSms.js"
import type { ColumnRole, Mapping } from "./Mapping.js"

/** A claimed row: its key (the primary key, as text) and its values by column role. */
export interface OutboxRow {
  readonly key: string
  readonly values: Readonly<Partial<Record<ColumnRole, unknown>>>
}

export type RowPlan =
  | {
      readonly _tag: "Send"
      readonly key: string
      readonly command: SendSms
      readonly messageId: MessageId
      /** the command as stored on `sms.commands.send` */
      readonly payload: string
    }
  | {
      readonly _tag: "Reject"
      readonly key: string
      /** the row's column (or `$`), as the application knows it */
      readonly column: string
      readonly reason: string
      /** what the row gave, for `sms.rejects` */
      readonly payload: string
    }

const KEY_PREFIX = "outbox:"

/** The idempotency key of a row: the same for every claim of it. */
export const idempotencyKeyFor = (table: string, key: string): string => `${KEY_PREFIX}${table}:${key}`

/** The row a message came from, when its idempotency key is one of this table's. */
export const rowKeyOf = (table: string, idempotencyKey: string): string | undefined => {
  const prefix = `${KEY_PREFIX}${table}:`
  return idempotencyKey.startsWith(prefix) ? idempotencyKey.slice(prefix.length) : undefined
}

/** Databases hand back `''` for many an unset text column: blank is absent. */
const present = (value: unknown): boolean =>
  value !== null && value !== undefined && !(typeof value === "string" && value.trim() === "")

type Field = { readonly ok: unknown } | { readonly problem: string }

const asText = (value: unknown): unknown =>
  typeof value === "number" || typeof value === "bigint" ? String(value) : value

/** `providers`: a JSON array (jsonb/JSON columns arrive parsed), JSON text, or `a, b` text. */
const providersField = (value: unknown): Field => {
  if (Array.isArray(value)) return { ok: value }
  if (typeof value !== "string") return { ok: value }
  const text = value.trim()
  if (text.startsWith("[")) {
    try {
      return { ok: JSON.parse(text) as unknown }
    } catch {
      return { problem: "is not a valid JSON array" }
    }
  }
  return { ok: text.split(",").map((id) => id.trim()) }
}

/** `metadata`: a JSON object (parsed by the driver, or as text). */
const metadataField = (value: unknown): Field => {
  if (typeof value !== "string") return { ok: value }
  try {
    const parsed = JSON.parse(value) as unknown
    return Predicate.isRecord(parsed) ? { ok: parsed } : { problem: "must be a JSON object" }
  } catch {
    return { problem: "is not valid JSON" }
  }
}

/** `validUntil`: a timestamp column (a Date) or ISO text. */
const validUntilField = (value: unknown): Field => {
  if (value instanceof Date) {
    return Number.isNaN(value.getTime()) ? { problem: "is not a valid time" } : { ok: value.toISOString() }
  }
  return { ok: value }
}

/** The column a `SendSms` field came from, for the refusal: `to` -> `recipient`, `providers.1` -> `providers.1`. */
export const columnOfField = (mapping: Mapping, field: string): string => {
  const [head = field, ...rest] = field.split(".")
  const role: ColumnRole | undefined =
    head === "idempotencyKey" ? "id" : head === "trackingId" ? undefined : (head as ColumnRole)
  const column = role === undefined ? undefined : mapping.columns[role]
  if (column === undefined) return head === "clientId" ? "defaultClientId" : field
  return [column, ...rest].join(".")
}

/** The command's fields a row may hold (each column role is the field it fills), and how each is read. */
const COMMAND_FIELDS: ReadonlyArray<readonly [ColumnRole & string, (value: unknown) => Field]> = [
  ["to", (value) => ({ ok: asText(value) })],
  ["body", (value) => ({ ok: value })],
  ["from", (value) => ({ ok: asText(value) })],
  ["providers", providersField],
  ["validUntil", validUntilField],
  ["metadata", metadataField]
]

/**
 * The plan for one row: the command it asks for, or why it cannot be sent. The command goes through
 * `parseSendSms` with the gateway's limits, exactly as a command published on NATS does.
 */
export const planRow = (row: OutboxRow, mapping: Mapping, limits: SendSmsLimits): RowPlan => {
  const values = row.values
  const json: Record<string, unknown> = {
    clientId: present(values.clientId) ? asText(values.clientId) : mapping.defaultClientId,
    idempotencyKey: idempotencyKeyFor(mapping.table, row.key)
  }
  for (const [field, read] of COMMAND_FIELDS) {
    const value = values[field]
    if (!present(value)) continue
    const result = read(value)
    if ("problem" in result) {
      return {
        _tag: "Reject",
        key: row.key,
        column: columnOfField(mapping, field),
        reason: result.problem,
        payload: JSON.stringify(rowAsJson(row))
      }
    }
    json[field] = result.ok
  }
  const payload = JSON.stringify(json)
  const parsed = parseSendSms(payload, limits)
  if (Either.isLeft(parsed)) {
    return {
      _tag: "Reject",
      key: row.key,
      column: columnOfField(mapping, parsed.left.field),
      reason: parsed.left.reason,
      payload
    }
  }
  const command = parsed.right
  return {
    _tag: "Send",
    key: row.key,
    command,
    messageId: messageIdFor(command.clientId, command.idempotencyKey),
    payload
  }
}

/** The row's values as JSON can hold them (dates as ISO text, big integers as text), for `sms.rejects`. */
const rowAsJson = (row: OutboxRow): Record<string, unknown> => {
  const out: Record<string, unknown> = { key: row.key }
  for (const [role, value] of Object.entries(row.values)) {
    out[role] =
      value instanceof Date
        ? Number.isNaN(value.getTime())
          ? String(value)
          : value.toISOString()
        : typeof value === "bigint"
          ? String(value)
          : value
  }
  return out
}

/** Longest error text written to a row (its column may be narrow). */
export const MAX_ERROR_LENGTH = 500

/** The text a rejected row gets in its error column: `<column>: <reason>`. */
export const rejectionText = (column: string, reason: string): string =>
  `${column}: ${reason}`.slice(0, MAX_ERROR_LENGTH)
