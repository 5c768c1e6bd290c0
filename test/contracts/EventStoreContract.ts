/**
 * The EventStore contract: every adapter runs this suite. The layer is shared by the whole suite,
 * so each test works on its own stream names and filters store-wide streams down to them.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Chunk, Effect, Either, Fiber, type Layer, Option, Queue, Stream } from "effect"
import {
  type AppendOutcome,
  type AppendRequest,
  type AppendResult,
  EventStore,
  type EventStoreService,
  type EventToAppend,
  ExpectedRevision,
  type RecordedEvent,
  START
} from "../../src/eventstore/EventStore.js"

const newStream = (): string => `sms-${crypto.randomUUID()}`

const event = (type: string, data: unknown = { n: 1 }): EventToAppend => ({
  id: crypto.randomUUID(),
  type,
  data
})

const events = (count: number, type = "Counted"): ReadonlyArray<EventToAppend> =>
  Array.from({ length: count }, (_, n) => event(type, { n }))

const ids = (recorded: ReadonlyArray<RecordedEvent>): ReadonlyArray<string> => recorded.map((e) => e.id)

// Bounds every wait on the store: a missing event fails the test instead of hanging it.
const within = <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.timeout(self, "5 seconds")

/** An outcome in one comparable word: the revision appended, or the error's tag. */
const summary = (outcome: AppendOutcome): number | string =>
  Either.match(outcome, { onLeft: (error) => error._tag, onRight: (result) => result.revision })

const isIncreasing = (numbers: ReadonlyArray<number>): boolean =>
  numbers.every((n, i) => i === 0 || n > (numbers[i - 1] ?? Number.POSITIVE_INFINITY))

/**
 * A repeated append answers the first one's revision and position, and says it wrote nothing where
 * the store can tell (`writtenIsExact`); the first one says it wrote.
 */
const expectRepeat = (store: EventStoreService, again: AppendResult, first: AppendResult) => {
  expect({ revision: again.revision, position: again.position }).toEqual({
    revision: first.revision,
    position: first.position
  })
  expect(first.written).toBe(true)
  if (store.writtenIsExact) expect(again.written).toBe(false)
}

