/**
 * What `sms.work.<provider>` carries: which message to send where, and, on a fresh item, what the
 * provider call needs, so that the actor does not read the message's history before calling.
 *
 * A fresh item is queued by the step that wrote `revision` of the message stream (the intake after
 * `SmsRequested`, a failover after its `SmsRetried`), right after that append, with the state the
 * message had then, and by nothing else: a step done again on a redelivery queues its item without
 * a snapshot (the first may be queued still, past JetStream's duplicate window). While the stream's
 * last revision is still `revision`, that snapshot IS the message's state. Nothing but the item
 * itself moves its message on before the call, so its surely first delivery (`FirstDeliveries`)
 * proves it; any other delivery checks the last revision (one direct get, all of a batch at once).
 * An item without a snapshot (a resubmission, a failover that made no call, a repeated step, an
 * older gateway's), or whose stream moved on, is checked by reading the stream.
 *
 * Wire format (JSON, a contract between gateway versions): `{ messageId, provider, priorAttempts,
 * trackingId?, revision?, status?, request? }`, `request` being `SmsRequested`'s stored data.
 */
import { Effect, Option, Schema } from "effect"
import { isMessageId, type MessageId } from "../domain/Ids.js"
import { jsonObject } from "../domain/PlainChecks.js"
import { MessageEvent, type SmsRequested } from "../domain/Message.js"
import { decodeMessageEventData, encodeMessageEvent } from "../eventstore/MessageEvents.js"
import { Nats, NatsError } from "../nats/Nats.js"
import { Subjects } from "../nats/Topology.js"

export interface FreshSnapshot {
  /** the message stream's revision written by the step that queued this item */
  readonly revision: number
  /** the message's status at that revision */
  readonly status: "requested" | "retrying"
  /** the message as requested: `SmsRequested`'s stored data */
  readonly request: SmsRequested
}

export interface WorkItem {
  readonly messageId: MessageId
  readonly provider: string
  /** provider calls made for this message before this work item (on other providers) */
  readonly priorAttempts: number
  readonly trackingId?: string
  readonly fresh?: FreshSnapshot
}

const decodeEvent = Schema.decodeUnknownOption(MessageEvent)

/** The request as it is stored in the message stream: one format to read, one to keep compatible. */
const encodeRequest = (request: SmsRequested): unknown => encodeMessageEvent(request)

/** The lean decoder first; the Schema only for what it does not accept (as for stored events). */
const decodeRequest = (data: unknown): SmsRequested | undefined => {
  if (typeof data !== "object" || data === null) return undefined
  const event =
    decodeMessageEventData("SmsRequested", data) ??
    Option.getOrUndefined(decodeEvent({ ...data, _tag: "SmsRequested" }))
  return event?._tag === "SmsRequested" ? event : undefined
}

/** The JSON of a work item. */
export const encodeWorkItem = (item: WorkItem): string =>
  JSON.stringify({
    messageId: item.messageId,
    provider: item.provider,
    priorAttempts: item.priorAttempts,
    trackingId: item.trackingId,
    ...(item.fresh === undefined
      ? {}
      : {
          revision: item.fresh.revision,
          status: item.fresh.status,
          request: encodeRequest(item.fresh.request)
        })
  })

/**
 * Reads a work item with plain checks (a Schema decode per item cost more than the rest of the
 * dispatch decision). An item whose snapshot does not read is treated as not fresh: it is checked
 * against the stream.
 */
export const decodeWorkItem = (text: string): WorkItem | undefined => {
  const json = jsonObject(text)
  if (json === undefined) return undefined
  const { messageId, provider, priorAttempts, trackingId, revision, status, request } = json
  if (!isMessageId(messageId) || typeof provider !== "string" || provider.length === 0) return undefined
  if (typeof priorAttempts !== "number" || !Number.isInteger(priorAttempts) || priorAttempts < 0) {
    return undefined
  }
  if (trackingId !== undefined && typeof trackingId !== "string") return undefined
  const base = { messageId, provider, priorAttempts, ...(trackingId === undefined ? {} : { trackingId }) }
  if (
    typeof revision !== "number" ||
    !Number.isInteger(revision) ||
    revision < 0 ||
    (status !== "requested" && status !== "retrying")
  ) {
    return base
  }
  const decoded = decodeRequest(request)
  return decoded === undefined || decoded.messageId !== messageId
    ? base
    : { ...base, fresh: { revision, status, request: decoded } }
}

/**
 * Where a work item comes from, for its `Nats-Msg-Id`: a step (a resubmission's time, the stream
 * sequence of the item that hopped), or `repeats`, the revision whose fresh item a step done again
 * queues once more, without the snapshot (see the top of this file).
 */
export type WorkOrigin = string | number | { readonly repeats: number }

/**
 * The `Nats-Msg-Id` of a work item. A fresh item is named by the revision that queued it: one step
 * writes one revision, so JetStream's dedupe window drops a re-run of that step, and a repeat is
 * named the same. Others name their `origin`, so two different hops never share an id.
 */
export const workItemMsgId = (item: WorkItem, origin: WorkOrigin): string =>
  item.fresh !== undefined
    ? `${item.messageId}:r${item.fresh.revision}`
    : typeof origin === "object"
      ? `${item.messageId}:r${origin.repeats}`
      : `${item.messageId}:${item.provider}:${item.priorAttempts}:${origin}`

/** Publishes many work items at once (one socket write for the batch); settles per item. */
export const publishWorkItems = (
  items: ReadonlyArray<{
    readonly item: WorkItem
    readonly origin: WorkOrigin
    /** the message's trace context, carried in the item's header (while traces are recorded) */
    readonly traceparent?: string | undefined
  }>
) =>
  Effect.flatMap(Nats, ({ publish }) =>
    Effect.promise(() =>
      Promise.allSettled(
        items.map(({ item, origin, traceparent }) =>
          publish(Subjects.work(item.provider), encodeWorkItem(item), {
            msgID: workItemMsgId(item, origin),
            traceparent
          })
        )
      )
    )
  )

/** Publishes one work item (cold paths: resubmission, recovery). */
export const publishWork = (item: WorkItem, origin: WorkOrigin) =>
  Effect.flatMap(Nats, ({ publish }) =>
    Effect.tryPromise({
      try: () =>
        publish(Subjects.work(item.provider), encodeWorkItem(item), {
          msgID: workItemMsgId(item, origin)
        }),
      catch: (cause) => new NatsError({ reason: "RequestFailed", message: "cannot publish work item", cause })
    })
  )
