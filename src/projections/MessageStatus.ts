/**
 * The message status read model (KV `sms_messages`, key = message id): what `GET /v1/messages/:id`
 * answers. Each document remembers the position of the last event it applied, so replaying events
 * (a redelivered batch, a rebuild racing live processing) changes nothing.
 */
import type { KV } from "@nats-io/kv"
import { Effect, Option, Schema } from "effect"
import { isFinalStatus, type MessageEvent, messageEventTypes, statusAfter } from "../domain/Message.js"
import { decodeRecorded } from "../eventstore/MessageEvents.js"
import type { JetStreamPublish } from "../nats/JetStreamPublish.js"
import { kvDocumentStore } from "../nats/KvDocumentStore.js"
import { Nats } from "../nats/Nats.js"
import { kvDocuments, readDocument } from "./KvDocuments.js"
import { ReadModels } from "./ReadModels.js"

export const MessageStatusView = Schema.Struct({
  messageId: Schema.String,
  clientId: Schema.String,
  /** `unknown`: no final report within the provider's report deadline; a late report moves it on */
  status: Schema.Literal("requested", "dispatched", "retrying", "delivered", "failed", "unknown"),
  to: Schema.String,
  from: Schema.optional(Schema.String),
  encoding: Schema.String,
  segments: Schema.Number,
  provider: Schema.optional(Schema.String),
  providerMessageId: Schema.optional(Schema.String),
  attempts: Schema.Number,
  lastError: Schema.optional(Schema.String),
  failureReason: Schema.optional(Schema.String),
  requestedAt: Schema.String,
  dispatchedAt: Schema.optional(Schema.String),
  retriedAt: Schema.optional(Schema.String),
  nextAttemptAt: Schema.optional(Schema.String),
  deliveredAt: Schema.optional(Schema.String),
  failedAt: Schema.optional(Schema.String),
  resubmittedAt: Schema.optional(Schema.String),
  /** when the report deadline ran out (`SmsStatusUnknown`) */
  unknownAt: Schema.optional(Schema.String),
  /** the provider's latest intermediate status (queued, sent...), which never changes `status` */
  providerStatus: Schema.optional(Schema.String),
  providerStatusAt: Schema.optional(Schema.String),
  /** position of the last event applied */
  position: Schema.Number,
  /** revision of the message stream at that event */
  revision: Schema.Number
})
export type MessageStatusView = typeof MessageStatusView.Type

type Fields = Omit<MessageStatusView, "position" | "revision">

/**
 * The view with every field present (absent ones `undefined`), in the Schema's order. Views of one
 * shape keep the spreads below cheap: V8 copies an object and overrides its fields in tens of
 * nanoseconds, while adding fields the copy lacks cost microseconds per field (Node 20).
 */
const document = (view: Fields, at: { readonly position: number; readonly revision: number }) => ({
  messageId: view.messageId,
  clientId: view.clientId,
  status: view.status,
  to: view.to,
  from: view.from,
  encoding: view.encoding,
  segments: view.segments,
  provider: view.provider,
  providerMessageId: view.providerMessageId,
  attempts: view.attempts,
  lastError: view.lastError,
  failureReason: view.failureReason,
  requestedAt: view.requestedAt,
  dispatchedAt: view.dispatchedAt,
  retriedAt: view.retriedAt,
  nextAttemptAt: view.nextAttemptAt,
  deliveredAt: view.deliveredAt,
  failedAt: view.failedAt,
  resubmittedAt: view.resubmittedAt,
  unknownAt: view.unknownAt,
  providerStatus: view.providerStatus,
  providerStatusAt: view.providerStatusAt,
  position: at.position,
  revision: at.revision
})

/**
 * Whether a failure is a provider's answer to a call (`SmsFailed` carries no attempt number, unlike
 * `SmsDispatched` and `SmsRetried`): it names the provider and the message was waiting for a call
 * (requested or retrying). A failed delivery report comes after the dispatch, which counted its call;
 * a refusal before any call (inactive recipient, no provider, expired) names no provider.
 */
const endedACall = (view: MessageStatusView, event: { readonly provider?: string | undefined }) =>
  event.provider !== undefined && (view.status === "requested" || view.status === "retrying")

/**
 * The status follows the decider's rules (`statusAfter`): the first final status stays, and an event
 * that does not change the status changes nothing else either, except the provider's intermediate
 * status. `unknown` is not final, so a late delivered or failed report still moves the view on.
 */
