/**
 * The events of the message streams this process's watches follow, as they are appended.
 *
 * One subscription to the whole store (`EventStore.subscribeAll`) serves every watch of the process:
 * it starts with the first watch, hands each event to the watches of its stream, and stops when the
 * last watch ends (one consumer per process, however many watch, as the console's search store or
 * the projector have; a consumer per watch would cost the server one for each open stream). No
 * polling: the store pushes.
 *
 * What makes a watch gapless: `follow` answers only once the subscription's start is fixed, at a
 * position the store had already reached. A watch reads its stream *after* `follow` answered: every
 * event appended after that read comes through the subscription, and one appended in between comes
 * both ways (the watch drops what it has, by revision). A subscription that fails starts again from
 * the last position it handed on, so a NATS outage delays events but loses none.
 */
import { Chunk, Context, Effect, Fiber, Layer, Queue, type Scope, Stream } from "effect"
import { restartSchedule } from "../nats/JetStreamWorker.js"
import { EventStore, EventStoreError, type RecordedEvent, START } from "../eventstore/EventStore.js"
import { StoreUnavailable, unavailable } from "../messages/Errors.js"
import * as Checkpoints from "../projections/Checkpoints.js"
import { ReadModels } from "../projections/ReadModels.js"

/**
 * The status projection's checkpoint: a position the store has reached (and, the projector keeping
 * up, near its head), so the shared subscription starts there instead of replaying the store.
 */
const STATUS_PROJECTION = "message-status"

export interface MessageFeedService {
  /**
   * Every event of `streamName` appended from now on, in order, for as long as the scope is open
   * (with, at first, some recorded just before). Read the stream after this answers: the two miss
   * nothing between them.
   */
  readonly follow: (
    streamName: string
  ) => Effect.Effect<Queue.Dequeue<RecordedEvent>, StoreUnavailable, Scope.Scope>
}

export class MessageFeed extends Context.Tag("sms-gateway/MessageFeed")<MessageFeed, MessageFeedService>() {}

const make = Effect.gen(function* () {
  const store = yield* EventStore
  const scope = yield* Effect.scope
  const readModels = yield* ReadModels
  const lock = yield* Effect.makeSemaphore(1)
  const watchers = new Map<string, Set<Queue.Queue<RecordedEvent>>>()
  let count = 0
  let running: Fiber.RuntimeFiber<never> | undefined
  /** the generation of the running subscription (0: none): one being stopped hands nothing on any more */
  let current = 0
  let generations = 0

  const subscription = (from: number, generation: number) => {
    let position = from
    const handOn = (events: Chunk.Chunk<RecordedEvent>) =>
      Effect.sync(() => {
        if (current !== generation) return
        for (const event of events) {
          const queues = watchers.get(event.streamName)
          if (queues !== undefined) for (const queue of queues) Queue.unsafeOffer(queue, event)
          position = event.position
        }
      })
    const once = Effect.suspend(() =>
      store.subscribeAll({ from: position }).pipe(Stream.runForEachChunk(handOn))
    ).pipe(
      // it never ends while the store is up: an end is a failure to start again from
      Effect.zipRight(
        Effect.fail(new EventStoreError({ reason: "Unavailable", message: "the subscription ended" }))
      )
    )
    return once.pipe(
      Effect.tapErrorCause((cause) => Effect.logWarning("message feed restarting", cause)),
      Effect.retry(restartSchedule),
      Effect.orDie
    )
  }

  /** Where a new subscription starts: at most the head, and as near it as is known. */
  const startFor = (streamName: string) =>
    Effect.all(
      [
        Checkpoints.load(STATUS_PROJECTION).pipe(
          Effect.provideService(ReadModels, readModels),
          Effect.mapError(unavailable("the projection checkpoints"))
        ),
        store.read(streamName).pipe(Effect.mapError(unavailable("the event store")))
      ],
      { concurrency: 2 }
    ).pipe(
      Effect.map(([checkpoint, events]) => Math.max(checkpoint.position, events.at(-1)?.position ?? START))
    )

  const follow = (streamName: string) =>
    Effect.acquireRelease(
      lock.withPermits(1)(
        Effect.gen(function* () {
          if (running === undefined) {
            const from = yield* startFor(streamName)
            const generation = ++generations
            current = generation
            // in the layer's scope: the subscription outlives the watch that started it. Interruptible
            // again: a fiber forked here (an acquire) would inherit the acquire's uninterruptibility
            running = yield* Effect.forkIn(Effect.interruptible(subscription(from, generation)), scope)
          }
          const queue = yield* Queue.unbounded<RecordedEvent>()
          const queues = watchers.get(streamName) ?? new Set()
          queues.add(queue)
          watchers.set(streamName, queues)
          count++
          return queue
        })
      ),
      (queue) =>
        lock.withPermits(1)(
          Effect.gen(function* () {
            const queues = watchers.get(streamName)
            queues?.delete(queue)
            if (queues?.size === 0) watchers.delete(streamName)
            yield* Queue.shutdown(queue)
            if (--count === 0 && running !== undefined) {
              // stopped in the background: closing the consumer may take a moment
              const stopping = running
              running = undefined
              current = 0
              yield* Fiber.interruptFork(stopping)
            }
          })
        )
    )

  return MessageFeed.of({ follow })
})

export const layer = Layer.scoped(MessageFeed, make)
