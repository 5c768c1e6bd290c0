/**
 * History for the "as fast with 1,000,000 events in the store" comparison: finished messages
 * (requested, dispatched, delivered: one append each, as the gateway writes them) appended through
 * the embedded event store itself, so the stream, its subjects and the payloads are the real format.
 */
import { Effect, Layer, Schedule } from "effect"
import { messageIdFor } from "../src/domain/Ids.js"
import { SmsDelivered, SmsDispatched, SmsRequested } from "../src/domain/Message.js"
import { messageStream } from "../src/domain/StreamName.js"
import { EventStore, ExpectedRevision } from "../src/eventstore/EventStore.js"
import * as JetStreamEventStore from "../src/eventstore/JetStreamEventStore.js"
import { toStored } from "../src/eventstore/MessageEvents.js"
import { Nats } from "../src/nats/Nats.js"

const historyOf = (i: number) => {
  const messageId = messageIdFor("seed", `seed-${i}`)
  const at = new Date(Date.UTC(2026, 0, 1) + i)
  const providerMessageId = `seed-pm-${i}`
  return [
    new SmsRequested({
      messageId,
      clientId: "seed",
      idempotencyKey: `seed-${i}`,
      to: "+447911123456",
      body: `seed message ${i}`,
      encoding: "GSM-7",
      segments: 1,
      requestedAt: at
    }),
    new SmsDispatched({ messageId, provider: "sim", providerMessageId, attempt: 1, dispatchedAt: at }),
    new SmsDelivered({
      messageId,
      provider: "sim",
      providerMessageId,
      deliveredAt: at,
      rawStatus: "delivered"
    })
  ] as const
}

/** Appends `events` (rounded up to whole messages of three) and resolves with the count written. */
export const seedHistory = (natsUrl: string, events: number) =>
  Effect.gen(function* () {
    const store = yield* EventStore
    const messages = Math.ceil(events / 3)
    const started = Date.now()
    yield* Effect.forEach(
      Array.from({ length: messages }, (_, i) => i),
      (i) =>
        Effect.forEach(
          historyOf(i),
          (event, revision) =>
            store
              .append(
                messageStream(event.messageId),
                [toStored(event, revision)],
                revision === 0
                  ? ExpectedRevision.NoStream()
                  : ExpectedRevision.Exact({ revision: revision - 1 })
              )
              .pipe(
                // a lost ack (the server busy writing a million events) is retried: the same event ids
                // make the retry return the first append's result
                Effect.retry({ times: 5, schedule: Schedule.spaced("1 second") })
              ),
          { discard: true }
        ),
      { concurrency: 256, discard: true }
    )
    console.error(`seeded ${messages * 3} events in ${((Date.now() - started) / 1000).toFixed(0)} s`)
    return messages * 3
  }).pipe(Effect.provide(JetStreamEventStore.layer.pipe(Layer.provide(Nats.layer(natsUrl)))))
