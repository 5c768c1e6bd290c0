import { describe, expect, it } from "@effect/vitest"
import { Chunk, Context, Effect, Layer, Stream } from "effect"
import {
  EventStore,
  type EventStoreService,
  type EventToAppend,
  ExpectedRevision,
  START
} from "../../src/eventstore/EventStore.js"
import * as JetStreamEventStore from "../../src/eventstore/JetStreamEventStore.js"
import * as MemoryEventStore from "../../src/eventstore/MemoryEventStore.js"
import { migrate, type MigrationProgress, summarize } from "../../src/eventstore/Migration.js"
import { Nats } from "../../src/nats/Nats.js"
import { NatsServerLive, TestNatsServer } from "../support/nats.js"

const STREAMS = 1000

const memoryStore = Effect.map(Layer.build(MemoryEventStore.layer), (context) =>
  Context.get(context, EventStore)
)

/** A JetStream store on a nats-server of its own (the adapter's stream name is fixed). */
const jetStreamStore = (name: string) =>
  Effect.gen(function* () {
    const server = Context.get(yield* Layer.build(NatsServerLive), TestNatsServer)
    const context = yield* Layer.build(
      JetStreamEventStore.layer.pipe(Layer.provide(Nats.layer(server.url, name)))
    )
    return Context.get(context, EventStore)
  })

const event = (stream: number, n: number): EventToAppend => ({
  id: crypto.randomUUID(),
  type: n === 0 ? "SmsRequested" : "SmsDispatched",
  data: { stream, n, text: `Ünïcødé ${n}`, nested: { list: [n, null, true] } }
})

/**
 * 1,000 streams (`sms-` and `phone-`) of 3 to 5 events, appended in rounds so that streams
 * interleave in the store's order; every stream's first append holds two events, some later ones too.
 */
const fill = (store: EventStoreService) =>
  Effect.gen(function* () {
    const names = Array.from({ length: STREAMS }, (_, i) =>
      i % 10 === 0 ? `phone-4479${String(i).padStart(8, "0")}` : `sms-${crypto.randomUUID()}`
    )
    const sizes = names.map((_, i) => 3 + (i % 3))
    const written = names.map(() => 0)
    for (let round = 0; written.some((count, i) => count < (sizes[i] ?? 0)); round++) {
      yield* Effect.forEach(
        names,
        (name, i) => {
          const size = sizes[i] ?? 0
          const count = written[i] ?? 0
          if (count >= size) return Effect.void
          const take = round === 0 || (i % 7 === 0 && size - count >= 2) ? 2 : 1
          const events = Array.from({ length: take }, (_, k) => event(i, count + k))
          written[i] = count + take
          return store.append(
            name,
            events,
            count === 0 ? ExpectedRevision.NoStream() : ExpectedRevision.Exact({ revision: count - 1 })
          )
        },
        { concurrency: 16, discard: true }
      )
    }
    return written.reduce((sum, n) => sum + n, 0)
  })

/** Every stream's events as the port shows them, minus what a store assigns itself. */
const contents = (store: EventStoreService) =>
  Effect.gen(function* () {
    const all = Chunk.toReadonlyArray(yield* Stream.runCollect(store.readAll({ from: START })))
    const streams = new Map<string, Array<unknown>>()
    for (const e of all) {
      const events = streams.get(e.streamName) ?? []
      events.push([e.revision, e.id, e.type, e.data])
      streams.set(e.streamName, events)
    }
    for (const name of streams.keys()) {
      const read = yield* store.read(name)
      expect(read.map((e) => [e.revision, e.id, e.type, e.data])).toEqual(streams.get(name))
    }
    return streams
  })

describe("Migration", () => {
  it.scopedLive(
    "copies memory -> JetStream -> JetStream with every stream equal; a second run copies nothing",
    () =>
      Effect.gen(function* () {
        const memory = yield* memoryStore
        const total = yield* fill(memory)
        expect(total).toBeGreaterThanOrEqual(3 * STREAMS)
        const first = yield* jetStreamStore("migrate-first")
        const second = yield* jetStreamStore("migrate-second")

        const progress: Array<MigrationProgress> = []
        const report = yield* migrate(memory, first, {
          onProgress: (p) => Effect.sync(() => progress.push(p))
        })
        expect(report).toEqual({ streams: STREAMS, events: total, copied: total, skipped: 0 })
        expect(progress[0]).toEqual({ total, done: 0, copied: 0 })
        expect(progress[progress.length - 1]).toEqual({ total, done: total, copied: total })

        // JetStream -> JetStream: a source of more messages than one pull of its consumer
        expect(yield* migrate(first, second)).toEqual({
          streams: STREAMS,
          events: total,
          copied: total,
          skipped: 0
        })
        const original = yield* contents(memory)
        expect(original.size).toBe(STREAMS)
        expect(yield* contents(first)).toEqual(original)
        expect(yield* contents(second)).toEqual(original)

        // idempotent: nothing is appended again
        const again = yield* migrate(first, second)
        expect(again).toEqual({ streams: STREAMS, events: total, copied: 0, skipped: total })
        expect(yield* summarize(second)).toEqual(yield* summarize(memory))
      }),
    60_000
  )

  it.scopedLive(
    "an interrupted run resumes where it stopped",
    () =>
      Effect.gen(function* () {
        const memory = yield* memoryStore
        const total = yield* fill(memory)
        const target = yield* jetStreamStore("migrate-resume")
        // stop after the second batch: streams are half copied, some of them part-way
        const stopped = yield* migrate(memory, target, {
          onProgress: (p) => (p.done >= 1000 ? Effect.interrupt : Effect.void)
        }).pipe(Effect.exit)
        expect(stopped._tag).toBe("Failure")
        const partial = yield* summarize(target)
        const copiedBefore = [...partial.values()].reduce((sum, s) => sum + s.count, 0)
        expect(copiedBefore).toBe(1000)
        const source = yield* summarize(memory)
        expect([...partial].some(([name, s]) => s.count < (source.get(name)?.count ?? 0))).toBe(true)

        const resumed = yield* migrate(memory, target)
        expect(resumed).toEqual({
          streams: STREAMS,
          events: total,
          copied: total - copiedBefore,
          skipped: copiedBefore
        })
        expect(yield* contents(target)).toEqual(yield* contents(memory))
      }),
    60_000
  )

  it.scopedLive("fails loudly when the target diverges or holds other streams", () =>
    Effect.gen(function* () {
      const source = yield* memoryStore
      yield* source.append("sms-a", [event(0, 0), event(0, 1)], ExpectedRevision.NoStream())

      const diverged = yield* memoryStore
      yield* diverged.append("sms-a", [event(0, 0), event(0, 1)], ExpectedRevision.NoStream())
      const divergedError = yield* Effect.flip(migrate(source, diverged))
      expect(divergedError._tag === "MigrationError" && divergedError.reason).toBe("Diverged")

      const extra = yield* memoryStore
      yield* extra.append("sms-b", [event(1, 0)], ExpectedRevision.NoStream())
      const mismatch = yield* Effect.flip(migrate(source, extra))
      expect(mismatch._tag === "MigrationError" && mismatch.reason).toBe("Mismatch")
      expect(mismatch.message).toContain("sms-b: only in the target (1 events)")
      // the copy itself went through: only the extra stream is wrong
      expect((yield* extra.read("sms-a")).map((e) => e.id)).toEqual(
        (yield* source.read("sms-a")).map((e) => e.id)
      )
    })
  )
})