export const suite = (name: string, storeLayer: Layer.Layer<EventStore, unknown>): void => {
  describe(`EventStore contract: ${name}`, () => {
    // Live clock: recordedAt is real and the timeouts above actually fire.
    layer(storeLayer, { excludeTestServices: true })((it) => {
      describe("append and read", () => {
        it.effect("NoStream creates a stream at revision 0", () =>
          Effect.gen(function* () {
            const store = yield* EventStore
            const stream = newStream()
            const first = event("SmsRequested", { to: "+33612345678" })
            const result = yield* store.append(stream, [first], ExpectedRevision.NoStream())
            expect(result.revision).toBe(0)
            expect(result.position).toBeGreaterThan(0)
            const recorded = yield* store.read(stream)
            expect(ids(recorded)).toEqual([first.id])
            expect(recorded[0]?.position).toBe(result.position)
          })
        )

        it.effect("NoStream on an existing stream fails with its actual revision", () =>
          Effect.gen(function* () {
            const store = yield* EventStore
            const stream = newStream()
            yield* store.append(stream, events(2), ExpectedRevision.NoStream())
            const error = yield* Effect.flip(
              store.append(stream, [event("Other")], ExpectedRevision.NoStream())
            )
            expect(error._tag).toBe("WrongExpectedRevision")
            if (error._tag === "WrongExpectedRevision") {
              expect(error.streamName).toBe(stream)
              expect(error.actual).toBe(1)
              expect(error.expected).toBe("no stream")
            }
            expect(yield* store.read(stream)).toHaveLength(2)
          })
        )

        it.effect("Exact(n) appends after revision n", () =>
          Effect.gen(function* () {
            const store = yield* EventStore
            const stream = newStream()
            const created = yield* store.append(stream, [event("A")], ExpectedRevision.NoStream())
            const second = yield* store.append(stream, [event("B")], ExpectedRevision.Exact({ revision: 0 }))
            const third = yield* store.append(stream, [event("C")], ExpectedRevision.Exact({ revision: 1 }))
            expect([created.revision, second.revision, third.revision]).toEqual([0, 1, 2])
            expect(isIncreasing([created.position, second.position, third.position])).toBe(true)
            expect((yield* store.read(stream)).map((e) => e.type)).toEqual(["A", "B", "C"])
          })
        )

        it.effect("a stale Exact fails with the actual revision and writes nothing", () =>
          Effect.gen(function* () {
            const store = yield* EventStore
            const stream = newStream()
            yield* store.append(stream, events(3), ExpectedRevision.NoStream())
            const error = yield* Effect.flip(
              store.append(stream, events(2, "Late"), ExpectedRevision.Exact({ revision: 1 }))
            )
            expect(error._tag).toBe("WrongExpectedRevision")
            if (error._tag === "WrongExpectedRevision") {
              expect(error.actual).toBe(2)
              expect(error.expected).toBe("revision 1")
            }
            expect((yield* store.read(stream)).map((e) => e.type)).toEqual(["Counted", "Counted", "Counted"])
          })
        )

        it.effect("Exact on a missing stream fails with actual -1", () =>
          Effect.gen(function* () {
            const store = yield* EventStore
            const stream = newStream()
            const error = yield* Effect.flip(
              store.append(stream, [event("A")], ExpectedRevision.Exact({ revision: 0 }))
            )
            expect(error._tag).toBe("WrongExpectedRevision")
            if (error._tag === "WrongExpectedRevision") expect(error.actual).toBe(-1)
            expect(yield* store.read(stream)).toEqual([])
          })
        )

        it.effect("Any appends to a new and to an existing stream", () =>
          Effect.gen(function* () {
            const store = yield* EventStore
            const stream = newStream()
            const first = yield* store.append(stream, [event("A")], ExpectedRevision.Any())
            const second = yield* store.append(stream, events(2), ExpectedRevision.Any())
            const third = yield* store.append(stream, [event("C")], ExpectedRevision.Any())
            expect([first.revision, second.revision, third.revision]).toEqual([0, 2, 3])
            expect((yield* store.read(stream)).map((e) => e.revision)).toEqual([0, 1, 2, 3])
          })
        )

        it.effect("a multi-event append gets consecutive revisions and increasing positions", () =>
          Effect.gen(function* () {
            const store = yield* EventStore
            const stream = newStream()
            yield* store.append(stream, [event("A")], ExpectedRevision.NoStream())
            const batch = events(3, "Batched")
            const result = yield* store.append(stream, batch, ExpectedRevision.Exact({ revision: 0 }))
            expect(result.revision).toBe(3)
            const recorded = yield* store.read(stream)
            expect(recorded.map((e) => e.revision)).toEqual([0, 1, 2, 3])
            expect(ids(recorded).slice(1)).toEqual(batch.map((e) => e.id))
            expect(isIncreasing(recorded.map((e) => e.position))).toBe(true)
            expect(recorded[3]?.position).toBe(result.position)
          })
        )

        it.effect("a conflicting multi-event append writes none of its events", () =>
          Effect.gen(function* () {
            const store = yield* EventStore
            const stream = newStream()
            yield* store.append(stream, [event("A")], ExpectedRevision.NoStream())
            const result = yield* Effect.either(store.append(stream, events(3), ExpectedRevision.NoStream()))
            expect(Either.isLeft(result)).toBe(true)
            expect(yield* store.read(stream)).toHaveLength(1)
          })
        )

        it.effect("read returns every event in order with its data, stream, revision and date", () =>
          Effect.gen(function* () {
            const store = yield* EventStore
            const stream = newStream()
            const data = {
              text: 'Ünïcødé ✓ "quoted" \n newline',
              nested: { list: [1, 2.5, null, true], empty: {} },
              count: 0
            }
            const written = [
              event("SmsRequested", data),
              event("SmsDispatched", [1, "two"]),
              event("SmsDelivered")
            ]
            yield* store.append(stream, written.slice(0, 1), ExpectedRevision.NoStream())
            yield* store.append(stream, written.slice(1), ExpectedRevision.Exact({ revision: 0 }))
            const recorded = yield* store.read(stream)
            expect(recorded.map((e) => [e.id, e.type, e.data, e.streamName, e.revision])).toEqual(
              written.map((e, i) => [e.id, e.type, e.data, stream, i])
            )
            for (const e of recorded) {
              expect(e.recordedAt).toBeInstanceOf(Date)
              expect(Number.isNaN(e.recordedAt.getTime())).toBe(false)
            }
          })
        )

        it.effect("read of an unknown stream is empty", () =>
          Effect.gen(function* () {
            const store = yield* EventStore
            expect(yield* store.read(newStream())).toEqual([])
          })
        )

        it.effect("lastRevisions: each stream's last revision in the order asked, -1 for none", () =>
          Effect.gen(function* () {
            const store = yield* EventStore
            const [one, three, none] = [newStream(), newStream(), newStream()]
            yield* store.append(one, [event("A")], ExpectedRevision.NoStream())
            yield* store.append(three, events(2), ExpectedRevision.NoStream())
            yield* store.append(three, [event("C")], ExpectedRevision.Exact({ revision: 1 }))
            expect(yield* store.lastRevisions([three, none, one])).toEqual([2, -1, 0])
            expect(yield* store.lastRevisions([])).toEqual([])
            // it follows appends made after a first look
            yield* store.append(one, [event("B")], ExpectedRevision.Exact({ revision: 0 }))
            expect(yield* store.lastRevisions([one])).toEqual([1])
          })
        )

        it.effect(
          "appendsAfter: how far the head is past a position, 0 at the head, bounded by its cap",
          () =>
            Effect.gen(function* () {
              const store = yield* EventStore
              const [a, b] = [newStream(), newStream()]
              const first = yield* store.append(a, [event("A0")], ExpectedRevision.NoStream())
              for (const [n, type] of ["A1", "A2", "A3"].entries()) {
                yield* store.append(a, [event(type)], ExpectedRevision.Exact({ revision: n }))
              }
              // one append of two events: one append, two events
              const last = yield* store.append(b, events(2), ExpectedRevision.NoStream())
              const [behind, atHead] = yield* store.appendsAfter([first.position, last.position], 1_000)
              expect(behind).toBeGreaterThanOrEqual(4)
              expect(behind).toBeLessThanOrEqual(5)
              expect(atHead).toBe(0)
              expect(yield* store.appendsAfter([first.position], 2)).toEqual([2])
              expect(yield* store.appendsAfter([], 2)).toEqual([])
            })
        )

        it.effect("streams are independent", () =>
          Effect.gen(function* () {
            const store = yield* EventStore
            const [a, b] = [newStream(), newStream()]
            yield* store.append(a, events(2), ExpectedRevision.NoStream())
            const onB = yield* store.append(b, [event("B")], ExpectedRevision.NoStream())
            expect(onB.revision).toBe(0)
            expect((yield* store.read(a)).map((e) => e.streamName)).toEqual([a, a])
            expect((yield* store.read(b)).map((e) => e.streamName)).toEqual([b])
          })
        )
      })

      describe("idempotent retries", () => {
        it.effect("the same NoStream append twice returns the first result and writes once", () =>
          Effect.gen(function* () {
            const store = yield* EventStore
            const stream = newStream()
            const batch = events(2)
            const first = yield* store.append(stream, batch, ExpectedRevision.NoStream())
            const again = yield* store.append(stream, batch, ExpectedRevision.NoStream())
            expectRepeat(store, again, first)
            expect(ids(yield* store.read(stream))).toEqual(batch.map((e) => e.id))
          })
        )

        it.effect("a NoStream retry after later appends returns the first result", () =>
          Effect.gen(function* () {
            const store = yield* EventStore
            const stream = newStream()
            const requested = [event("SmsRequested")]
            const first = yield* store.append(stream, requested, ExpectedRevision.NoStream())
            yield* store.append(stream, [event("SmsDispatched")], ExpectedRevision.Exact({ revision: 0 }))
            const again = yield* store.append(stream, requested, ExpectedRevision.NoStream())
            expectRepeat(store, again, first)
            expect(yield* store.read(stream)).toHaveLength(2)
          })
        )

        it.effect("an Exact retry after other appends returns the first result", () =>
          Effect.gen(function* () {
            const store = yield* EventStore
            const stream = newStream()
            yield* store.append(stream, [event("A")], ExpectedRevision.NoStream())
            const batch = events(2, "B")
            const first = yield* store.append(stream, batch, ExpectedRevision.Exact({ revision: 0 }))
            const same = yield* store.append(stream, batch, ExpectedRevision.Exact({ revision: 0 }))
            yield* store.append(stream, [event("C")], ExpectedRevision.Exact({ revision: 2 }))
            const later = yield* store.append(stream, batch, ExpectedRevision.Exact({ revision: 0 }))
            expectRepeat(store, same, first)
            expectRepeat(store, later, first)
            expect((yield* store.read(stream)).map((e) => e.type)).toEqual(["A", "B", "B", "C"])
          })
        )

        it.effect("an Any retry returns the first result", () =>
          Effect.gen(function* () {
            const store = yield* EventStore
            const stream = newStream()
            const once = [event("A")]
            const first = yield* store.append(stream, once, ExpectedRevision.Any())
            const again = yield* store.append(stream, once, ExpectedRevision.Any())
            expectRepeat(store, again, first)
            expect(yield* store.read(stream)).toHaveLength(1)
          })
        )
      })

      it.effect("of 10 concurrent Exact(0) appends exactly one succeeds", () =>
        Effect.gen(function* () {
          const store = yield* EventStore
          const stream = newStream()
          yield* store.append(stream, [event("A")], ExpectedRevision.NoStream())
          const outcomes = yield* Effect.forEach(
            Array.from({ length: 10 }, (_, n) => [event(`Racer${n}`)]),
            (racer) => Effect.either(store.append(stream, racer, ExpectedRevision.Exact({ revision: 0 }))),
            { concurrency: "unbounded" }
          )
          const won = outcomes.filter(Either.isRight)
          expect(won).toHaveLength(1)
          expect(won[0]?.right.revision).toBe(1)
          for (const lost of outcomes.filter(Either.isLeft)) {
            expect(lost.left._tag).toBe("WrongExpectedRevision")
            if (lost.left._tag === "WrongExpectedRevision") expect(lost.left.actual).toBe(1)
          }
          expect((yield* store.read(stream)).map((e) => e.revision)).toEqual([0, 1])
        })
      )

      describe("appendMany", () => {
        it.effect("an empty batch returns no outcomes", () =>
          Effect.gen(function* () {
            const store = yield* EventStore
            expect(yield* store.appendMany([])).toEqual([])
          })
        )

        it.effect("creates several new streams at once", () =>
          Effect.gen(function* () {
            const store = yield* EventStore
            const requests = Array.from(
              { length: 5 },
              (_, n): AppendRequest => ({
                streamName: newStream(),
                events: events(n + 1),
                expected: ExpectedRevision.NoStream()
              })
            )
            const outcomes = yield* store.appendMany(requests)
            expect(outcomes.map(summary)).toEqual([0, 1, 2, 3, 4])
            const lastPositions: Array<number | undefined> = []
            for (const request of requests) {
              const recorded = yield* store.read(request.streamName)
              expect(ids(recorded)).toEqual(request.events.map((e) => e.id))
              lastPositions.push(recorded.at(-1)?.position)
            }
            expect(outcomes.map((outcome) => Either.getOrUndefined(outcome)?.position)).toEqual(lastPositions)
          })
        )

        it.effect("outcomes come in the order of the requests", () =>
          Effect.gen(function* () {
            const store = yield* EventStore
            const taken = newStream()
            yield* store.append(taken, events(3), ExpectedRevision.NoStream())
            // revision n for a new stream of n + 1 events; every third request conflicts
            const requests = Array.from(
              { length: 30 },
              (_, n): AppendRequest =>
                n % 3 === 2
                  ? { streamName: taken, events: [event("Late")], expected: ExpectedRevision.NoStream() }
                  : { streamName: newStream(), events: events(n + 1), expected: ExpectedRevision.NoStream() }
            )
            const outcomes = yield* store.appendMany(requests)
            expect(outcomes.map(summary)).toEqual(
              requests.map((_, n) => (n % 3 === 2 ? "WrongExpectedRevision" : n))
            )
          })
        )

        it.effect("a WrongExpectedRevision fails its own request only", () =>
          Effect.gen(function* () {
            const store = yield* EventStore
            const [before, taken, after] = [newStream(), newStream(), newStream()]
            yield* store.append(taken, events(2), ExpectedRevision.NoStream())
            const outcomes = yield* store.appendMany([
              { streamName: before, events: [event("A")], expected: ExpectedRevision.NoStream() },
              { streamName: taken, events: [event("X")], expected: ExpectedRevision.NoStream() },
              { streamName: after, events: [event("B")], expected: ExpectedRevision.NoStream() }
            ])
            expect(outcomes.map(summary)).toEqual([0, "WrongExpectedRevision", 0])
            expect(outcomes[1] && Option.getOrUndefined(Either.getLeft(outcomes[1]))).toMatchObject({
              streamName: taken,
              expected: "no stream",
              actual: 1
            })
            expect(yield* store.read(taken)).toHaveLength(2)
            expect((yield* store.read(before)).map((e) => e.type)).toEqual(["A"])
            expect((yield* store.read(after)).map((e) => e.type)).toEqual(["B"])
          })
        )

        it.effect("Exact and Any append after earlier appends, and a stale Exact fails alone", () =>
          Effect.gen(function* () {
            const store = yield* EventStore
            const [a, b, c] = [newStream(), newStream(), newStream()]
            const created = yield* store.appendMany(
              [a, b, c].map((streamName) => ({
                streamName,
                events: events(2, "First"),
                expected: ExpectedRevision.NoStream()
              }))
            )
            expect(created.map(summary)).toEqual([1, 1, 1])
            const next = yield* store.appendMany([
              { streamName: a, events: [event("Second")], expected: ExpectedRevision.Exact({ revision: 1 }) },
              { streamName: b, events: events(2, "Second"), expected: ExpectedRevision.Any() },
              { streamName: c, events: [event("Second")], expected: ExpectedRevision.Exact({ revision: 0 }) }
            ])
            expect(next.map(summary)).toEqual([2, 3, "WrongExpectedRevision"])
            const last = yield* store.appendMany([
              { streamName: a, events: [event("Third")], expected: ExpectedRevision.Exact({ revision: 2 }) },
              { streamName: b, events: [event("Third")], expected: ExpectedRevision.Exact({ revision: 3 }) }
            ])
            expect(last.map(summary)).toEqual([3, 4])
            expect((yield* store.read(a)).map((e) => e.type)).toEqual(["First", "First", "Second", "Third"])
            expect((yield* store.read(b)).map((e) => e.revision)).toEqual([0, 1, 2, 3, 4])
            expect((yield* store.read(c)).map((e) => e.type)).toEqual(["First", "First"])
          })
        )

        it.effect("a retried batch returns the original outcomes and writes nothing twice", () =>
          Effect.gen(function* () {
            const store = yield* EventStore
            const existing = newStream()
            const taken = newStream()
            yield* store.append(existing, [event("A")], ExpectedRevision.NoStream())
            yield* store.append(taken, [event("A")], ExpectedRevision.NoStream())
            const requests: ReadonlyArray<AppendRequest> = [
              { streamName: newStream(), events: events(2), expected: ExpectedRevision.NoStream() },
              {
                streamName: existing,
                events: events(2, "B"),
                expected: ExpectedRevision.Exact({ revision: 0 })
              },
              { streamName: taken, events: [event("X")], expected: ExpectedRevision.NoStream() },
              { streamName: newStream(), events: [event("C")], expected: ExpectedRevision.Any() }
            ]
            const first = yield* store.appendMany(requests)
            expect(first.map(summary)).toEqual([1, 2, "WrongExpectedRevision", 0])
            const again = yield* store.appendMany(requests)
            expect(again.map(summary)).toEqual(first.map(summary))
            const results = (outcomes: ReadonlyArray<AppendOutcome>) =>
              outcomes.filter(Either.isRight).map((outcome) => outcome.right)
            results(again).forEach((result, i) => {
              const original = results(first)[i]
              if (original !== undefined) expectRepeat(store, result, original)
            })
            for (const request of requests) {
              const recorded = yield* store.read(request.streamName)
              expect(recorded).toHaveLength(request.streamName === existing ? 3 : request.events.length)
            }
          })
        )

        it.effect("an invalid request fails with an EventStoreError for itself only", () =>
          Effect.gen(function* () {
            const store = yield* EventStore
            const [a, b] = [newStream(), newStream()]
            const outcomes = yield* store.appendMany([
              { streamName: a, events: [event("A")], expected: ExpectedRevision.NoStream() },
              { streamName: "", events: [event("A")], expected: ExpectedRevision.NoStream() },
              { streamName: newStream(), events: [], expected: ExpectedRevision.NoStream() },
              { streamName: b, events: [event("B")], expected: ExpectedRevision.NoStream() }
            ])
            expect(outcomes.map(summary)).toEqual([0, "EventStoreError", "EventStoreError", 0])
            for (const outcome of outcomes) {
              if (Either.isLeft(outcome) && outcome.left._tag === "EventStoreError") {
                expect(outcome.left.reason).toBe("InvalidData")
              }
            }
            expect(yield* store.read(a)).toHaveLength(1)
            expect(yield* store.read(b)).toHaveLength(1)
          })
        )
      })

      describe("subscribeAll and readAll", () => {
        it.scoped("subscribeAll from START replays, then goes live, in order and without duplicates", () =>
          Effect.gen(function* () {
            const store = yield* EventStore
            const [a, b] = [newStream(), newStream()]
            const mine = new Set([a, b])
            yield* store.append(a, [event("A0")], ExpectedRevision.NoStream())
            yield* store.append(b, events(3, "B"), ExpectedRevision.NoStream())
            yield* store.append(a, [event("A1")], ExpectedRevision.Exact({ revision: 0 }))

            const seen = yield* Queue.unbounded<RecordedEvent>()
            yield* store.subscribeAll({ from: START }).pipe(
              Stream.filter((e) => mine.has(e.streamName)),
              Stream.runForEach((e) => Queue.offer(seen, e)),
              Effect.tapErrorCause(Effect.logError),
              Effect.forkScoped
            )
            const prior = yield* within(Queue.takeN(seen, 5))
            expect(Chunk.toReadonlyArray(prior).map((e) => e.type)).toEqual(["A0", "B", "B", "B", "A1"])

            // live: the subscription has caught up, so these are appended after it started
            yield* store.append(b, events(2, "Live"), ExpectedRevision.Exact({ revision: 2 }))
            yield* store.append(a, [event("A2")], ExpectedRevision.Any())
            yield* store.append(a, [event("Sentinel")], ExpectedRevision.Exact({ revision: 2 }))
            const live = yield* within(Queue.takeN(seen, 4))
            expect(Chunk.toReadonlyArray(live).map((e) => e.type)).toEqual(["Live", "Live", "A2", "Sentinel"])

            const all = [...Chunk.toReadonlyArray(prior), ...Chunk.toReadonlyArray(live)]
            expect(isIncreasing(all.map((e) => e.position))).toBe(true)
            expect(new Set(ids(all)).size).toBe(all.length)
            expect(yield* Queue.size(seen)).toBe(0)
          })
        )

        it.scoped("subscribeAll resumes strictly after a position, also inside a multi-event append", () =>
          Effect.gen(function* () {
            const store = yield* EventStore
            const stream = newStream()
            yield* store.append(stream, [event("E0")], ExpectedRevision.NoStream())
            yield* store.append(
              stream,
              ["E1", "E2", "E3"].map((type) => event(type)),
              ExpectedRevision.Exact({ revision: 0 })
            )
            yield* store.append(stream, [event("E4")], ExpectedRevision.Exact({ revision: 3 }))
            const recorded = yield* store.read(stream)
            const typesAfter = (index: number, count: number) =>
              store.subscribeAll({ from: recorded[index]?.position ?? START }).pipe(
                Stream.filter((e) => e.streamName === stream),
                Stream.take(count),
                Stream.map((e) => e.type),
                Stream.runCollect,
                Effect.map(Chunk.toReadonlyArray),
                within
              )
            expect(yield* typesAfter(0, 4)).toEqual(["E1", "E2", "E3", "E4"])
            expect(yield* typesAfter(1, 3)).toEqual(["E2", "E3", "E4"])
            expect(yield* typesAfter(2, 2)).toEqual(["E3", "E4"])
            expect(yield* typesAfter(3, 1)).toEqual(["E4"])

            // from the last event: nothing until the next append, which arrives live
            const next = yield* typesAfter(4, 1).pipe(Effect.fork)
            yield* store.append(stream, [event("E5")], ExpectedRevision.Exact({ revision: 4 }))
            expect(yield* Fiber.join(next)).toEqual(["E5"])
          })
        )

        it.effect("readAll returns the events after a position that exist when called, then ends", () =>
          Effect.gen(function* () {
            const store = yield* EventStore
            const [a, b] = [newStream(), newStream()]
            const mine = new Set([a, b])
            yield* store.append(a, [event("A0")], ExpectedRevision.NoStream())
            yield* store.append(
              b,
              ["B0", "B1", "B2"].map((type) => event(type)),
              ExpectedRevision.NoStream()
            )
            yield* store.append(a, [event("A1")], ExpectedRevision.Exact({ revision: 0 }))
            const readMine = (from: number) =>
              store.readAll({ from }).pipe(
                Stream.filter((e) => mine.has(e.streamName)),
                Stream.runCollect,
                Effect.map(Chunk.toReadonlyArray),
                within
              )
            const everything = yield* readMine(START)
            expect(everything.map((e) => e.type)).toEqual(["A0", "B0", "B1", "B2", "A1"])
            expect(isIncreasing(everything.map((e) => e.position))).toBe(true)
            const afterB0 = yield* readMine(everything[1]?.position ?? START)
            expect(afterB0.map((e) => e.type)).toEqual(["B1", "B2", "A1"])
            const atEnd = yield* readMine(everything[4]?.position ?? START)
            expect(atEnd).toEqual([])
            // what is appended later belongs to the next call
            yield* store.append(b, [event("B3")], ExpectedRevision.Exact({ revision: 2 }))
            expect((yield* readMine(everything[4]?.position ?? START)).map((e) => e.type)).toEqual(["B3"])
          })
        )

        it.effect("readAll agrees with append results and read", () =>
          Effect.gen(function* () {
            const store = yield* EventStore
            const stream = newStream()
            const results: Array<AppendResult> = []
            results.push(yield* store.append(stream, events(2), ExpectedRevision.NoStream()))
            results.push(yield* store.append(stream, events(1), ExpectedRevision.Exact({ revision: 1 })))
            const fromStore = yield* store.readAll({ from: START }).pipe(
              Stream.filter((e) => e.streamName === stream),
              Stream.runCollect,
              Effect.map(Chunk.toReadonlyArray),
              within
            )
            const read = yield* store.read(stream)
            expect(fromStore.map((e) => [e.id, e.revision, e.position])).toEqual(
              read.map((e) => [e.id, e.revision, e.position])
            )
            expect(results.map((r) => r.position)).toEqual([read[1]?.position, read[2]?.position])
          })
        )
      })
    })
  })
}
