/**
 * Reactors and the stats follow the decider's precedence (the first final status wins), against a
 * real nats-server: a report that contradicts a final status is on the record for the audit only,
 * so no notification leaves for it and it is not counted as a second outcome of its message.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Either, Layer, Schema } from "effect"
import { type MessageId, messageIdFor } from "../../src/domain/Ids.js"
import {
  decide,
  fold,
  type MessageCommand,
  type MessageEvent,
  type RecordDeliveryReport,
  SmsRequested
} from "../../src/domain/Message.js"
import { E164 } from "../../src/domain/PhoneNumber.js"
import { messageStream } from "../../src/domain/StreamName.js"
import type { RecordedEvent } from "../../src/eventstore/EventStore.js"
import { toStored } from "../../src/eventstore/MessageEvents.js"
import { Nats } from "../../src/nats/Nats.js"
import { ensureStreams, Streams } from "../../src/nats/Topology.js"
import * as Notifications from "../../src/projections/Notifications.js"
import { ReadModels } from "../../src/projections/ReadModels.js"
import * as Stats from "../../src/projections/Stats.js"
import { NatsTest } from "../support/nats.js"

const t0 = new Date("2025-03-01T10:00:00.000Z")

const report = (
  outcome: RecordDeliveryReport["outcome"],
  rawStatus: string,
  seconds: number
): MessageCommand => ({
  _tag: "RecordDeliveryReport",
  provider: "sim",
  providerMessageId: "sim-1",
  outcome,
  rawStatus,
  at: new Date(t0.getTime() + seconds * 1000)
})
const delivered = (seconds: number) => report({ _tag: "Delivered" }, "delivered", seconds)
const undelivered = (seconds: number) =>
  report({ _tag: "Failed", reason: "undeliverable", code: "30003" }, "undelivered", seconds)

/** The events the decider records for a message taken through `commands` after its dispatch. */
const decided = (messageId: MessageId, ...commands: ReadonlyArray<MessageCommand>) => {
  const all: ReadonlyArray<MessageCommand> = [
    {
      _tag: "Request",
      event: new SmsRequested({
        messageId,
        clientId: "acme",
        idempotencyKey: messageId,
        to: Schema.decodeSync(E164)("+447911123456"),
        body: "hi",
        encoding: "GSM-7",
        segments: 1,
        requestedAt: t0
      })
    },
    { _tag: "RecordDispatch", provider: "sim", providerMessageId: "sim-1", attempt: 1, at: t0 },
    ...commands
  ]
  const events: Array<MessageEvent> = []
  for (const command of all) events.push(...Either.getOrThrow(decide(command, fold(events))))
  return events
}

let position = 0
/** the events as a store records them (data through JSON), at increasing positions */
const recorded = (events: ReadonlyArray<MessageEvent>): ReadonlyArray<RecordedEvent> =>
  events.map((event, revision) => {
    const { id, type, data } = toStored(event, revision)
    return {
      id,
      type,
      data: JSON.parse(JSON.stringify(data)),
      streamName: messageStream(event.messageId),
      revision,
      position: ++position,
      recordedAt: t0
    }
  })

/** delivered, then a failed report; failed, then a delivered report: one contradiction each */
const scenario = (name: string) => {
  const deliveredFirst = messageIdFor("acme", `${name}-delivered-first`)
  const failedFirst = messageIdFor("acme", `${name}-failed-first`)
  const events = [
    ...decided(deliveredFirst, delivered(10), undelivered(20)),
    ...decided(failedFirst, undelivered(10), delivered(20))
  ]
  return { deliveredFirst, failedFirst, events, records: recorded(events) }
}

const published = Effect.flatMap(Nats, ({ jsm }) =>
  Effect.promise(async () => {
    const info = await jsm.streams.info(Streams.notifications)
    const all: Array<Notifications.Notification> = []
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      const msg = await jsm.streams.getMessage(Streams.notifications, { seq }).catch(() => null)
      if (msg !== null) all.push(JSON.parse(new TextDecoder().decode(msg.data)))
    }
    return all
  })
)

describe("the first final status wins, for reactors and stats", () => {
  layer(ReadModels.layer.pipe(Layer.provideMerge(NatsTest)), { excludeTestServices: true })((it) => {
    it.effect("the decider marks each contradicting report with the final status it contradicts", () =>
      Effect.sync(() => {
        const { events } = scenario("marks")
        const finals = events.filter((e) => e._tag === "SmsDelivered" || e._tag === "SmsFailed")
        expect(finals.map((e) => [e._tag, e.contradicts])).toEqual([
          ["SmsDelivered", undefined],
          ["SmsFailed", "delivered"],
          ["SmsFailed", undefined],
          ["SmsDelivered", "failed"]
        ])
      })
    )

    it.effect("notifications: one final status per message, nothing for a contradicting report", () =>
      Effect.gen(function* () {
        yield* ensureStreams
        const { deliveredFirst, failedFirst, records } = scenario("notifications")
        yield* Notifications.projection.applyBatch(records)
        const statuses = (yield* published).map((n) => [n.messageId, n.status])
        expect(statuses).toEqual([
          [deliveredFirst, "dispatched"],
          [deliveredFirst, "delivered"],
          [failedFirst, "dispatched"],
          [failedFirst, "failed"]
        ])
      })
    )

    it.effect("stats: a contradicting report is counted apart, never as a second delivery or failure", () =>
      Effect.gen(function* () {
        const { records } = scenario("stats")
        const stats = yield* Stats.projection
        yield* stats.applyBatch(records)
        expect(yield* Stats.getStats).toEqual({
          counts: {
            SmsRequested: 2,
            "SmsDispatched.sim": 2,
            "SmsDelivered.sim": 1,
            "SmsFailed.sim.undeliverable": 1,
            "ContradictingSmsFailed.sim.undeliverable": 1,
            "ContradictingSmsDelivered.sim": 1
          },
          position: records.at(-1)?.position
        })
      })
    )
  })
})
