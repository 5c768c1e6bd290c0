/**
 * Builds `SearchStore` from the events, like the other read models: it names the events it handles,
 * applies them idempotently (a row keeps the position of the last event it applied and skips any at
 * or below it), and a rebuild from position 0 gives the same rows, since rows are made in position
 * order. Its checkpoint is the store's own position, moved in the same transaction as the rows.
 *
 * A message row is folded by the status read model's own reducer (`MessageStatus.applyEvent`), so the
 * list shows exactly the status `GET /v1/messages/:id` answers. Counts for the overview are taken
 * only when an event advanced its row, so an event applied twice is counted once.
 */
import { Effect } from "effect"
import { type MessageEvent, messageEventTypes } from "../domain/Message.js"
import { type PhoneEvent, phoneEventTypes } from "../domain/PhoneNumberLifecycle.js"
import { EventStoreError, type RecordedEvent } from "../eventstore/EventStore.js"
import { decodeRecorded } from "../eventstore/MessageEvents.js"
import { phoneCodec } from "../eventstore/PhoneEvents.js"
import { applyEvent, type MessageStatusView } from "../projections/MessageStatus.js"
import type { Projection } from "../projections/ProjectionRunner.js"
import type { MessageRow, PhoneRow, SearchStoreService, Writes } from "./SearchStore.js"

export const PROJECTION_NAME = "message-search"

/** Overview and provider figures are counted per bucket of this many milliseconds. */
export const BUCKET_MS = 10_000

/** Buckets older than this are dropped, and old events (a rebuild) are not counted at all. */
export const ACTIVITY_RETENTION_MS = 24 * 60 * 60 * 1000

/** Latencies are counted in buckets growing by this factor: a percentile is known within 25 %. */
export const LATENCY_GROWTH = 1.25
const MAX_LATENCY_BUCKET = 80

export const latencyBucket = (ms: number): number =>
  ms <= 1 ? 0 : Math.min(MAX_LATENCY_BUCKET, Math.ceil(Math.log(ms) / Math.log(LATENCY_GROWTH)))

/** The upper bound, in milliseconds, of a latency bucket. */
export const latencyBound = (bucket: number): number => LATENCY_GROWTH ** bucket

const messageTypes: ReadonlySet<string> = new Set(messageEventTypes)
const phoneTypes: ReadonlySet<string> = new Set(phoneEventTypes)

export const handles: ReadonlySet<string> = new Set([...messageEventTypes, ...phoneEventTypes])

const iso = (ms: number | null) => (ms === null ? undefined : new Date(ms).toISOString())
const ms = (text: string | undefined) => (text === undefined ? null : Date.parse(text))

/** The row as the status reducer's view; fields the row does not keep do not affect the status. */
const viewOf = (row: Omit<MessageRow, "seq">): MessageStatusView => ({
  messageId: row.messageId,
  clientId: row.clientId,
  status: row.status,
  to: row.recipient,
  from: undefined,
  encoding: "",
  segments: 0,
  provider: row.provider ?? undefined,
  providerMessageId: undefined,
  attempts: row.attempts,
  lastError: row.lastError ?? undefined,
  failureReason: row.failureReason ?? undefined,
  requestedAt: new Date(row.requestedAt).toISOString(),
  dispatchedAt: iso(row.dispatchedAt),
  retriedAt: undefined,
  nextAttemptAt: undefined,
  deliveredAt: iso(row.deliveredAt),
  failedAt: iso(row.failedAt),
  resubmittedAt: undefined,
  unknownAt: undefined,
  providerStatus: undefined,
  providerStatusAt: undefined,
  position: row.position,
  revision: 0
})

const rowOf = <R extends Omit<MessageRow, "seq">>(row: R, view: MessageStatusView, position: number): R => ({
  ...row,
  status: view.status,
  provider: view.provider ?? null,
  attempts: view.attempts,
  dispatchedAt: ms(view.dispatchedAt),
  deliveredAt: ms(view.deliveredAt),
  failedAt: ms(view.failedAt),
  failureReason: view.failureReason ?? null,
  lastError: view.lastError ?? null,
  position
})

