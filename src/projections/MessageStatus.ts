/**
 * The message status read model (KV `sms_messages`, key = message id): what `GET /v1/messages/:id`
 * answers. Each document remembers the position of the last event it applied, so replaying events
 * (a redelivered batch, a rebuild racing live processing) changes nothing.
 */
import type { KV } from "@nats-io/kv"
import { Effect, Option, Schema } from "effect"
import type { MessageEvent } from "../domain/Message.js"
import type { RecordedEvent } from "../eventstore/EventStore.js"
import { fromStored } from "../eventstore/MessageEvents.js"
import { NatsError } from "../nats/Nats.js"
import type { Projection } from "./ProjectionRunner.js"
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
  }
}

const decodeView = Schema.decodeUnknownOption(Schema.parseJson(MessageStatusView))
const encodeView = Schema.encodeSync(Schema.parseJson(MessageStatusView))

const kvRequest = <A>(what: string, run: () => Promise<A>) =>
  Effect.tryPromise({
    try: run,
    catch: (cause) => new NatsError({ reason: "RequestFailed", message: what, cause })
  })

export const getStatus = (messageId: string) =>
  Effect.flatMap(ReadModels, ({ messages }) =>
    kvRequest("cannot read message status", () => messages.get(messageId)).pipe(
      Effect.map((entry) =>
        entry === null || entry.operation !== "PUT" ? Option.none() : decodeView(entry.string())
      )
    )
  )

interface CachedView {
  readonly view: MessageStatusView
  readonly revision: number
}

/** Documents this process wrote last, so an update usually needs no read first. */
const CACHE_LIMIT = 50_000

const applyToDocument = (
  kv: KV,
  cache: Map<string, CachedView>,
  messageId: string,
  events: ReadonlyArray<readonly [MessageEvent, RecordedEvent]>
) =>
  Effect.gen(function* () {
    // a batch that starts the message's history creates the document without reading it first
    const startsHistory = events[0]?.[0]._tag === "SmsRequested"
    for (let attempt = 0; ; attempt++) {
      let known = attempt === 0 ? cache.get(messageId) : undefined
      if (known === undefined && !(attempt === 0 && startsHistory)) {
        const entry = yield* kvRequest("cannot read message status", () => kv.get(messageId))
        const view = entry === null || entry.operation !== "PUT" ? Option.none() : decodeView(entry.string())
        known = Option.isSome(view) && entry ? { view: view.value, revision: entry.revision } : undefined
      }
      let view = known?.view
      for (const [event, recorded] of events) view = applyEvent(view, event, recorded)
      if (view === undefined || view === known?.view) return
      const next = view
      const written = yield* kvRequest("cannot write message status", () =>
        known === undefined
          ? kv.create(messageId, encodeView(next))
          : kv.update(messageId, encodeView(next), known.revision)
      ).pipe(Effect.option)
      if (Option.isSome(written)) {
        cache.delete(messageId)
        cache.set(messageId, { view: next, revision: written.value })
        if (cache.size > CACHE_LIMIT) cache.delete(cache.keys().next().value ?? "")
        return
      }
      // another writer moved the document: read it again and re-apply (idempotent by position)
      cache.delete(messageId)
      if (attempt >= 5)
        return yield* new NatsError({
          reason: "RequestFailed",
          message: `status of ${messageId} keeps conflicting`
        })
    }
  })

export const projection = Effect.map(ReadModels, ({ messages }): Projection<unknown, never> => {
  const cache = new Map<string, CachedView>()
  return {
    name: "message-status",
    handles: new Set(["SmsRequested", "SmsDispatched", "SmsRetried", "SmsDelivered", "SmsFailed"]),
    applyBatch: (recorded) =>
      Effect.gen(function* () {
        const byMessage = new Map<string, Array<readonly [MessageEvent, RecordedEvent]>>()
        for (const record of recorded) {
          const event = yield* fromStored(record)
          const list = byMessage.get(event.messageId)
          if (list) list.push([event, record])
          else byMessage.set(event.messageId, [[event, record]])
        }
        yield* Effect.forEach(byMessage, ([id, events]) => applyToDocument(messages, cache, id, events), {
          concurrency: 64,
          discard: true
        })
      })
  }
})
