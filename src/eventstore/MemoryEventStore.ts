/**
 * The in-memory event store: unit tests, and a gateway run without any server. Positions are
 * 1, 2, 3, ... so the events after position `p` are `all.slice(p)`.
 */
import { Clock, Effect, Layer, PubSub, Stream } from "effect"
import {
  type AppendRequest,
  describeExpected,
  EventStore,
  EventStoreError,
  type EventToAppend,
  type ExpectedRevision,
  findPriorAppend,
  type RecordedEvent,
  START,
  type SubscribeOptions,
  WrongExpectedRevision
} from "./EventStore.js"

// Data goes through JSON as it would in a real store, so tests see the same shapes.
const copyData = (data: unknown): Effect.Effect<unknown, EventStoreError> =>
  data === undefined
    ? Effect.succeed(undefined)
    : Effect.try({
        try: (): unknown => JSON.parse(JSON.stringify(data)),
        catch: (cause) =>
          new EventStoreError({
            reason: "InvalidData",
            message: "event data is not JSON-serialisable",
            cause
          })
      })

const satisfies = (revision: number, expected: ExpectedRevision): boolean =>
  expected._tag === "Any" || revision === (expected._tag === "NoStream" ? -1 : expected.revision)

const startOf = (options?: SubscribeOptions): number => Math.max(0, Math.floor(options?.from ?? START))

export const layer: Layer.Layer<EventStore> = Layer.effect(
  EventStore,
  Effect.gen(function* () {
    const all: Array<RecordedEvent> = []
    const streams = new Map<string, Array<RecordedEvent>>()
    const live = yield* PubSub.unbounded<RecordedEvent>()
    // One writer at a time: the check and the write are atomic, and live events leave in position order.
    const writer = yield* Effect.makeSemaphore(1)

    const append = Effect.fnUntraced(function* (
      streamName: string,
      events: ReadonlyArray<EventToAppend>,
      expected: ExpectedRevision
    ) {
      // Every other adapter refuses it too: the twin must not accept what the real stores refuse.
      if (streamName.length === 0) {
        return yield* new EventStoreError({ reason: "InvalidData", message: "a stream needs a name" })
      }
      if (events.length === 0) {
        return yield* new EventStoreError({
          reason: "InvalidData",
          message: `${streamName}: nothing to append`
        })
      }
      const data = yield* Effect.forEach(events, (event) => copyData(event.data))
      return yield* writer.withPermits(1)(
        Effect.gen(function* () {
          const existing = streams.get(streamName) ?? []
          const prior = findPriorAppend(existing, events, expected)
          if (prior !== undefined) return prior
          const actual = existing.length - 1
          if (!satisfies(actual, expected)) {
            return yield* new WrongExpectedRevision({
              streamName,
              expected: describeExpected(expected),
              actual
            })
          }
          const recordedAt = new Date(yield* Clock.currentTimeMillis)
          const recorded = events.map(
            (event, i): RecordedEvent => ({
              id: event.id,
              type: event.type,
              data: data[i],
              streamName,
              revision: actual + 1 + i,
              position: all.length + 1 + i,
              recordedAt
            })
          )
          all.push(...recorded)
          streams.set(streamName, existing.concat(recorded))
          yield* PubSub.publishAll(live, recorded)
          return { revision: actual + recorded.length, position: all.length, written: true }
        })
      )
    })

    // One after the other: the writer serialises appends anyway, and nothing here waits on I/O.
    const appendMany = (requests: ReadonlyArray<AppendRequest>) =>
      Effect.forEach(requests, ({ streamName, events, expected }) =>
        Effect.either(append(streamName, events, expected))
      )

    const read = Effect.fnUntraced(function* (streamName: string) {
      return yield* Effect.sync((): ReadonlyArray<RecordedEvent> => (streams.get(streamName) ?? []).slice())
    })

    const readAll = (options?: SubscribeOptions): Stream.Stream<RecordedEvent, EventStoreError> =>
      Stream.suspend(() => Stream.fromIterable(all.slice(startOf(options))))

    // Subscribing before the snapshot means an append is in the snapshot, in the queue, or in both;
    // the cut-off drops the "both".
    const subscribeAll = (options?: SubscribeOptions): Stream.Stream<RecordedEvent, EventStoreError> =>
      Stream.unwrapScoped(
        Effect.gen(function* () {
          const queue = yield* PubSub.subscribe(live)
          const from = startOf(options)
          const snapshot = all.slice(from)
          const cutOff = Math.max(from, all.length)
          return Stream.concat(
            Stream.fromIterable(snapshot),
            Stream.fromQueue(queue).pipe(Stream.filter((event) => event.position > cutOff))
          )
        })
      )

    const lastRevisions = (streamNames: ReadonlyArray<string>) =>
      Effect.sync(() => streamNames.map((streamName) => (streams.get(streamName)?.length ?? 0) - 1))

    const appendsAfter = (positions: ReadonlyArray<number>, cap: number) =>
      Effect.sync(() =>
        positions.map((position) => {
          let count = 0
          for (let i = all.length - 1; i >= 0 && count < cap; i--) {
            if ((all[i]?.position ?? 0) <= position) break
            count++
          }
          return count
        })
      )

    return EventStore.of({
      writtenIsExact: true,
      append,
      appendMany,
      read,
      lastRevisions,
      subscribeAll,
      readAll,
      appendsAfter
    })
  })
)
