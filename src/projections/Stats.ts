/**
 * Counts of message events by type and provider (and failures by reason), one KV document
 * (`sms_stats`, key `totals`) holding the counts and the position they include. A batch is applied
 * to the stored counts (as this instance last wrote or read them) with their revision, skipping events
 * at or below the stored position, so replays and concurrent runners never count twice: a stale
 * revision fails the write, and the batch is counted again on the document read afresh.
 *
 * A report that contradicts a final status (marked `contradicts`: a `failed` after `delivered`) is
 * not a second outcome of its message: it is counted apart, as `Contradicting<type>`, so that
 * deliveries plus failures stay one per final message while contradictions remain visible.
 */
import { Effect, Option, Schema } from "effect"
import { messageEventTypes } from "../domain/Message.js"
import { EventStoreError, type RecordedEvent } from "../eventstore/EventStore.js"
import { decodeRecorded } from "../eventstore/MessageEvents.js"
import { NatsError } from "../nats/Nats.js"
import { readDocument } from "./KvDocuments.js"
import type { Projection } from "./ProjectionRunner.js"
import { ReadModels } from "./ReadModels.js"

export const StatsView = Schema.Struct({
  /**
   * e.g. `SmsDelivered.sim`, `SmsFailed.sim.invalid_number`, `SmsRequested`, and
   * `ContradictingSmsFailed.sim.undeliverable` for a report after the message's final status
   */
  counts: Schema.Record({ key: Schema.String, value: Schema.Number }),
  position: Schema.Number
})
export type StatsView = typeof StatsView.Type

const KEY = "totals"
const encode = Schema.encodeSync(Schema.parseJson(StatsView))

/** `type[.provider][.reason]`, leaving out parts that are missing or empty */
const countKey = (type: string, provider: string | undefined, reason: string | undefined) => {
  let key = type
  if (provider) key += `.${provider}`
  if (reason) key += `.${reason}`
  return key
}

export const getStats = Effect.flatMap(ReadModels, ({ stats }) =>
  Effect.map(
    readDocument(stats, StatsView, KEY),
    Option.match({ onNone: () => ({ counts: {}, position: 0 }), onSome: ({ view }) => view })
  )
)

export const projection = Effect.map(ReadModels, ({ stats }): Projection<unknown, never> => {
  /** the document as this instance last wrote or read it: the next batch usually needs no read */
  let known: Option.Option<{ readonly view: StatsView; readonly revision: number }> | undefined

  const count = (recorded: ReadonlyArray<RecordedEvent>) => {
    const keys: Array<readonly [number, string]> = []
    for (const record of recorded) {
      const event = decodeRecorded(record)
      if (event instanceof EventStoreError) return event
      const provider = "provider" in event ? event.provider : undefined
      const reason = event._tag === "SmsFailed" || event._tag === "SmsRetried" ? event.reason : undefined
      const contradicts =
        (event._tag === "SmsDelivered" || event._tag === "SmsFailed") && event.contradicts !== undefined
      const type = contradicts ? `Contradicting${record.type}` : record.type
      keys.push([record.position, countKey(type, provider, reason)])
    }
    return keys
  }

  return {
    name: "stats",
    handles: new Set(messageEventTypes),
    reset: Effect.sync(() => {
      known = undefined
    }),
    applyBatch: (recorded) =>
      Effect.gen(function* () {
        const keys = count(recorded)
        if (keys instanceof EventStoreError) return yield* keys
        for (let attempt = 0; attempt < 10; attempt++) {
          const stored = known ?? (yield* readDocument(stats, StatsView, KEY))
          known = stored
          const current = Option.match(stored, {
            onNone: () => ({ counts: {}, position: 0 }),
            onSome: ({ view }) => view
          })
          const counts: Record<string, number> = { ...current.counts }
          let position = current.position
          for (const [at, key] of keys) {
            if (at <= current.position) continue
            counts[key] = (counts[key] ?? 0) + 1
            position = Math.max(position, at)
          }
          if (position === current.position) return
          const view = { counts, position }
          const written = yield* Effect.tryPromise({
            try: () =>
              Option.isNone(stored)
                ? stats.create(KEY, encode(view))
                : stats.update(KEY, encode(view), stored.value.revision),
            catch: (cause) => new NatsError({ reason: "RequestFailed", message: "cannot write stats", cause })
          }).pipe(Effect.option)
          if (Option.isSome(written)) {
            known = Option.some({ view, revision: written.value })
            return
          }
          // another writer got there first (or what was known is stale): read it and count again
          known = undefined
        }
        return yield* new NatsError({ reason: "RequestFailed", message: "stats keep conflicting" })
      })
  }
})
