/** The gateway's views as the `.proto`'s messages: timestamps, the status enum, event data as a Struct. */
import type { RecordedEvent } from "../eventstore/EventStore.js"
import type { MessageStatusView } from "../projections/MessageStatus.js"
import type { Event, Message, MessageStatus, Struct, Timestamp, Value } from "./Proto.js"

export const toTimestamp = (at: Date | string): Timestamp => {
  const ms = typeof at === "string" ? Date.parse(at) : at.getTime()
  const seconds = Math.floor(ms / 1000)
  return { seconds, nanos: (ms - seconds * 1000) * 1_000_000 }
}

const optionalTimestamp = (at: string | undefined) => (at === undefined ? undefined : toTimestamp(at))

/** Seconds from 0001-01-01 to 9999-12-31 (the range `google.protobuf.Timestamp` allows). */
const MIN_SECONDS = -62_135_596_800
const MAX_SECONDS = 253_402_300_799

/** The moment a Timestamp names, or undefined for one out of its range. */
export const dateOf = (timestamp: Timestamp): Date | undefined => {
  const seconds = timestamp.seconds ?? 0
  const nanos = timestamp.nanos ?? 0
  if (!Number.isInteger(seconds) || seconds < MIN_SECONDS || seconds > MAX_SECONDS) return undefined
  if (!Number.isInteger(nanos) || nanos < 0 || nanos > 999_999_999) return undefined
  return new Date(seconds * 1000 + Math.floor(nanos / 1_000_000))
}

const STATUS: Readonly<Record<MessageStatusView["status"], MessageStatus>> = {
  requested: "MESSAGE_STATUS_REQUESTED",
  dispatched: "MESSAGE_STATUS_DISPATCHED",
  retrying: "MESSAGE_STATUS_RETRYING",
  delivered: "MESSAGE_STATUS_DELIVERED",
  failed: "MESSAGE_STATUS_FAILED",
  unknown: "MESSAGE_STATUS_UNKNOWN"
}

export const toMessage = (view: MessageStatusView): Message => ({
  messageId: view.messageId,
  clientId: view.clientId,
  status: STATUS[view.status],
  to: view.to,
  from: view.from,
  encoding: view.encoding,
  segments: view.segments,
  provider: view.provider,
  providerMessageId: view.providerMessageId,
  attempts: view.attempts,
  lastError: view.lastError,
  failureReason: view.failureReason,
  requestedAt: toTimestamp(view.requestedAt),
  dispatchedAt: optionalTimestamp(view.dispatchedAt),
  retriedAt: optionalTimestamp(view.retriedAt),
  nextAttemptAt: optionalTimestamp(view.nextAttemptAt),
  deliveredAt: optionalTimestamp(view.deliveredAt),
  failedAt: optionalTimestamp(view.failedAt),
  resubmittedAt: optionalTimestamp(view.resubmittedAt),
  unknownAt: optionalTimestamp(view.unknownAt),
  providerStatus: view.providerStatus,
  providerStatusAt: optionalTimestamp(view.providerStatusAt),
  revision: view.revision,
  position: view.position
})

/** A JSON value as a `google.protobuf.Value`. */
const toValue = (value: unknown): Value => {
  if (value === null || value === undefined) return { nullValue: "NULL_VALUE" }
  if (typeof value === "number") return { numberValue: value }
  if (typeof value === "string") return { stringValue: value }
  if (typeof value === "boolean") return { boolValue: value }
  if (Array.isArray(value)) return { listValue: { values: value.map(toValue) } }
  if (typeof value === "object") return { structValue: toStruct(value) }
  return { stringValue: String(value) }
}

/** A JSON object as a `google.protobuf.Struct` (anything else is held under the key `value`). */
export const toStruct = (value: unknown): Struct => {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    return { fields: { value: toValue(value) } }
  const fields: Record<string, Value> = {}
  for (const [key, inner] of Object.entries(value)) if (inner !== undefined) fields[key] = toValue(inner)
  return { fields }
}

export const toEvent = (record: RecordedEvent): Event => ({
  revision: record.revision,
  position: record.position,
  type: record.type,
  recordedAt: toTimestamp(record.recordedAt),
  eventId: record.id,
  data: toStruct(record.data)
})
