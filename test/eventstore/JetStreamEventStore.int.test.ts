import { describe, expect, layer } from "@effect/vitest"
import { Chunk, Context, Effect, Layer, Stream } from "effect"
import { EventStore, type EventToAppend, ExpectedRevision, START } from "../../src/eventstore/EventStore.js"
import * as JetStreamEventStore from "../../src/eventstore/JetStreamEventStore.js"
import { Nats } from "../../src/nats/Nats.js"
import { suite } from "../contracts/EventStoreContract.js"
import { NatsTest, TestNatsServer } from "../support/nats.js"

suite("jetstream", JetStreamEventStore.layer.pipe(Layer.provide(NatsTest)))

const event = (type: string): EventToAppend => ({ id: crypto.randomUUID(), type, data: { type } })

/** A store with its own connection, hence its own head cache: another process, as far as it knows. */
const separateStore = (name: string) =>
  Effect.gen(function* () {
    const { url } = yield* TestNatsServer
    const context = yield* Layer.build(JetStreamEventStore.layer.pipe(Layer.provide(Nats.layer(url, name))))
    return Context.get(context, EventStore)
  })

const subjectMessages = (subject: string) =>
  Effect.gen(function* () {
    const { jsm } = yield* Nats
    const info = yield* Effect.promise(() =>
      jsm.streams.info(JetStreamEventStore.EVENTS_STREAM, { subjects_filter: subject })
    )
    return info.state.subjects?.[subject] ?? 0
  })

