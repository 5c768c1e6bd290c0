/**
 * Counts of message events by type and provider (and failures by reason), one KV document
 * (`sms_stats`, key `totals`) holding the counts and the position they include. A batch is applied
 * to the stored counts with the revision that was read, skipping events at or below the stored
 * position, so replays and concurrent runners never count twice.
 */
import { Effect, Option, Schema } from "effect"
import { messageEventTypes } from "../domain/Message.js"
import type { RecordedEvent } from "../eventstore/EventStore.js"
import { fromStored } from "../eventstore/MessageEvents.js"
import { NatsError } from "../nats/Nats.js"
import { readDocument } from "./KvDocuments.js"
import type { Projection } from "./ProjectionRunner.js"
import { ReadModels } from "./ReadModels.js"

export const StatsView = Schema.Struct({
  /** e.g. `SmsDelivered.sim`, `SmsFailed.sim.invalid_number`, `SmsRequested` */
  counts: Schema.Record({ key: Schema.String, value: Schema.Number }),
  position: Schema.Number
})
export type StatsView = typeof StatsView.Type

const KEY = "totals"
const encode = Schema.encodeSync(Schema.parseJson(StatsView))

const countKey = (record: RecordedEvent, provider: string | undefined, reason: string | undefined) =>
  [record.type, provider, reason].filter((part) => part !== undefined && part !== "").join(".")

export const getStats = Effect.flatMap(ReadModels, ({ stats }) =>
  Effect.map(
    readDocument(stats, StatsView, KEY),
    Option.match({ onNone: () => ({ counts: {}, position: 0 }), onSome: ({ view }) => view })
  )
)

export const projection = Effect.map(
  ReadModels,
  ({ stats }): Projection<unknown, never> => ({
    name: "stats",
    handles: new Set(messageEventTypes),
    applyBatch: (recorded) =>
      Effect.gen(function* () {
        const keys: Array<readonly [number, string]> = []
        for (const record of recorded) {
          const event = yield* fromStored(record)
          const provider = "provider" in event ? event.provider : undefined
          const reason = event._tag === "SmsFailed" || event._tag === "SmsRetried" ? event.reason : undefined
          keys.push([record.position, countKey(record, provider, reason)])
        }
        for (let attempt = 0; attempt < 10; attempt++) {
          const stored = yield* readDocument(stats, StatsView, KEY)
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
          const written = yield* Effect.tryPromise({
            try: () =>
              Option.isNone(stored)
                ? stats.create(KEY, encode({ counts, position }))
                : stats.update(KEY, encode({ counts, position }), stored.value.revision),
            catch: (cause) => new NatsError({ reason: "RequestFailed", message: "cannot write stats", cause })
          }).pipe(Effect.option)
          if (Option.isSome(written)) return
        }
        return yield* new NatsError({ reason: "RequestFailed", message: "stats keep conflicting" })
      })
  })
)
