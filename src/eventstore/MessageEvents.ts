/**
 * The storage codec of message events (see `EventCodec`), with a lean encoder and decoder: message
 * events are written and read on every step of every message, and the Schema's encode and decode
 * were a large share of the gateway's CPU and garbage. Both agree with the Schema
 * (test/eventstore/LeanCodec.test.ts); whatever the lean decoder does not recognise goes to the Schema.
 *
 * Its size (over 400 lines) is one codec per event type, each the Schema's and its lean twin side by
 * side, so a change to one is seen in the other.
 */
import type { MessageId } from "../domain/Ids.js"
import { dateFrom, stringRecord } from "../domain/PlainChecks.js"
import {
  FailureReason,
  MessageEvent,
  type ReportSource,
  RetryReason,
  SmsDelivered,
  SmsDispatched,
  SmsFailed,
  SmsRequested,
  SmsResubmitted,
  SmsRetried,
  SmsStatusReported,
  SmsStatusUnknown
} from "../domain/Message.js"
import { makeEventCodec } from "./EventCodec.js"

const identity = (event: MessageEvent): ReadonlyArray<string | number> => {
  switch (event._tag) {
    case "SmsRequested":
      return [event.messageId]
    case "SmsDispatched":
      return [event.messageId, event.attempt, event.providerMessageId]
    case "SmsRetried":
      return [event.messageId, event.attempt]
    case "SmsDelivered":
      return [event.messageId, event.providerMessageId]
    case "SmsFailed":
      return [event.messageId, event.reason, event.code ?? ""]
    case "SmsResubmitted":
      return [event.messageId, event.resubmittedAt.toISOString()]
    case "SmsStatusReported":
      return [event.messageId, event.rawStatus]
    case "SmsStatusUnknown":
      // once per dispatch: the decider records it only while that dispatch waits for its report
      return [event.messageId, "unknown", event.providerMessageId ?? ""]
  }
}

// ---------------------------------------------------------------------------------------------
// Encoding: the fields in the Schema's order (so the stored JSON is byte for byte what the Schema
// wrote), dates as ISO strings, an optional field left out when undefined (JSON drops it anyway).

type Data = Record<string, unknown>

const setOptional = (data: Data, key: string, value: unknown): void => {
  if (value !== undefined) data[key] = value
}

/** A record copied by assignment, as the Schema copies one: a `__proto__` key is dropped the same way. */
const copyRecord = (record: Readonly<Record<string, string>>): Record<string, string> => {
  const copy: Record<string, string> = {}
  for (const key of Object.keys(record)) copy[key] = record[key]
  return copy
}