export const applyEvent = (
  view: MessageStatusView | undefined,
  event: MessageEvent,
  at: { readonly position: number; readonly revision: number }
): MessageStatusView | undefined => {
  if (view !== undefined && at.position <= view.position) return view
  const moved = view && document(view, at)
  /** the view's status after the event, when the event moves it on; else undefined */
  const next = (from: MessageStatusView) => {
    const status = statusAfter(from.status, event)
    return status === "none" || (isFinalStatus(from.status) && status === from.status) ? undefined : status
  }
  switch (event._tag) {
    case "SmsRequested":
      return (
        moved ??
        document(
          {
            messageId: event.messageId,
            clientId: event.clientId,
            status: "requested",
            to: event.to,
            from: event.from,
            encoding: event.encoding,
            segments: event.segments,
            attempts: 0,
            requestedAt: event.requestedAt.toISOString()
          },
          at
        )
      )
    case "SmsDispatched": {
      const status = moved && next(moved)
      if (moved === undefined || status === undefined) return moved
      return {
        ...moved,
        status,
        provider: event.provider,
        providerMessageId: event.providerMessageId,
        attempts: Math.max(moved.attempts, event.attempt),
        dispatchedAt: event.dispatchedAt.toISOString(),
        nextAttemptAt: undefined
      }
    }
    case "SmsRetried": {
      const status = moved && next(moved)
      if (moved === undefined || status === undefined) return moved
      return {
        ...moved,
        status,
        provider: event.provider,
        attempts: Math.max(moved.attempts, event.attempt),
        lastError: event.detail ? `${event.reason}: ${event.detail}` : event.reason,
        retriedAt: event.nextAttemptAt.toISOString(),
        nextAttemptAt: event.nextAttemptAt.toISOString()
      }
    }
    case "SmsDelivered": {
      const status = moved && next(moved)
      if (moved === undefined || status === undefined) return moved
      return { ...moved, status, provider: event.provider, deliveredAt: event.deliveredAt.toISOString() }
    }
    case "SmsFailed": {
      const status = moved && next(moved)
      if (moved === undefined || status === undefined) return moved
      return {
        ...moved,
        status,
        attempts: endedACall(moved, event) ? moved.attempts + 1 : moved.attempts,
        provider: event.provider ?? moved.provider,
        failureReason: event.reason,
        lastError: event.code ? `${event.reason} (${event.code})` : (event.detail ?? event.reason),
        failedAt: event.failedAt.toISOString(),
        nextAttemptAt: undefined
      }
    }
    case "SmsStatusReported":
      return moved === undefined
        ? moved
        : { ...moved, providerStatus: event.rawStatus, providerStatusAt: event.reportedAt.toISOString() }
    case "SmsStatusUnknown": {
      // only a dispatch still waiting for its report; a final report already won
      const status = moved && statusAfter(moved.status, event)
      if (moved === undefined || status === undefined || status === "none" || status === moved.status)
        return moved
      return { ...moved, status, unknownAt: event.at.toISOString() }
    }
    case "SmsResubmitted": {
      const status = moved && statusAfter(moved.status, event)
      if (moved === undefined || status === undefined || status === "none" || status === moved.status)
        return moved
      return {
        ...moved,
        status,
        failureReason: undefined,
        failedAt: undefined,
        resubmittedAt: event.resubmittedAt.toISOString()
      }
    }
    default:
      return unhandled(event)
  }
}

const unhandled = (event: never): never => {
  throw new Error(`status projection does not handle ${JSON.stringify(event)}`)
}

export const getStatus = (messageId: string) =>
  Effect.flatMap(ReadModels, ({ messages }) =>
    Effect.map(
      readDocument(messages, MessageStatusView, messageId),
      Option.map(({ view }) => view)
    )
  )

/** the read model kept in `kv`, written with the lean publish when given `publish` */
export const documents = (kv: KV, publish?: JetStreamPublish) =>
  kvDocuments({
    name: "message-status",
    documents: kvDocumentStore(kv, publish),
    handles: new Set(messageEventTypes),
    schema: MessageStatusView,
    decodeEvent: decodeRecorded,
    keyOf: (event) => event.messageId,
    applyEvent,
    startsDocument: (event) => event._tag === "SmsRequested"
  })

export const projection = Effect.map(Effect.all([ReadModels, Nats]), ([{ messages }, { publish }]) =>
  documents(messages, publish)
)
