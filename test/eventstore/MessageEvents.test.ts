import { describe, expect, it } from "@effect/vitest"
import { Effect, Equal, Hash, Schema } from "effect"
import { messageIdFor } from "../../src/domain/Ids.js"
import {
  MessageEvent,
  messageEventTypes,
  SmsDelivered,
  SmsDispatched,
  SmsFailed,
  SmsRequested,
  SmsResubmitted,
  SmsStatusReported,
  SmsStatusUnknown,
  SmsRetried
} from "../../src/domain/Message.js"
import { E164 } from "../../src/domain/PhoneNumber.js"
import { messageStream } from "../../src/domain/StreamName.js"
import type { EventToAppend, RecordedEvent } from "../../src/eventstore/EventStore.js"
import { fromStored, toStored } from "../../src/eventstore/MessageEvents.js"

const messageId = messageIdFor("acme", "order-42")
const recordedAt = new Date("2025-03-01T12:00:00.000Z")

const requested = new SmsRequested({
  messageId,
  clientId: "acme",
  idempotencyKey: "order-42",
  to: Schema.decodeSync(E164)("+447911123456"),
  from: "ACME",
  body: "Привет, €5 😀",
  encoding: "UCS-2",
  segments: 1,
  providers: ["twilio", "vonage"],
  validUntil: new Date("2025-03-02T10:00:00.000Z"),
  metadata: { orderId: "42" },
  trackingId: "trk-1",
  requestedAt: new Date("2025-03-01T10:00:00.123Z")
})
const dispatched = (attempt: number, dispatchedAt = new Date("2025-03-01T10:00:07.000Z")) =>
  new SmsDispatched({
    messageId,
    provider: "twilio",
    providerMessageId: `SM-${attempt}`,
    attempt,
    dispatchedAt
  })
const retried = (attempt: number) =>
  new SmsRetried({
    messageId,
    provider: "twilio",
    attempt,
    reason: "http_5xx",
    detail: "502 Bad Gateway",
    nextAttemptAt: new Date("2025-03-01T10:00:06.000Z"),
    nextProvider: "vonage"
  })
const delivered = new SmsDelivered({
  messageId,
  provider: "twilio",
  providerMessageId: "SM-2",
  deliveredAt: new Date("2025-03-01T10:00:30.000Z"),
  rawStatus: "delivered"
})
const failed = (reason: SmsFailed["reason"] = "undeliverable", code: string | undefined = "30003") =>
  new SmsFailed({
    messageId,
    reason,
    permanent: true,
    provider: "twilio",
    code,
    detail: "DLR status undelivered",
    failedAt: new Date("2025-03-01T10:05:00.000Z")
  })

const resubmitted = new SmsResubmitted({
  messageId,
  by: "ops",
  provider: "sim",
  resubmittedAt: new Date("2025-03-01T11:00:00.000Z")
})

const reported = new SmsStatusReported({
  messageId,
  provider: "sim",
  providerMessageId: "SM-2",
  rawStatus: "sent",
  reportedAt: new Date("2025-03-01T10:00:03.000Z")
})

/** reports after the message was final, marked with the final status they contradict */
const contradictingFailure = new SmsFailed({ ...failed(), contradicts: "delivered" })
const contradictingDelivery = new SmsDelivered({ ...delivered, contradicts: "failed" })

const oneOfEach: ReadonlyArray<MessageEvent> = [
  requested,
  retried(1),
  dispatched(2),
  reported,
  delivered,
  failed(),
  resubmitted,
  new SmsStatusUnknown({
    messageId,
    provider: "sim",
    providerMessageId: "SM-2",
    deadlineMs: 259_200_000,
    at: new Date("2025-03-04T10:00:03.000Z")
  })
]

/** what a store hands back for an appended event: the payload went through JSON */
const recorded = (stored: EventToAppend, revision = 0): RecordedEvent => ({
  id: stored.id,
  type: stored.type,
  data: JSON.parse(JSON.stringify(stored.data)),
  streamName: messageStream(messageId),
  revision,
  position: revision + 1,
  recordedAt
})

