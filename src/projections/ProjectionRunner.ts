/**
 * Runs a projection: every event after its checkpoint, then live ones, in batches; each batch is
 * applied, then the checkpoint moves to the batch's last position. Delivery is at-least-once
 * (a crash between the two replays the batch), so projections apply idempotently.
 */
import { Cause, Effect, Layer, Ref, Stream } from "effect"
import { EventStore, type RecordedEvent } from "../eventstore/EventStore.js"
import { restartSchedule } from "../actors/JetStreamWorker.js"
import * as Checkpoints from "./Checkpoints.js"

export interface Projection<E, R> {
  readonly name: string
  /** event types this projection reads; others only move its checkpoint */
  readonly handles: ReadonlySet<string>
  readonly applyBatch: (events: ReadonlyArray<RecordedEvent>) => Effect.Effect<void, E, R>
  /** forgets what it cached of its read model, which has just been emptied (see `Rebuild`) */
  readonly reset?: Effect.Effect<void>
}

export interface ProjectionProgress {
  readonly position: number
}

export const run = <E, R>(projection: Projection<E, R>, progress?: Ref.Ref<ProjectionProgress>) =>
  Effect.gen(function* () {
    const store = yield* EventStore
    let checkpoint = yield* Checkpoints.load(projection.name)
    yield* store.subscribeAll({ from: checkpoint.position }).pipe(
      Stream.groupedWithin(1000, "20 millis"),
      Stream.mapEffect((chunk) =>
        Effect.gen(function* () {
          const events = [...chunk]
          const last = events[events.length - 1]
          if (last === undefined) return
          const handled = events.filter((event) => projection.handles.has(event.type))
          if (handled.length > 0) yield* projection.applyBatch(handled)
          checkpoint = yield* Checkpoints.save(projection.name, last.position, checkpoint)
          if (progress) yield* Ref.set(progress, { position: last.position })
        })
      ),
      Stream.runDrain
    )
  }).pipe(
    Effect.tapErrorCause((cause) =>
      Effect.logWarning(`projection ${projection.name} restarting`, Cause.pretty(cause))
    ),
    Effect.retry(restartSchedule),
    Effect.orDie
  )

export const layer = <E, R>(projection: Projection<E, R>) =>
  Layer.scopedDiscard(Effect.forkScoped(run(projection)))
