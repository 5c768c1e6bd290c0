/**
 * Runs projections: every event after their checkpoints, then live ones, in batches. Each batch is
 * applied, and each checkpoint follows what was applied at most `CHECKPOINT_EVERY` later (and on
 * shutdown): one checkpoint write per projection per batch was a KV write per few events once
 * batches got small. Delivery is at-least-once (a crash replays what the checkpoint had not reached
 * yet), so projections apply idempotently; reactors' replays are dropped by JetStream's dedupe
 * window, which is far longer than `CHECKPOINT_EVERY`.
 *
 * All the projections of a process share one subscription, starting at the lowest checkpoint; each
 * skips what it has applied already. (One subscription each cost a stream consumer and a decode of
 * every event per projection.) If one fails, all restart from their own checkpoints.
 */
import { Cause, Chunk, Duration, Effect, Stream } from "effect"
import { eachAtOnce } from "../platform/AtOnce.js"
import { restartSchedule } from "../nats/JetStreamWorker.js"
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

/** How long the projector gathers events into one batch at most (the visibility it costs). */
const PROJECTION_WINDOW = Duration.millis(20)

/** How far behind what was applied a stored checkpoint may be. */
const CHECKPOINT_EVERY = Duration.millis(250)

export const runAll = <E, R>(projections: ReadonlyArray<Projection<E, R>>) =>
  Effect.gen(function* () {
    const store = yield* EventStore
    const running = yield* Effect.forEach(projections, (projection) =>
      Effect.map(Checkpoints.load(projection.name), (checkpoint) => ({
        projection,
        checkpoint,
        /** the last position applied; the stored checkpoint follows it */
        applied: checkpoint.position
      }))
    )
    const saveApplied = eachAtOnce(running, (entry) =>
      entry.applied > entry.checkpoint.position
        ? Effect.map(Checkpoints.save(entry.projection.name, entry.applied, entry.checkpoint), (saved) => {
            entry.checkpoint = saved
          })
        : Effect.void
    )
    // a checkpoint that cannot be saved now is saved on a later turn: the projections go on
    const saveLater = Effect.catchAllCause(saveApplied, (cause) =>
      Effect.logWarning("cannot save projection checkpoints", Cause.pretty(cause))
    )
    yield* Effect.forkScoped(Effect.forever(Effect.zipRight(Effect.sleep(CHECKPOINT_EVERY), saveLater)))
    yield* Effect.addFinalizer(() => Effect.ignore(saveApplied))
    const from = Math.min(...running.map((r) => r.checkpoint.position))
    // Batches of what arrived within 20 ms (up to the store's 1,000 events a chunk): under a burst
    // the store's chunks are already full; at a steady rate a message's few events a second would
    // each cost a whole batch (an Effect per projection, a KV write per event), which took more CPU
    // than the actors. The store gathers them (`gatherMs`): regrouping its chunks here with
    // `Stream.groupedWithin` cost a fifth of the projector's CPU in stream machinery.
    yield* store.subscribeAll({ from, gatherMs: Duration.toMillis(PROJECTION_WINDOW) }).pipe(
      Stream.runForEachChunk((chunk) => {
        const events = Chunk.toReadonlyArray(chunk)
        return eachAtOnce(running, (entry) =>
          Effect.gen(function* () {
            const fresh = events.filter((event) => event.position > entry.applied)
            const last = fresh[fresh.length - 1]
            if (last === undefined) return
            const handled = fresh.filter((event) => entry.projection.handles.has(event.type))
            if (handled.length > 0) yield* entry.projection.applyBatch(handled)
            entry.applied = last.position
          })
        )
      })
    )
  }).pipe(
    Effect.scoped,
    Effect.tapErrorCause((cause) => Effect.logWarning("projections restarting", Cause.pretty(cause))),
    Effect.retry(restartSchedule),
    Effect.orDie
  )