const dataOf = (event: MessageEvent): Record<string, unknown> => {
  const { data } = toStored(event, 0)
  if (typeof data !== "object" || data === null) return expect.fail("stored data is not an object")
  return { ...data }
}

describe("MessageEvents", () => {
  it("covers every event type", () => {
    expect(new Set(oneOfEach.map((event) => event._tag))).toEqual(new Set(messageEventTypes))
    expect(messageEventTypes).toHaveLength(8)
  })

  it.effect("round-trips every event type through toStored, JSON and fromStored, dates included", () =>
    Effect.gen(function* () {
      for (const [revision, event] of oneOfEach.entries()) {
        const back = yield* fromStored(recorded(toStored(event, 0), revision))
        expect(back._tag).toBe(event._tag)
        expect(back).toBeInstanceOf(event.constructor)
        expect(back).toEqual(event)
        // decoded without the constructor: the same instance in every way the gateway looks at it
        expect(Object.getPrototypeOf(back)).toBe(Object.getPrototypeOf(event))
        expect(Reflect.ownKeys(back)).toEqual(Reflect.ownKeys(event))
        // what the constructor builds from the same field values, unvalidated (validation copies arrays
        // and records, which `Equal` compares by reference)
        const constructed = new (event.constructor as new (fields: object, trusted: true) => MessageEvent)(
          { ...back },
          true
        )
        expect(Reflect.ownKeys(constructed)).toEqual(Reflect.ownKeys(back))
        expect(Equal.equals(back, constructed)).toBe(true)
        expect(Hash.hash(back)).toBe(Hash.hash(constructed))
        expect(JSON.stringify(back)).toBe(JSON.stringify(event))
        expect(Schema.is(MessageEvent)(back)).toBe(true)
      }
    })
  )

  it.effect("round-trips a minimal SmsRequested and SmsFailed (optional fields absent)", () =>
    Effect.gen(function* () {
      const minimal = new SmsRequested({
        messageId,
        clientId: "acme",
        idempotencyKey: "order-43",
        to: Schema.decodeSync(E164)("+14155552671"),
        body: "hi",
        encoding: "GSM-7",
        segments: 1,
        requestedAt: new Date("2025-03-01T10:00:00.000Z")
      })
      const bare = new SmsFailed({
        messageId,
        reason: "no_provider",
        permanent: true,
        failedAt: new Date("2025-03-01T10:00:00.000Z")
      })
      for (const event of [minimal, bare]) {
        const back = yield* fromStored(recorded(toStored(event, 0)))
        expect(back).toEqual(event)
      }
      const back = yield* fromStored(recorded(toStored(minimal, 0)))
      expect(back._tag === "SmsRequested" && back.requestedAt).toBeInstanceOf(Date)
    })
  )

  it.effect(
    "round-trips the mark of a contradicting report, and reads reports stored before it unmarked",
    () =>
      Effect.gen(function* () {
        for (const event of [contradictingFailure, contradictingDelivery]) {
          const back = yield* fromStored(recorded(toStored(event, 3), 3))
          expect(back).toStrictEqual(event)
        }
        expect(dataOf(contradictingFailure).contradicts).toBe("delivered")
        expect(dataOf(contradictingDelivery).contradicts).toBe("failed")
        // what was stored before the mark existed has no such key, and decodes as a plain report
        expect(dataOf(failed())).not.toHaveProperty("contradicts")
        const old = yield* fromStored(recorded(toStored(failed(), 3), 3))
        expect(old._tag === "SmsFailed" && old.contradicts).toBeUndefined()
        expect(old).toStrictEqual(failed())
        // the mark is not part of the event id (the revision already tells the report from the final),
        // so a decision re-run across an upgrade still appends the id the first run wrote
        expect(toStored(contradictingFailure, 3).id).toBe(toStored(failed(), 3).id)
      })
  )

  it("stores the tag as the type, data without _tag and dates as ISO strings", () => {
    const stored = toStored(requested, 0)
    expect(stored.type).toBe("SmsRequested")
    const data = dataOf(requested)
    expect(data).not.toHaveProperty("_tag")
    expect(data.requestedAt).toBe("2025-03-01T10:00:00.123Z")
    expect(data.validUntil).toBe("2025-03-02T10:00:00.000Z")
    expect(data.messageId).toBe(messageId)
    expect(data.to).toBe("+447911123456")
    expect(dataOf(dispatched(1)).dispatchedAt).toBe("2025-03-01T10:00:07.000Z")
    expect(dataOf(retried(1)).nextAttemptAt).toBe("2025-03-01T10:00:06.000Z")
    expect(dataOf(delivered).deliveredAt).toBe("2025-03-01T10:00:30.000Z")
    expect(dataOf(failed()).failedAt).toBe("2025-03-01T10:05:00.000Z")
    for (const event of oneOfEach) expect(JSON.parse(JSON.stringify(dataOf(event)))).toEqual(dataOf(event))
  })

  describe("event ids", () => {
    it("are deterministic for the same event content", () => {
      for (const event of oneOfEach) expect(toStored(event, 0).id).toBe(toStored(event, 0).id)
      const copy = new SmsDispatched({ ...dispatched(1) })
      expect(toStored(copy, 0).id).toBe(toStored(dispatched(1), 0).id)
    })

    it("do not depend on the time, so a decision re-run after a crash appends the same id", () => {
      const later = dispatched(1, new Date("2025-03-01T10:09:00.000Z"))
      expect(toStored(later, 0).id).toBe(toStored(dispatched(1), 0).id)
    })

    it("differ for different attempts, reports and types", () => {
      const ids = [
        toStored(requested, 0).id,
        toStored(dispatched(1), 0).id,
        toStored(dispatched(2), 0).id,
        toStored(retried(1), 0).id,
        toStored(retried(2), 0).id,
        toStored(delivered, 0).id,
        toStored(failed(), 0).id,
        toStored(failed("undeliverable", "30005"), 0).id,
        toStored(failed("expired", undefined), 0).id
      ]
      expect(new Set(ids).size).toBe(ids.length)
    })

    it("differ by the revision they are written at, so a fact recorded again later is not a duplicate", () => {
      expect(toStored(failed(), 3).id).not.toBe(toStored(failed(), 7).id)
      expect(toStored(failed(), 3).id).toBe(toStored(failed(), 3).id)
    })

    it("differ per message", () => {
      const other = new SmsDispatched({ ...dispatched(1), messageId: messageIdFor("acme", "order-43") })
      expect(toStored(other, 0).id).not.toBe(toStored(dispatched(1), 0).id)
    })
  })

  describe("fromStored refuses garbage with EventStoreError InvalidData", () => {
    const garbage: ReadonlyArray<readonly [string, Partial<RecordedEvent>]> = [
      ["fields missing", { data: { foo: 1 } }],
      ["a date that is not a date", { data: { ...dataOf(delivered), deliveredAt: "yesterday" } }],
      ["a literal out of range", { data: { ...dataOf(failed()), reason: "bored" } }],
      ["an unknown type", { type: "SmsExploded" }],
      ["null data", { data: null }],
      ["a string as data", { data: "garbage" }]
    ]
    for (const [what, change] of garbage) {
      it.effect(what, () =>
        Effect.gen(function* () {
          const event = { ...recorded(toStored(delivered, 0), 4), ...change }
          const error = yield* Effect.flip(fromStored(event))
          expect(error._tag).toBe("EventStoreError")
          expect(error.reason).toBe("InvalidData")
          expect(error.message).toContain(event.id)
          expect(error.message).toContain(messageStream(messageId))
        })
      )
    }
  })
})
