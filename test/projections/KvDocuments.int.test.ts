/**
 * The batch paths of KV documents (and of the stats document) against a real nats-server: one write
 * per document per batch, replays that write nothing, and every way a write can conflict (a stale
 * cache, another writer between our read and our write, a rebuild's guess that a document is absent).
 */
import { describe, expect, layer } from "@effect/vitest"
import type { KV } from "@nats-io/kv"
import { Effect, Layer, Option } from "effect"
import { type MessageId, messageIdFor } from "../../src/domain/Ids.js"
import { type MessageEvent, SmsDelivered, SmsDispatched, SmsRequested } from "../../src/domain/Message.js"
import { messageStream } from "../../src/domain/StreamName.js"
import type { RecordedEvent } from "../../src/eventstore/EventStore.js"
import { toStored } from "../../src/eventstore/MessageEvents.js"
import { Nats } from "../../src/nats/Nats.js"
import { openBucket } from "../../src/nats/Topology.js"
import { jsonEncoder, readDocument } from "../../src/projections/KvDocuments.js"
import { applyEvent, documents, MessageStatusView } from "../../src/projections/MessageStatus.js"
import { ReadModels } from "../../src/projections/ReadModels.js"
import * as Stats from "../../src/projections/Stats.js"
import { NatsTest } from "../support/nats.js"

// ---------------------------------------------------------------------------------------------
// Fixtures: `n` messages requested, then all dispatched, then all delivered, in that global order

interface Step {
  readonly event: MessageEvent
  readonly record: RecordedEvent
}

const at = new Date("2026-01-01T10:00:00.000Z")

const step = (event: MessageEvent, revision: number, position: number): Step => {
  const { id, type, data } = toStored(event, revision)
  const record = {
    id,
    type,
    data,
    streamName: messageStream(event.messageId),
    revision,
    position,
    recordedAt: at
  }
  return { event, record }
}

const history = (name: string, n: number) => {
  const ids = Array.from({ length: n }, (_, i) => messageIdFor(name, `m-${i}`))
  const requested = ids.map((messageId, i) =>
    step(
      new SmsRequested({
        messageId,
        clientId: name,
        idempotencyKey: `m-${i}`,
        to: "+447911123456",
        body: "hello",
        encoding: "GSM-7",
        segments: 1,
        requestedAt: at
      }),
      0,
      1 + i
    )
  )
  const dispatched = ids.map((messageId, i) =>
    step(
      new SmsDispatched({
        messageId,
        provider: "sim",
        providerMessageId: `pm-${i}`,
        attempt: 1,
        dispatchedAt: at
      }),
      1,
      1 + n + i
    )
  )
  const delivered = ids.map((messageId, i) =>
    step(
      new SmsDelivered({
        messageId,
        provider: "sim",
        providerMessageId: `pm-${i}`,
        deliveredAt: at,
        rawStatus: "delivered"
      }),
      2,
      1 + 2 * n + i
    )
  )
  return { ids, requested, dispatched, delivered, all: [...requested, ...dispatched, ...delivered] }
}

const records = (steps: ReadonlyArray<Step>) => steps.map((s) => s.record)

/** what the document of `messageId` must be after `steps`: the pure fold */
const folded = (messageId: string, steps: ReadonlyArray<Step>) =>
  steps
    .filter((s) => s.event.messageId === messageId)
    .reduce<MessageStatusView | undefined>((view, s) => applyEvent(view, s.event, s.record), undefined)

let buckets = 0
const freshBucket = Effect.suspend(() => openBucket(`test_documents_${++buckets}`))

/** every write the bucket has taken: its stream's last sequence */
const writesTo = (kv: KV) =>
  Effect.flatMap(Nats, ({ jsm }) =>
    Effect.promise(async () => (await jsm.streams.info(`KV_${(await kv.status()).bucket}`)).state.last_seq)
  )

const expectDocuments = (kv: KV, ids: ReadonlyArray<MessageId>, steps: ReadonlyArray<Step>) =>
  Effect.forEach(ids, (id) =>
    Effect.map(readDocument(kv, MessageStatusView, id), (stored) =>
      expect(Option.getOrUndefined(stored)?.view).toEqual(folded(id, steps))
    )
  )

/** `kv`, with `before` run ahead of each of its creates and updates */
const beforeWrites = (kv: KV, before: (key: string) => Promise<void>): KV => {
  const wrapped: KV = Object.create(kv)
  wrapped.create = async (key, data) => {
    await before(key)
    return kv.create(key, data)
  }
  wrapped.update = async (key, data, revision) => {
    await before(key)
    return kv.update(key, data, revision)
  }
  return wrapped
}

// ---------------------------------------------------------------------------------------------