/** The stored data of a message event: what `Schema.encodeSync(MessageEvent)` gives, without `_tag`. */
export const encodeMessageEvent = (event: MessageEvent): Data => {
  switch (event._tag) {
    case "SmsRequested": {
      const data: Data = {
        messageId: event.messageId,
        clientId: event.clientId,
        idempotencyKey: event.idempotencyKey,
        to: event.to
      }
      setOptional(data, "from", event.from)
      data.body = event.body
      data.encoding = event.encoding
      data.segments = event.segments
      setOptional(data, "providers", event.providers)
      setOptional(data, "validUntil", event.validUntil?.toISOString())
      setOptional(data, "metadata", event.metadata && copyRecord(event.metadata))
      setOptional(data, "trackingId", event.trackingId)
      setOptional(data, "traceparent", event.traceparent)
      data.requestedAt = event.requestedAt.toISOString()
      return data
    }
    case "SmsDispatched":
      return {
        messageId: event.messageId,
        provider: event.provider,
        providerMessageId: event.providerMessageId,
        attempt: event.attempt,
        dispatchedAt: event.dispatchedAt.toISOString()
      }
    case "SmsRetried": {
      const data: Data = {
        messageId: event.messageId,
        provider: event.provider,
        attempt: event.attempt,
        reason: event.reason
      }
      setOptional(data, "detail", event.detail)
      data.nextAttemptAt = event.nextAttemptAt.toISOString()
      setOptional(data, "nextProvider", event.nextProvider)
      return data
    }
    case "SmsDelivered": {
      const data: Data = {
        messageId: event.messageId,
        provider: event.provider,
        providerMessageId: event.providerMessageId,
        deliveredAt: event.deliveredAt.toISOString(),
        rawStatus: event.rawStatus
      }
      setOptional(data, "contradicts", event.contradicts)
      setOptional(data, "source", event.source)
      return data
    }
    case "SmsFailed": {
      const data: Data = { messageId: event.messageId, reason: event.reason, permanent: event.permanent }
      setOptional(data, "provider", event.provider)
      setOptional(data, "code", event.code)
      setOptional(data, "detail", event.detail)
      data.failedAt = event.failedAt.toISOString()
      setOptional(data, "contradicts", event.contradicts)
      setOptional(data, "source", event.source)
      return data
    }
    case "SmsResubmitted": {
      const data: Data = { messageId: event.messageId, by: event.by }
      setOptional(data, "reason", event.reason)
      setOptional(data, "provider", event.provider)
      data.resubmittedAt = event.resubmittedAt.toISOString()
      return data
    }
    case "SmsStatusReported":
      return {
        messageId: event.messageId,
        provider: event.provider,
        providerMessageId: event.providerMessageId,
        rawStatus: event.rawStatus,
        reportedAt: event.reportedAt.toISOString()
      }
    case "SmsStatusUnknown": {
      const data: Data = { messageId: event.messageId, provider: event.provider }
      setOptional(data, "providerMessageId", event.providerMessageId)
      data.deadlineMs = event.deadlineMs
      data.at = event.at.toISOString()
      return data
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding: each check is the one the Schema makes, so what passes here decodes to the same event.

/** `Schema.UUID`'s pattern (the one check of `MessageId`) */
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/i
const RETRY_REASONS: ReadonlySet<unknown> = new Set(RetryReason.literals)
const FAILURE_REASONS: ReadonlySet<unknown> = new Set(FailureReason.literals)

const isString = (value: unknown): value is string => typeof value === "string"
const isMessageId = (value: unknown): value is MessageId => typeof value === "string" && UUID.test(value)
const isRetryReason = (value: unknown): value is RetryReason => RETRY_REASONS.has(value)
const isFailureReason = (value: unknown): value is FailureReason => FAILURE_REASONS.has(value)
/** the final status a contradicting `SmsDelivered` / `SmsFailed` names: the other one */
const isFailedLiteral = (value: unknown): value is "failed" => value === "failed"
const isDeliveredLiteral = (value: unknown): value is "delivered" => value === "delivered"
/** how a final status was learnt, when not from a delivery report */
const isReportSource = (value: unknown): value is ReportSource => value === "status_query"
const isStrings = (value: unknown): value is ReadonlyArray<string> => {
  if (!Array.isArray(value)) return false
  for (let i = 0; i < value.length; i++) if (typeof value[i] !== "string") return false
  return true
}

/**
 * An optional field is usual when absent or of its type. A key present with `undefined` (never in
 * JSON) is left to the Schema, which keeps such a key where the lean path would drop it.
 */
const isOptional = <A>(
  data: Data,
  key: string,
  value: unknown,
  is: (value: unknown) => value is A
): value is A | undefined => (value === undefined ? !Object.hasOwn(data, key) : is(value))

/**
 * An event of a `Schema.TaggedClass` built from checked fields without its constructor, which copies
 * the fields, merges the Schema's defaults (of these events, only `_tag`) and validates. What it leaves
 * is the instance: its fields and `_tag` as own properties, in that order, on the class's prototype
 * (equal, hashed and encoded alike: MessageEvents.test.ts). The constructor's work was 4 % of a
 * rebuild's CPU and 2 % of the gateway's.
 */
const decoded = <A>(Class: (new (...args: never) => A) & { readonly _tag: string }, fields: object): A =>
  Object.assign(Object.create(Class.prototype) as object, fields, { _tag: Class._tag }) as A

const decodeRequested = (data: Data): SmsRequested | undefined => {
  const {
    messageId,
    clientId,
    idempotencyKey,
    to,
    from,
    body,
    encoding,
    segments,
    providers,
    trackingId,
    traceparent
  } = data
  const requestedAt = dateFrom(data.requestedAt)
  const validUntil = data.validUntil === undefined ? undefined : dateFrom(data.validUntil)
  const metadata = data.metadata === undefined ? undefined : stringRecord(data.metadata)
  if (
    !isMessageId(messageId) ||
    !isString(clientId) ||
    !isString(idempotencyKey) ||
    !isString(to) ||
    !isOptional(data, "from", from, isString) ||
    !isString(body) ||
    (encoding !== "GSM-7" && encoding !== "UCS-2") ||
    typeof segments !== "number" ||
    !isOptional(data, "providers", providers, isStrings) ||
    (validUntil === undefined && Object.hasOwn(data, "validUntil")) ||
    (metadata === undefined && Object.hasOwn(data, "metadata")) ||
    !isOptional(data, "trackingId", trackingId, isString) ||
    !isOptional(data, "traceparent", traceparent, isString) ||
    requestedAt === undefined
  ) {
    return undefined
  }
  return decoded(SmsRequested, {
    messageId,
    clientId,
    idempotencyKey,
    to,
    ...(from !== undefined && { from }),
    body,
    encoding,
    segments,
    // the Schema decodes an array to a new array: the decoded event shares nothing with the data
    ...(providers !== undefined && { providers: providers.slice() }),
    ...(validUntil !== undefined && { validUntil }),
    ...(metadata !== undefined && { metadata }),
    ...(trackingId !== undefined && { trackingId }),
    ...(traceparent !== undefined && { traceparent }),
    requestedAt
  })
}

const decodeDispatched = (data: Data): SmsDispatched | undefined => {
  const { messageId, provider, providerMessageId, attempt } = data
  const dispatchedAt = dateFrom(data.dispatchedAt)
  if (
    !isMessageId(messageId) ||
    !isString(provider) ||
    !isString(providerMessageId) ||
    typeof attempt !== "number" ||
    dispatchedAt === undefined
  ) {
    return undefined
  }
  return decoded(SmsDispatched, { messageId, provider, providerMessageId, attempt, dispatchedAt })
}

const decodeRetried = (data: Data): SmsRetried | undefined => {
  const { messageId, provider, attempt, reason, detail, nextProvider } = data
  const nextAttemptAt = dateFrom(data.nextAttemptAt)
  if (
    !isMessageId(messageId) ||
    !isString(provider) ||
    typeof attempt !== "number" ||
    !isRetryReason(reason) ||
    !isOptional(data, "detail", detail, isString) ||
    nextAttemptAt === undefined ||
    !isOptional(data, "nextProvider", nextProvider, isString)
  ) {
    return undefined
  }
  return decoded(SmsRetried, {
    messageId,
    provider,
    attempt,
    reason,
    ...(detail !== undefined && { detail }),
    nextAttemptAt,
    ...(nextProvider !== undefined && { nextProvider })
  })
}

const decodeDelivered = (data: Data): SmsDelivered | undefined => {
  const { messageId, provider, providerMessageId, rawStatus, contradicts, source } = data
  const deliveredAt = dateFrom(data.deliveredAt)
  if (
    !isMessageId(messageId) ||
    !isString(provider) ||
    !isString(providerMessageId) ||
    deliveredAt === undefined ||
    !isString(rawStatus) ||
    !isOptional(data, "contradicts", contradicts, isFailedLiteral) ||
    !isOptional(data, "source", source, isReportSource)
  ) {
    return undefined
  }
  return decoded(SmsDelivered, {
    messageId,
    provider,
    providerMessageId,
    deliveredAt,
    rawStatus,
    ...(contradicts !== undefined && { contradicts }),
    ...(source !== undefined && { source })
  })
}

const decodeFailed = (data: Data): SmsFailed | undefined => {
  const { messageId, reason, permanent, provider, code, detail, contradicts, source } = data
  const failedAt = dateFrom(data.failedAt)
  if (
    !isMessageId(messageId) ||
    !isFailureReason(reason) ||
    typeof permanent !== "boolean" ||
    !isOptional(data, "provider", provider, isString) ||
    !isOptional(data, "code", code, isString) ||
    !isOptional(data, "detail", detail, isString) ||
    failedAt === undefined ||
    !isOptional(data, "contradicts", contradicts, isDeliveredLiteral) ||
    !isOptional(data, "source", source, isReportSource)
  ) {
    return undefined
  }
  return decoded(SmsFailed, {
    messageId,
    reason,
    permanent,
    ...(provider !== undefined && { provider }),
    ...(code !== undefined && { code }),
    ...(detail !== undefined && { detail }),
    failedAt,
    ...(contradicts !== undefined && { contradicts }),
    ...(source !== undefined && { source })
  })
}

const decodeResubmitted = (data: Data): SmsResubmitted | undefined => {
  const { messageId, by, reason, provider } = data
  const resubmittedAt = dateFrom(data.resubmittedAt)
  if (
    !isMessageId(messageId) ||
    !isString(by) ||
    !isOptional(data, "reason", reason, isString) ||
    !isOptional(data, "provider", provider, isString) ||
    resubmittedAt === undefined
  ) {
    return undefined
  }
  return decoded(SmsResubmitted, {
    messageId,
    by,
    ...(reason !== undefined && { reason }),
    ...(provider !== undefined && { provider }),
    resubmittedAt
  })
}

const decodeStatusReported = (data: Data): SmsStatusReported | undefined => {
  const { messageId, provider, providerMessageId, rawStatus } = data
  const reportedAt = dateFrom(data.reportedAt)
  if (
    !isMessageId(messageId) ||
    !isString(provider) ||
    !isString(providerMessageId) ||
    !isString(rawStatus) ||
    reportedAt === undefined
  ) {
    return undefined
  }
  return decoded(SmsStatusReported, { messageId, provider, providerMessageId, rawStatus, reportedAt })
}

const decodeStatusUnknown = (data: Data): SmsStatusUnknown | undefined => {
  const { messageId, provider, providerMessageId, deadlineMs } = data
  const at = dateFrom(data.at)
  if (
    !isMessageId(messageId) ||
    !isString(provider) ||
    !isOptional(data, "providerMessageId", providerMessageId, isString) ||
    typeof deadlineMs !== "number" ||
    at === undefined
  ) {
    return undefined
  }
  return decoded(SmsStatusUnknown, {
    messageId,
    provider,
    ...(providerMessageId !== undefined && { providerMessageId }),
    deadlineMs,
    at
  })
}

/**
 * The message event the Schema decodes from stored `type` and `data`, or `undefined` when the data
 * is unusual (invalid, an unknown type, or a shape only the Schema knows): the caller then asks the
 * Schema. Only plain objects are read here, so a field inherited from a prototype is never taken
 * for one the Schema (which reads own fields) would not see.
 */
export const decodeMessageEventData = (type: string, data: unknown): MessageEvent | undefined => {
  if (typeof data !== "object" || data === null) return undefined
  const prototype: unknown = Object.getPrototypeOf(data)
  if (prototype !== Object.prototype && prototype !== null) return undefined
  const fields = data as Data
  switch (type) {
    case "SmsRequested":
      return decodeRequested(fields)
    case "SmsDispatched":
      return decodeDispatched(fields)
    case "SmsRetried":
      return decodeRetried(fields)
    case "SmsDelivered":
      return decodeDelivered(fields)
    case "SmsFailed":
      return decodeFailed(fields)
    case "SmsResubmitted":
      return decodeResubmitted(fields)
    case "SmsStatusReported":
      return decodeStatusReported(fields)
    case "SmsStatusUnknown":
      return decodeStatusUnknown(fields)
    default:
      return undefined
  }
}

export const { toStored, toStoredFrom, fromStored, decodeRecorded } = makeEventCodec(MessageEvent, identity, {
  encode: encodeMessageEvent,
  decode: decodeMessageEventData
})
