/**
 * Runs projections: every event after their checkpoints, then live ones, in batches; each batch is
 * applied, then each checkpoint moves to the batch's last position. Delivery is at-least-once
 * (a crash between the two replays the batch), so projections apply idempotently.
 *
 * All the projections of a process share one subscription, starting at the lowest checkpoint; each
 * skips what it has applied already. (One subscription each cost a stream consumer and a decode of
 * every event per projection.) If one fails, all restart from their own checkpoints.
 */
import { Cause, Chunk, Effect, Stream } from "effect"
import { restartSchedule } from "../actors/JetStreamWorker.js"
import { EventStore, type RecordedEvent } from "../eventstore/EventStore.js"
import * as Checkpoints from "./Checkpoints.js"

export interface Projection<E, R> {
  readonly name: string
  /** event types this projection reads; others only move its checkpoint */
  readonly handles: ReadonlySet<string>
  readonly applyBatch: (events: ReadonlyArray<RecordedEvent>) => Effect.Effect<void, E, R>
  /** forgets what it cached of its read model, which has just been emptied (see `Rebuild`) */
  readonly reset?: Effect.Effect<void>
}

export const runAll = <E, R>(projections: ReadonlyArray<Projection<E, R>>) =>
  Effect.gen(function* () {
    const store = yield* EventStore
    const running = yield* Effect.forEach(projections, (projection) =>
      Effect.map(Checkpoints.load(projection.name), (checkpoint) => ({ projection, checkpoint }))
    )
    const from = Math.min(...running.map((r) => r.checkpoint.position))
    // Each chunk the store hands over is what it had ready (up to 1,000 events): one batch, no
    // regrouping and no timer, so a lone event is projected at once.
    yield* store.subscribeAll({ from }).pipe(
      Stream.runForEachChunk((chunk) => {
        const events = Chunk.toReadonlyArray(chunk)
        return Effect.forEach(
          running,
          (entry) =>
            Effect.gen(function* () {
              const fresh = events.filter((event) => event.position > entry.checkpoint.position)
              const last = fresh[fresh.length - 1]
              if (last === undefined) return
              const handled = fresh.filter((event) => entry.projection.handles.has(event.type))
              if (handled.length > 0) yield* entry.projection.applyBatch(handled)
              entry.checkpoint = yield* Checkpoints.save(
                entry.projection.name,
                last.position,
                entry.checkpoint
              )
            }),
          { concurrency: "unbounded", discard: true }
        )
      })
    )
  }).pipe(
    Effect.tapErrorCause((cause) => Effect.logWarning("projections restarting", Cause.pretty(cause))),
    Effect.retry(restartSchedule),
    Effect.orDie
  )