describe("KV documents, batch by batch", () => {
  layer(ReadModels.layer.pipe(Layer.provideMerge(NatsTest)), { excludeTestServices: true })((it) => {
    it.effect("writes each document once per batch; a replayed batch writes nothing", () =>
      Effect.gen(function* () {
        const kv = yield* freshBucket
        const { ids, all, delivered } = history("once", 40)
        const projection = documents(kv)
        yield* projection.applyBatch(records(all))
        expect(yield* writesTo(kv)).toBe(40)
        yield* expectDocuments(kv, ids, all)

        yield* projection.applyBatch(records(all))
        // another process (nothing cached): SmsRequested first means a create, refused, then a read
        yield* documents(kv).applyBatch(records(all))
        yield* documents(kv).applyBatch(records(delivered))
        expect(yield* writesTo(kv)).toBe(40)
        yield* expectDocuments(kv, ids, all)
      })
    )

    it.effect("with the lean writes the live projector uses: the same documents, the same writes", () =>
      Effect.gen(function* () {
        const { publish } = yield* Nats
        const kv = yield* freshBucket
        const lean = publish
        const { ids, requested, dispatched, delivered, all } = history("lean", 30)
        yield* documents(kv, lean).applyBatch(records(requested))
        // another process moved every document: the lean update is refused and goes round again
        yield* documents(kv).applyBatch(records(dispatched))
        const stale = documents(kv, lean)
        yield* stale.applyBatch(records(requested))
        yield* stale.applyBatch(records(delivered))
        expect(yield* writesTo(kv)).toBe(90)
        yield* expectDocuments(kv, ids, all)
        // a rebuild after the bucket was emptied: creates over the purge markers
        yield* Effect.promise(async () => {
          for (const id of ids) await kv.purge(id)
        })
        const rebuilding = documents(kv, lean)
        yield* rebuilding.reset ?? Effect.void
        yield* rebuilding.applyBatch(records(all))
        yield* expectDocuments(kv, ids, all)
      })
    )

    it.effect("re-reads and updates a document another process changed since this one cached it", () =>
      Effect.gen(function* () {
        const kv = yield* freshBucket
        const { ids, requested, dispatched, delivered, all } = history("stale", 30)
        const first = documents(kv)
        const second = documents(kv)
        yield* first.applyBatch(records(requested))
        yield* second.applyBatch(records(dispatched))
        // `first` still holds the revisions it wrote: every update conflicts, and goes round again
        yield* first.applyBatch(records(delivered))
        expect(yield* writesTo(kv)).toBe(90)
        yield* expectDocuments(kv, ids, all)
      })
    )

    it.effect("applies the batch again to what another writer stored between its read and its write", () =>
      Effect.gen(function* () {
        const kv = yield* freshBucket
        const { ids, requested, dispatched, delivered, all } = history("race", 30)
        yield* documents(kv).applyBatch(records(requested))
        // another process writes the dispatch just before each of our writes
        const encode = jsonEncoder(MessageStatusView)
        const raced = new Set<string>()
        const racing = beforeWrites(kv, async (key) => {
          const view = folded(key, [...requested, ...dispatched])
          if (raced.has(key) || view === undefined) return
          raced.add(key)
          await kv.put(key, encode(view))
        })
        yield* documents(racing).applyBatch(records([...dispatched, ...delivered]))
        expect(raced.size).toBe(30)
        // 30 creates, 30 writes of the other process, 30 of ours (the refused ones are not stored)
        expect(yield* writesTo(kv)).toBe(90)
        yield* expectDocuments(kv, ids, all)
      })
    )

    it.effect("after a reset, reads a document it guessed absent when the guess is not proved", () =>
      Effect.gen(function* () {
        const kv = yield* freshBucket
        const { ids, requested, dispatched, delivered, all } = history("rebuild", 30)
        // the live projector wrote these after the bucket was emptied
        yield* documents(kv).applyBatch(records([...requested, ...dispatched]))
        const rebuilding = documents(kv)
        yield* rebuilding.reset ?? Effect.void
        // SmsRequested: created without a read, refused (it exists), read, nothing new to write
        yield* rebuilding.applyBatch(records(requested))
        expect(yield* writesTo(kv)).toBe(30)

        const another = documents(kv)
        yield* another.reset ?? Effect.void
        // SmsDelivered on no document is nothing to write: that proves nothing, so it reads and updates
        yield* another.applyBatch(records(delivered))
        expect(yield* writesTo(kv)).toBe(60)
        yield* expectDocuments(kv, ids, all)
      })
    )

    it.effect("fails the batch when a document keeps conflicting, after a bounded number of rounds", () =>
      Effect.gen(function* () {
        const kv = yield* freshBucket
        const { requested } = history("conflicts", 1)
        let attempts = 0
        const refusing = beforeWrites(kv, async () => {
          attempts++
          throw new Error("wrong last sequence")
        })
        const error = yield* Effect.flip(documents(refusing).applyBatch(records(requested)))
        expect(error).toMatchObject({ _tag: "NatsError", reason: "RequestFailed" })
        expect(attempts).toBe(6)
        expect(yield* writesTo(kv)).toBe(0)
      })
    )

    it.effect("stats count every event once across processes, each remembering the document it wrote", () =>
      Effect.gen(function* () {
        const { requested, dispatched, delivered, all } = history("stats", 20)
        const first = yield* Stats.projection
        const second = yield* Stats.projection
        yield* first.applyBatch(records(requested))
        yield* second.applyBatch(records(dispatched))
        // `first`'s revision is stale: the write conflicts, the document is read and counted again
        yield* first.applyBatch(records(delivered))
        yield* first.applyBatch(records(delivered))
        yield* second.applyBatch(records(all))
        expect(yield* Stats.getStats).toEqual({
          counts: { SmsRequested: 20, "SmsDispatched.sim": 20, "SmsDelivered.sim": 20 },
          position: 60
        })
      })
    )
  })
})