/** A stable slot for the message's `seq` within its millisecond (see `SearchStore.insertMessage`). */
const slotOf = (messageId: string) => Number.parseInt(messageId.slice(0, 8), 16) || 0

/**
 * What an event counts as on the overview and provider pages: its status, with a provider's
 * answers told apart (`refused`: a permanent answer to a call, `rerouted`: a retry that made no
 * call, the circuit being open).
 */
export const activityOf = (before: Pick<MessageRow, "status"> | undefined, event: MessageEvent): string => {
  switch (event._tag) {
    case "SmsRequested":
      return "requested"
    case "SmsDispatched":
      return "dispatched"
    case "SmsRetried":
      return event.reason === "provider_unavailable" ? "rerouted" : "retrying"
    case "SmsDelivered":
      return event.contradicts !== undefined ? "contradicted" : "delivered"
    case "SmsFailed":
      if (event.contradicts !== undefined) return "contradicted"
      return event.provider !== undefined && (before?.status === "requested" || before?.status === "retrying")
        ? "refused"
        : "failed"
    case "SmsResubmitted":
      return "resubmitted"
    case "SmsStatusReported":
      return "reported"
    case "SmsStatusUnknown":
      return "unknown"
  }
}

const providerOf = (event: MessageEvent, row: Pick<MessageRow, "provider"> | undefined): string =>
  ("provider" in event ? event.provider : undefined) ?? row?.provider ?? "none"

/** A message's row while a batch is applied: folded over all its events, written once at the end. */
interface Working {
  /** as stored before the batch; undefined for a message the batch starts */
  readonly stored: MessageRow | undefined
  current: Omit<MessageRow, "seq"> & { readonly seq: number | undefined }
}

const applyMessage = (
  writes: Writes,
  working: Map<string, Working | null>,
  event: MessageEvent,
  recorded: RecordedEvent,
  countFrom: number
) => {
  let entry = working.get(event.messageId)
  if (entry === undefined) {
    const stored = writes.messageAt(event.messageId)
    entry = stored === undefined ? null : { stored, current: stored }
    working.set(event.messageId, entry)
  }
  if (entry !== null && recorded.position <= entry.current.position) return
  const bucket = Math.floor(recorded.recordedAt.getTime() / BUCKET_MS) * BUCKET_MS
  const counted = recorded.recordedAt.getTime() >= countFrom
  if (entry === null) {
    // a message starts with its request; anything else without a row was for a message never requested
    if (event._tag !== "SmsRequested") return
    working.set(event.messageId, {
      stored: undefined,
      current: {
        seq: undefined,
        messageId: event.messageId,
        clientId: event.clientId,
        status: "requested",
        recipient: event.to,
        provider: null,
        attempts: 0,
        idempotencyKey: event.idempotencyKey,
        trackingId: event.trackingId ?? null,
        requestedAt: event.requestedAt.getTime(),
        dispatchedAt: null,
        deliveredAt: null,
        failedAt: null,
        failureReason: null,
        lastError: null,
        position: recorded.position
      }
    })
    if (counted) writes.count(bucket, "requested", "none", 1)
    return
  }
  const row = entry.current
  const view = applyEvent(viewOf(row), event, recorded)
  if (view === undefined) return
  const next = rowOf(row, view, recorded.position)
  entry.current = next
  if (!counted) return
  const provider = providerOf(event, row)
  writes.count(bucket, activityOf(row, event), provider, 1)
  if (event._tag === "SmsDispatched" && row.dispatchedAt === null && next.dispatchedAt !== null) {
    writes.countLatency(bucket, "dispatch", provider, latencyBucket(next.dispatchedAt - row.requestedAt))
  }
  if (event._tag === "SmsDelivered" && row.status !== "delivered" && next.status === "delivered") {
    writes.countLatency(
      bucket,
      "delivery",
      provider,
      latencyBucket(event.deliveredAt.getTime() - row.requestedAt)
    )
  }
}

