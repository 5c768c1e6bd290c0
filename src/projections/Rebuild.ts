/**
 * Drops a read model and rebuilds it from position 0. Safe while the live projector runs: documents
 * apply events idempotently by position, and the rebuild keeps replaying until it has reached both
 * the store's head and the live checkpoint, so an event the live projector met on an emptied bucket
 * is applied again here. The checkpoint is never moved back.
 *
 * After the reset, a read model takes every document to be absent and creates it without a read; one
 * the live projector created meanwhile refuses the create, and is read and updated instead.
 */
import { Effect, Stream } from "effect"
import { EventStore, START } from "../eventstore/EventStore.js"
import { Nats, NatsError } from "../nats/Nats.js"
import * as Checkpoints from "./Checkpoints.js"
import type { ReadModel } from "./Registry.js"

export interface RebuildProgress {
  readonly projection: string
  readonly events: number
  readonly position: number
}

/**
 * Empties the bucket in one operation by purging its stream. (Not key by key: `kv.keys()` can end
 * early on nats-server 2.9, and a stale document left behind would block its own rebuild.)
 */
const purge = (model: ReadModel) =>
  Effect.flatMap(Nats, ({ jsm }) =>
    Effect.tryPromise({
      try: () => jsm.streams.purge(`KV_${model.bucketName}`),
      catch: (cause) =>
        new NatsError({ reason: "RequestFailed", message: `cannot empty ${model.projection.name}`, cause })
    })
  )

/**
 * Events per `applyBatch` on a replay: a message's events sit close together in the store, so a big
 * batch folds most of them into one write per document, and puts thousands of writes in flight.
 * (100,000 messages of 3 events took 143,000 KV writes in batches of 1,000; 109,000 in batches of
 * 5,000; 102,000 of 20,000.)
 */
const REPLAY_BATCH = 5000

export const rebuild = (
  model: ReadModel,
  onProgress: (progress: RebuildProgress) => Effect.Effect<void> = () => Effect.void
) =>
  Effect.gen(function* () {
    const store = yield* EventStore
    const { projection } = model
    yield* purge(model)
    if (projection.reset) yield* projection.reset
    let position = START
    let events = 0
    // a busy store always has newer events; the live projector takes those, five passes are plenty
    for (let pass = 0; pass < 5; pass++) {
      const before = position
      yield* store.readAll({ from: position }).pipe(
        Stream.grouped(REPLAY_BATCH),
        // the next batch is read while this one's writes are in flight
        Stream.buffer({ capacity: 1 }),
        Stream.mapEffect((chunk) =>
          Effect.gen(function* () {
            const batch = [...chunk]
            const handled = batch.filter((event) => projection.handles.has(event.type))
            if (handled.length > 0) yield* projection.applyBatch(handled)
            events += batch.length
            position = batch[batch.length - 1]?.position ?? position
            yield* onProgress({ projection: projection.name, events, position })
          })
        ),
        Stream.runDrain
      )
      const live = yield* Checkpoints.load(projection.name)
      if (position === before && live.position <= position) break
    }
    // the live projector (if any) has its own checkpoint; one that never ran starts after the rebuild
    const checkpoint = yield* Checkpoints.load(projection.name)
    yield* Checkpoints.save(projection.name, position, checkpoint)
    return { projection: projection.name, events, position } satisfies RebuildProgress
  })
