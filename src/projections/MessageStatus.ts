/**
 * The message status read model (KV `sms_messages`, key = message id): what `GET /v1/messages/:id`
 * answers. Each document remembers the position of the last event it applied, so replaying events
 * (a redelivered batch, a rebuild racing live processing) changes nothing.
 */
import { Effect, Option, Schema } from "effect"
import { type MessageEvent, messageEventTypes } from "../domain/Message.js"
import { fromStored } from "../eventstore/MessageEvents.js"
import { kvDocuments, readDocument } from "./KvDocuments.js"
import { ReadModels } from "./ReadModels.js"

export const MessageStatusView = Schema.Struct({
  messageId: Schema.String,
  clientId: Schema.String,
  status: Schema.Literal("requested", "dispatched", "retrying", "delivered", "failed"),
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
  /** the provider's latest intermediate status (queued, sent...), which never changes `status` */
  providerStatus: Schema.optional(Schema.String),
  providerStatusAt: Schema.optional(Schema.String),
  /** position of the last event applied */
  position: Schema.Number,
  /** revision of the message stream at that event */
  revision: Schema.Number
})
export type MessageStatusView = typeof MessageStatusView.Type

const isFinal = (view: MessageStatusView) => view.status === "delivered" || view.status === "failed"

/** Same precedence as the decider: the first final status stays; later reports only add timestamps. */
export const applyEvent = (
  view: MessageStatusView | undefined,
  event: MessageEvent,
  at: { readonly position: number; readonly revision: number }
): MessageStatusView | undefined => {
  if (view !== undefined && at.position <= view.position) return view
  const moved = view && { ...view, position: at.position, revision: at.revision }
  switch (event._tag) {
    case "SmsRequested":
      return (
        moved ?? {
          messageId: event.messageId,
          clientId: event.clientId,
          status: "requested",
          to: event.to,
          from: event.from,
          encoding: event.encoding,
          segments: event.segments,
          attempts: 0,
          requestedAt: event.requestedAt.toISOString(),
          position: at.position,
          revision: at.revision
        }
      )
    case "SmsDispatched":
      if (moved === undefined || isFinal(moved)) return moved
      return {
        ...moved,
        status: "dispatched",
        provider: event.provider,
        providerMessageId: event.providerMessageId,
        attempts: Math.max(moved.attempts, event.attempt),
        dispatchedAt: event.dispatchedAt.toISOString(),
        nextAttemptAt: undefined
      }
    case "SmsRetried":
      if (moved === undefined || isFinal(moved)) return moved
      return {
        ...moved,
        status: "retrying",
        provider: event.provider,
        attempts: Math.max(moved.attempts, event.attempt),
        lastError: event.detail ? `${event.reason}: ${event.detail}` : event.reason,
        retriedAt: event.nextAttemptAt.toISOString(),
        nextAttemptAt: event.nextAttemptAt.toISOString()
      }
    case "SmsDelivered":
      if (moved === undefined) return moved
      return isFinal(moved)
        ? moved
        : {
            ...moved,
            status: "delivered",
            provider: event.provider,
            deliveredAt: event.deliveredAt.toISOString()
          }
    case "SmsFailed":
      if (moved === undefined || isFinal(moved)) return moved
      return {
        ...moved,
        status: "failed",
        provider: event.provider ?? moved.provider,
        failureReason: event.reason,
        lastError: event.code ? `${event.reason} (${event.code})` : (event.detail ?? event.reason),
        failedAt: event.failedAt.toISOString(),
        nextAttemptAt: undefined
      }
    case "SmsStatusReported":
      return moved === undefined
        ? moved
        : { ...moved, providerStatus: event.rawStatus, providerStatusAt: event.reportedAt.toISOString() }
    case "SmsResubmitted":
      if (moved === undefined || moved.status !== "failed") return moved
      return {
        ...moved,
        status: "requested",
        failureReason: undefined,
        failedAt: undefined,
        resubmittedAt: event.resubmittedAt.toISOString()
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

export const projection = Effect.map(ReadModels, ({ messages }) =>
  kvDocuments({
    name: "message-status",
    kv: messages,
    handles: new Set(messageEventTypes),
    schema: MessageStatusView,
    decodeEvent: fromStored,
    keyOf: (event) => event.messageId,
    applyEvent,
    startsDocument: (event) => event._tag === "SmsRequested"
  })
)