/** Writes each row the batch changed once, new ones in the order they were requested. */
const flush = (writes: Writes, working: Map<string, Working | null>) => {
  for (const entry of working.values()) {
    if (entry === null) continue
    const { stored, current } = entry
    if (stored === undefined) writes.insertMessage(current, slotOf(current.messageId))
    else if (current !== stored) writes.updateMessage({ ...current, seq: stored.seq })
  }
}

/** As the phone numbers read model (`applyPhoneEvent`): each event sets the status, since when and why. */
const applyPhone = (writes: Writes, event: PhoneEvent, recorded: RecordedEvent) => {
  const row = writes.phoneAt(event.number)
  if (row !== undefined && recorded.position <= row.position) return
  const next: PhoneRow =
    event._tag === "PhoneDeactivated"
      ? {
          number: event.number,
          status: "inactive",
          since: event.deactivatedAt.getTime(),
          reason: event.reason,
          position: recorded.position
        }
      : {
          number: event.number,
          status: "active",
          since: event.reactivatedAt.getTime(),
          reason: event.reason,
          position: recorded.position
        }
  writes.putPhone(next)
}

type Decoded =
  | { readonly kind: "message"; readonly event: MessageEvent; readonly recorded: RecordedEvent }
  | { readonly kind: "phone"; readonly event: PhoneEvent; readonly recorded: RecordedEvent }

const decodeAll = (events: ReadonlyArray<RecordedEvent>): ReadonlyArray<Decoded> | EventStoreError => {
  const decoded: Array<Decoded> = []
  for (const recorded of events) {
    if (messageTypes.has(recorded.type)) {
      const event = decodeRecorded(recorded)
      if (event instanceof EventStoreError) return event
      decoded.push({ kind: "message", event, recorded })
    } else if (phoneTypes.has(recorded.type)) {
      const event = phoneCodec.decodeRecorded(recorded)
      if (event instanceof EventStoreError) return event
      decoded.push({ kind: "phone", event, recorded })
    }
  }
  return decoded
}

/**
 * Applies `events` (those this projection handles, in position order) and moves the store's
 * position to `upTo` (the last event the caller read, handled or not), in one transaction. `now`
 * bounds what is counted for the overview and when old buckets are dropped.
 */
export const applyEvents = (
  store: SearchStoreService,
  events: ReadonlyArray<RecordedEvent>,
  upTo: number,
  now: number
): Effect.Effect<void, EventStoreError> =>
  Effect.suspend(() => {
    const decoded = decodeAll(events)
    if (decoded instanceof EventStoreError) return Effect.fail(decoded)
    const countFrom = now - ACTIVITY_RETENTION_MS
    return Effect.try({
      try: () =>
        store.transaction(upTo, (writes) => {
          const working = new Map<string, Working | null>()
          for (const item of decoded) {
            if (item.kind === "message") applyMessage(writes, working, item.event, item.recorded, countFrom)
            else applyPhone(writes, item.event, item.recorded)
          }
          flush(writes, working)
        }),
      catch: (cause) =>
        new EventStoreError({
          reason: "Unknown",
          message: `cannot write the console's search store: ${cause instanceof Error ? cause.message : String(cause)}`,
          cause
        })
    })
  })

/** The projection, in the shape every projection has (`applyBatch` moves the position to its last event). */
export const projection = (
  store: SearchStoreService,
  now: () => number
): Projection<EventStoreError, never> => ({
  name: PROJECTION_NAME,
  handles,
  applyBatch: (events) => {
    const last = events[events.length - 1]
    return last === undefined ? Effect.void : applyEvents(store, events, last.position, now())
  },
  reset: Effect.sync(() => store.reset())
})
