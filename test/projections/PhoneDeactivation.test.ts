/**
 * The phone-deactivation reactor follows the decider's precedence (the first final status wins): an
 * `invalid` report after `delivered` is on the record for the audit only and must not take the
 * number out of service, whether it carries the decider's mark or was stored before the mark existed.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { execute, load, messageCodec } from "../../src/messages/MessageRepository.js"
import { loadPhone } from "../../src/messages/PhoneRepository.js"
import { type MessageId, messageIdFor } from "../../src/domain/Ids.js"
import {
  type MessageCommand,
  type RecordDeliveryReport,
  SmsDelivered,
  SmsDispatched,
  SmsFailed,
  SmsRequested
} from "../../src/domain/Message.js"
import { E164 } from "../../src/domain/PhoneNumber.js"
import { messageStream } from "../../src/domain/StreamName.js"
import { EventStore, ExpectedRevision } from "../../src/eventstore/EventStore.js"
import * as MemoryEventStore from "../../src/eventstore/MemoryEventStore.js"
import { projection } from "../../src/projections/PhoneDeactivation.js"

const t0 = new Date("2025-03-01T10:00:00.000Z")
const t1 = new Date("2025-03-01T10:00:01.000Z")
const t2 = new Date("2025-03-01T10:00:30.000Z")
const t3 = new Date("2025-03-01T10:05:00.000Z")

const requested = (messageId: MessageId, to: string) =>
  new SmsRequested({
    messageId,
    clientId: "acme",
    idempotencyKey: messageId,
    to: Schema.decodeSync(E164)(to),
    body: "Your code is 1234",
    encoding: "GSM-7",
    segments: 1,
    requestedAt: t0
  })

const report = (
  outcome: RecordDeliveryReport["outcome"],
  rawStatus: string,
  at: Date
): RecordDeliveryReport => ({
  _tag: "RecordDeliveryReport",
  provider: "sim",
  providerMessageId: "sim-1",
  outcome,
  rawStatus,
  at
})
const deliveredReport = report({ _tag: "Delivered" }, "delivered", t2)
const invalidReport = report({ _tag: "Failed", reason: "invalid_number", code: "21211" }, "invalid", t3)

/** A message to `to` taken through `commands` by the decider, as the actors would. */
const message = (key: string, to: string, ...commands: ReadonlyArray<MessageCommand>) =>
  Effect.gen(function* () {
    const messageId = messageIdFor("acme", key)
    const all: ReadonlyArray<MessageCommand> = [
      { _tag: "Request", event: requested(messageId, to) },
      { _tag: "RecordDispatch", provider: "sim", providerMessageId: "sim-1", attempt: 1, at: t1 },
      ...commands
    ]
    for (const command of all) yield* execute(messageId, () => command)
    return messageId
  })

/** Runs the reactor over the stream's recorded events, as the projection runner hands them over. */
const react = (messageId: MessageId) =>
  Effect.gen(function* () {
    const store = yield* EventStore
    const recorded = yield* store.read(messageStream(messageId))
    yield* projection.applyBatch(recorded.filter((record) => projection.handles.has(record.type)))
  })

const phoneStatus = (number: string) => Effect.map(loadPhone(number), (phone) => phone.state.status)

describe("PhoneDeactivation", () => {
  it.effect("deactivates the number on an invalid report that made the message final", () =>
    Effect.gen(function* () {
      const to = "+447911123401"
      const messageId = yield* message("invalid", to, invalidReport)
      yield* react(messageId)
      const phone = yield* loadPhone(to)
      expect(phone.state.status).toBe("inactive")
      expect(phone.events).toMatchObject([
        { _tag: "PhoneDeactivated", source: { kind: "delivery_report", messageId, code: "21211" } }
      ])
    }).pipe(Effect.provide(MemoryEventStore.layer))
  )

  it.effect("leaves the number active on an invalid report after delivered (marked by the decider)", () =>
    Effect.gen(function* () {
      const to = "+447911123402"
      const messageId = yield* message("contradicted", to, deliveredReport, invalidReport)
      const loaded = yield* load(messageId)
      // the report is on the record, marked
      expect(loaded.events.at(-1)).toMatchObject({
        _tag: "SmsFailed",
        reason: "invalid_number",
        contradicts: "delivered"
      })
      yield* react(messageId)
      expect(yield* phoneStatus(to)).toBe("active")
      expect((yield* loadPhone(to)).events).toEqual([])
    }).pipe(Effect.provide(MemoryEventStore.layer))
  )

  it.effect(
    "leaves the number active on an unmarked invalid report after delivered (stored before the mark)",
    () =>
      Effect.gen(function* () {
        const to = "+447911123403"
        const messageId = messageIdFor("acme", "old-contradiction")
        const store = yield* EventStore
        // written as the gateway did before the mark existed: the same events, no `contradicts`
        const history = [
          requested(messageId, to),
          new SmsDispatched({
            messageId,
            provider: "sim",
            providerMessageId: "sim-1",
            attempt: 1,
            dispatchedAt: t1
          }),
          new SmsDelivered({
            messageId,
            provider: "sim",
            providerMessageId: "sim-1",
            deliveredAt: t2,
            rawStatus: "delivered"
          }),
          new SmsFailed({
            messageId,
            reason: "invalid_number",
            permanent: true,
            provider: "sim",
            code: "21211",
            detail: "DLR status invalid",
            failedAt: t3
          })
        ]
        yield* store.append(
          messageStream(messageId),
          messageCodec.toStoredFrom(history, 0),
          ExpectedRevision.NoStream()
        )
        yield* react(messageId)
        expect(yield* phoneStatus(to)).toBe("active")
      }).pipe(Effect.provide(MemoryEventStore.layer))
  )
})
