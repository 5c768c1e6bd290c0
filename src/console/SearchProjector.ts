/**
 * Keeps this process's search store up to date: every event after the store's own position, then
 * the live ones, in batches (what arrived within 20 ms, up to 1,000), each applied with the new
 * position in one transaction. Like the projector role's runner, with one difference: the
 * checkpoint lives in the SQLite file rather than in KV, because each HTTP process has a file of its
 * own, at its own position (see the README, "Operator console").
 *
 * `rebuild` empties the store and replays from position 0 (an admin's button on the overview); a
 * missing file, or one of another schema version, is rebuilt the same way at start.
 *
 * When it starts: a store kept in a file (`CONSOLE_SEARCH_DB`) is followed from the process's start,
 * so it stays current; the default store in memory is built from the first console request of the
 * process on (`ensureRunning`). Indexing every event costs about a third of a millisecond of CPU
 * per message, which a process whose console nobody opens (an API node) should not pay.
 */
import { Cause, Chunk, Clock, Context, Duration, Effect, FiberHandle, Layer, Stream } from "effect"
import { restartSchedule } from "../nats/JetStreamWorker.js"
import { EventStore } from "../eventstore/EventStore.js"
import { ACTIVITY_RETENTION_MS, applyEvents, BUCKET_MS, handles } from "./SearchProjection.js"
import { SearchStore } from "./SearchStore.js"

const WINDOW = Duration.millis(20)
const BATCH = 1000
const PRUNE_EVERY_MS = 60_000

export interface SearchProjectorService {
  /** starts following the events if it does not yet (at once, when nothing runs) */
  readonly ensureRunning: Effect.Effect<void>
  /** empties the store and rebuilds it from the first event; answers once the replay has started */
  readonly rebuild: Effect.Effect<void>
}

export class SearchProjector extends Context.Tag("sms-gateway/ConsoleSearchProjector")<
  SearchProjector,
  SearchProjectorService
>() {
  /** `followFromStart`: follow the events from the process's start rather than the first request */
  static layer = (followFromStart: boolean) =>
    Layer.scoped(
      SearchProjector,
      Effect.gen(function* () {
        const store = yield* SearchStore
        const events = yield* EventStore
        let prunedAt = 0
        const follow = Effect.suspend(() =>
          events.subscribeAll({ from: store.position() }).pipe(
            Stream.groupedWithin(BATCH, WINDOW),
            Stream.runForEach((chunk) =>
              Effect.gen(function* () {
                const batch = Chunk.toReadonlyArray(chunk)
                const last = batch[batch.length - 1]
                if (last === undefined) return
                const now = yield* Clock.currentTimeMillis
                yield* applyEvents(
                  store,
                  batch.filter((event) => handles.has(event.type)),
                  last.position,
                  now
                )
                if (now - prunedAt >= PRUNE_EVERY_MS) {
                  prunedAt = now
                  store.prune(Math.floor((now - ACTIVITY_RETENTION_MS) / BUCKET_MS) * BUCKET_MS)
                }
              })
            )
          )
        ).pipe(
          Effect.tapErrorCause((cause) =>
            Effect.logWarning("console search store restarting", Cause.pretty(cause))
          ),
          Effect.retry(restartSchedule),
          Effect.catchAllCause((cause) =>
            Effect.logError("console search store stopped", Cause.pretty(cause))
          )
        )
        const handle = yield* FiberHandle.make<void>()
        const ensureRunning = Effect.asVoid(FiberHandle.run(handle, follow, { onlyIfMissing: true }))
        if (followFromStart) yield* ensureRunning
        return {
          ensureRunning,
          rebuild: Effect.gen(function* () {
            // the transaction is synchronous: interrupting the fiber never leaves half a batch behind
            yield* FiberHandle.clear(handle)
            store.reset()
            yield* Effect.logInfo("console search store rebuilding from the first event")
            yield* FiberHandle.run(handle, follow)
          })
        }
      })
    )
}
