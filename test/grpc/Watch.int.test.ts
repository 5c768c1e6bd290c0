/**
 * `WatchMessage`'s core without the transport: many watches of one message, started while its events
 * are being appended, each get every revision once and in order (the feed's registration, the read
 * and the live events race on purpose), and the shared subscription stops and starts again between
 * rounds. Memory event store; the checkpoints the feed starts from are in a real nats-server.
 */
import { randomUUID } from "node:crypto"
import { describe, expect, layer } from "@effect/vitest"
import { Chunk, Effect, Layer, Logger, Stream } from "effect"
import type { Principal } from "../../src/clients/Clients.js"
import { messageIdFor, type MessageId } from "../../src/domain/Ids.js"
import { SmsDelivered, SmsDispatched, SmsRequested, SmsStatusReported } from "../../src/domain/Message.js"
import { messageStream } from "../../src/domain/StreamName.js"
import { EventStore, ExpectedRevision } from "../../src/eventstore/EventStore.js"
import * as MemoryEventStore from "../../src/eventstore/MemoryEventStore.js"
import { toStored } from "../../src/eventstore/MessageEvents.js"
import * as MessageFeed from "../../src/grpc/MessageFeed.js"
import { WATCH_GAP, watchMessage } from "../../src/grpc/Watch.js"
import { ReadModels } from "../../src/projections/ReadModels.js"
import { NatsTest } from "../support/nats.js"

const Env = MessageFeed.layer.pipe(
  Layer.provideMerge(Layer.mergeAll(MemoryEventStore.layer, ReadModels.layer)),
  Layer.provide(NatsTest)
)

const owner: Principal = { keyId: "0123456789abcdef", clientId: "feed", scope: "client" }
const REPORTS = 30

/** Records a message and, one at a time, `REPORTS` status reports, then its delivery. */
const lifeOf = (messageId: MessageId, pause: Effect.Effect<void>) =>
  Effect.gen(function* () {
    const store = yield* EventStore
    const stream = messageStream(messageId)
    const at = new Date("2026-11-22T10:00:00Z")
    const events = [
      new SmsRequested({
        messageId,
        clientId: owner.clientId,
        idempotencyKey: "k",
        to: "+447911123456",
        body: "hi",
        encoding: "GSM-7",
        segments: 1,
        requestedAt: at
      }),
      new SmsDispatched({ messageId, provider: "sim", providerMessageId: "p", attempt: 1, dispatchedAt: at }),
      ...Array.from(
        { length: REPORTS },
        () =>
          new SmsStatusReported({
            messageId,
            provider: "sim",
            providerMessageId: "p",
            rawStatus: "sent",
            reportedAt: at
          })
      ),
      new SmsDelivered({
        messageId,
        provider: "sim",
        providerMessageId: "p",
        deliveredAt: at,
        rawStatus: "delivered"
      })
    ]
    for (const [revision, event] of events.entries()) {
      yield* store.append(
        stream,
        [toStored(event, revision)],
        revision === 0 ? ExpectedRevision.NoStream() : ExpectedRevision.Exact({ revision: revision - 1 })
      )
      yield* pause
    }
    return events.length - 1
  })

/** Runs `effect` and fails if a watch had to work around a gap in the feed (`WATCH_GAP`). */
const withoutGaps = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const warnings: Array<string> = []
    const collect = Logger.make(({ message }) => {
      const text = Array.isArray(message) ? message.join(" ") : String(message)
      if (text.includes(WATCH_GAP)) warnings.push(text)
    })
    const result = yield* effect.pipe(Effect.provide(Logger.add(collect)))
    expect(warnings, "the feed skipped revisions").toEqual([])
    return result
  })

const watched = (messageId: MessageId, afterRevision: number | undefined) =>
  Stream.runCollect(watchMessage(owner, messageId, afterRevision)).pipe(
    Effect.map(Chunk.toReadonlyArray),
    Effect.timeout("15 seconds")
  )

describe("WatchMessage's core", () => {
  layer(Env, { excludeTestServices: true, timeout: "60 seconds" })("over the memory store", (it) => {
    it.effect(
      "watches started while events are appended each see every revision once, in order, to the final one",
      () =>
        withoutGaps(
          Effect.gen(function* () {
            for (const round of [1, 2]) {
              const messageId = messageIdFor("feed", `${round}-${randomUUID()}`)
              const store = yield* EventStore
              const appending = yield* Effect.fork(lifeOf(messageId, Effect.sleep("2 millis")))
              const watches = yield* Effect.forEach(
                Array.from({ length: 16 }, (_, i) => i),
                (i) =>
                  Effect.zipRight(
                    Effect.sleep(`${i * 4} millis`),
                    watched(messageId, i % 2 === 0 ? undefined : -1)
                  ).pipe(Effect.map((updates) => ({ fromStart: i % 2 === 1, updates }))),
                { concurrency: "unbounded" }
              )
              const last = yield* appending.await.pipe(Effect.flatten)
              expect((yield* store.read(messageStream(messageId))).length).toBe(last + 1)
              for (const { fromStart, updates } of watches) {
                const revisions = updates.map((u) => u.revision)
                const first = revisions[0] ?? -1
                expect(revisions, `round ${round}`).toEqual(revisions.map((_, i) => first + i))
                if (fromStart) expect(first).toBe(0)
                expect(revisions.at(-1)).toBe(last)
                expect(updates.map((u) => u.final)).toEqual(updates.map((_, i) => i === updates.length - 1))
                expect(updates.at(-1)?.view.status).toBe("delivered")
                expect(updates.at(-1)?.view.providerStatus).toBe("sent")
              }
            }
          })
        )
    )

    it.effect("a watch waits for a message recorded after it started", () =>
      Effect.gen(function* () {
        const messageId = messageIdFor("feed", randomUUID())
        const watch = yield* Effect.fork(watched(messageId, undefined))
        yield* Effect.sleep("300 millis")
        const last = yield* lifeOf(messageId, Effect.void)
        const updates = yield* watch.await.pipe(Effect.flatten)
        // it found the stream once its first event came, then followed it to the end
        expect(updates.at(-1)?.revision).toBe(last)
        expect(updates.at(-1)?.final).toBe(true)
        const revisions = updates.map((u) => u.revision)
        expect(revisions).toEqual(revisions.map((_, i) => (revisions[0] ?? 0) + i))
      })
    )
  })
})