describe("JetStreamEventStore", () => {
  layer(NatsTest, { excludeTestServices: true })((it) => {
    it.scoped("readAll of an empty store ends at once", () =>
      Effect.gen(function* () {
        const store = yield* separateStore("empty")
        const all = yield* Stream.runCollect(store.readAll({ from: START })).pipe(Effect.timeout("5 seconds"))
        expect(Chunk.toReadonlyArray(all)).toEqual([])
      })
    )

    it.scoped("subscribeAll with a gathering window: appends spread within it arrive as one chunk", () =>
      Effect.gen(function* () {
        const store = yield* separateStore("gather")
        const stream = `sms-${crypto.randomUUID()}`
        yield* store.append(stream, [event("E0")], ExpectedRevision.NoStream())
        const chunks = (gatherMs: number | undefined) =>
          Effect.flatMap(store.read(stream), (recorded) =>
            store
              .subscribeAll({
                from: recorded[recorded.length - 1]?.position ?? START,
                ...(gatherMs === undefined ? {} : { gatherMs })
              })
              .pipe(
                Stream.chunks,
                Stream.map((chunk) => Chunk.toReadonlyArray(chunk).map((e) => e.type)),
                // the first chunk may hold only the event at `from`, which is left out
                Stream.filter((types) => types.length > 0),
                Stream.scan([] as ReadonlyArray<ReadonlyArray<string>>, (seen, chunk) => [...seen, chunk]),
                Stream.takeUntil((seen) => seen.flat().length >= 4),
                Stream.runLast,
                Effect.timeout("10 seconds"),
                Effect.fork
              )
          )
        const appendSpread = (prefix: string, revision: number) =>
          Effect.forEach([0, 1, 2, 3], (i) =>
            Effect.zipRight(
              Effect.sleep("15 millis"),
              store.append(
                stream,
                [event(`${prefix}${i}`)],
                ExpectedRevision.Exact({ revision: revision + i })
              )
            )
          )
        const gathered = yield* chunks(1_000)
        yield* Effect.sleep("200 millis")
        yield* appendSpread("G", 0)
        const seen = yield* gathered.await.pipe(Effect.flatten)
        // four appends 15 ms apart, all within the window after the first: one chunk
        expect(seen._tag === "Some" ? seen.value : []).toEqual([["G0", "G1", "G2", "G3"]])

        const plain = yield* chunks(undefined)
        yield* Effect.sleep("200 millis")
        yield* appendSpread("P", 4)
        const apart = yield* plain.await.pipe(Effect.flatten)
        // without a window each comes as it is, in a chunk of its own
        expect(apart._tag === "Some" ? apart.value : []).toEqual([["P0"], ["P1"], ["P2"], ["P3"]])
      })
    )

    it.scoped("creates SMS_EVENTS once, idempotently across processes", () =>
      Effect.gen(function* () {
        yield* separateStore("first")
        yield* separateStore("second")
        const { jsm } = yield* Nats
        const { config } = yield* Effect.promise(() => jsm.streams.info(JetStreamEventStore.EVENTS_STREAM))
        expect(config.subjects).toEqual(["sms.events.>"])
        expect(config.allow_direct).toBe(true)
        expect(config.storage).toBe("file")
        expect(config.retention).toBe("limits")
        expect(config.duplicate_window).toBe(120_000_000_000)
      })
    )

    it.scoped("stores a 3-event append as exactly one JetStream message", () =>
      Effect.gen(function* () {
        const store = yield* separateStore("batch")
        const stream = `sms-${crypto.randomUUID()}`
        const result = yield* store.append(
          stream,
          [event("A"), event("B"), event("C")],
          ExpectedRevision.NoStream()
        )
        expect(yield* subjectMessages(`sms.events.${stream}`)).toBe(1)
        const recorded = yield* store.read(stream)
        const seq = Math.floor(result.position / 1024)
        expect(recorded.map((e) => e.position)).toEqual(
          [0, 1, 2].map((i) => JetStreamEventStore.positionOf(seq, i))
        )
        yield* store.append(stream, [event("D")], ExpectedRevision.Exact({ revision: 2 }))
        expect(yield* subjectMessages(`sms.events.${stream}`)).toBe(2)
      })
    )

    it.scoped("two processes with stale caches still get correct revisions and conflicts", () =>
      Effect.gen(function* () {
        const a = yield* separateStore("process-a")
        const b = yield* separateStore("process-b")
        const stream = `sms-${crypto.randomUUID()}`
        expect((yield* a.append(stream, [event("A0")], ExpectedRevision.NoStream())).revision).toBe(0)
        // b has never seen the stream; a's cache still says revision 0 after this
        expect(
          (yield* b.append(stream, [event("B1")], ExpectedRevision.Exact({ revision: 0 }))).revision
        ).toBe(1)
        const stale = yield* Effect.flip(
          a.append(stream, [event("A2")], ExpectedRevision.Exact({ revision: 0 }))
        )
        expect(stale._tag).toBe("WrongExpectedRevision")
        if (stale._tag === "WrongExpectedRevision") expect(stale.actual).toBe(1)
        expect(
          (yield* a.append(stream, [event("A2")], ExpectedRevision.Exact({ revision: 1 }))).revision
        ).toBe(2)
        // b's cache says revision 1: Any must still land after a's append
        expect((yield* b.append(stream, [event("B3"), event("B4")], ExpectedRevision.Any())).revision).toBe(4)
        const noStream = yield* Effect.flip(a.append(stream, [event("X")], ExpectedRevision.NoStream()))
        if (noStream._tag === "WrongExpectedRevision") expect(noStream.actual).toBe(4)
        expect(noStream._tag).toBe("WrongExpectedRevision")
        const fromA = yield* a.read(stream)
        const fromB = yield* b.read(stream)
        expect(fromA.map((e) => [e.type, e.revision])).toEqual([
          ["A0", 0],
          ["B1", 1],
          ["A2", 2],
          ["B3", 3],
          ["B4", 4]
        ])
        expect(fromB).toEqual(fromA)
      })
    )

    it.scoped("a retry past the dedupe window is recognised from the stream itself", () =>
      Effect.gen(function* () {
        const store = yield* separateStore("retry")
        const { js } = yield* Nats
        const stream = `sms-${crypto.randomUUID()}`
        const subject = `sms.events.${stream}`
        const requested = event("SmsRequested")
        // The first attempt, written without Nats-Msg-Id: as if its dedupe entry had expired.
        const first = yield* Effect.promise(() =>
          js.publish(
            subject,
            JSON.stringify({
              r: 0,
              p: 0,
              t: 1_700_000_000_000,
              e: [{ i: requested.id, y: requested.type, d: 1 }]
            }),
            { expect: { lastSubjectSequence: 0 } }
          )
        )
        // found in the stream, not written by these calls
        const original = {
          revision: 0,
          position: JetStreamEventStore.positionOf(first.seq, 0),
          written: false
        }
        expect(yield* store.append(stream, [requested], ExpectedRevision.NoStream())).toEqual(original)
        const dispatched = [event("SmsDispatched")]
        yield* store.append(stream, dispatched, ExpectedRevision.Exact({ revision: 0 }))
        expect(yield* store.append(stream, [requested], ExpectedRevision.NoStream())).toEqual(original)
        const recorded = yield* store.read(stream)
        expect(recorded.map((e) => e.type)).toEqual(["SmsRequested", "SmsDispatched"])
        expect(recorded[0]?.recordedAt.getTime()).toBe(1_700_000_000_000)
        expect(yield* subjectMessages(subject)).toBe(2)
      })
    )

    it.scoped("rejects stream names that are not one subject token, and empty or oversized appends", () =>
      Effect.gen(function* () {
        const store = yield* separateStore("invalid")
        for (const name of ["sms.a", "sms-*", "sms->", "sms a", ""]) {
          const error = yield* Effect.flip(store.append(name, [event("A")], ExpectedRevision.Any()))
          expect(error._tag === "EventStoreError" && error.reason).toBe("InvalidData")
          const readError = yield* Effect.flip(store.read(name))
          expect(readError.reason).toBe("InvalidData")
        }
        const stream = `sms-${crypto.randomUUID()}`
        for (const count of [0, 1001]) {
          const events = Array.from({ length: count }, () => event("A"))
          const error = yield* Effect.flip(store.append(stream, events, ExpectedRevision.NoStream()))
          expect(error._tag === "EventStoreError" && error.reason).toBe("InvalidData")
        }
        const huge = { id: crypto.randomUUID(), type: "Huge", data: "x".repeat(2_000_000) }
        const tooBig = yield* Effect.flip(store.append(stream, [huge], ExpectedRevision.NoStream()))
        expect(tooBig._tag === "EventStoreError" && tooBig.reason).toBe("InvalidData")
        const thousand = Array.from({ length: 1000 }, () => event("A"))
        expect((yield* store.append(stream, thousand, ExpectedRevision.NoStream())).revision).toBe(999)
        expect(yield* store.read(stream)).toHaveLength(1000)
      })
    )
  })
})
