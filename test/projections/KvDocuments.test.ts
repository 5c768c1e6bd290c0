/**
 * The documents' JSON encoder agrees with the Schema's, byte for byte, whatever the order the view's
 * keys were added in: a rebuilt bucket must equal the live one, which wrote views built in another
 * order (or decoded from KV, then updated).
 */
import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, Effect, FastCheck as fc, Schema } from "effect"
import { messageIdFor } from "../../src/domain/Ids.js"
import {
  type MessageEvent,
  messageEventTypes,
  SmsDelivered,
  SmsDispatched,
  SmsFailed,
  SmsRequested,
  SmsResubmitted,
  SmsRetried,
  SmsStatusReported
} from "../../src/domain/Message.js"
import { E164 } from "../../src/domain/PhoneNumber.js"
import { PhoneDeactivated, type PhoneEvent, PhoneReactivated } from "../../src/domain/PhoneNumberLifecycle.js"
import { messageStream } from "../../src/domain/StreamName.js"
import type { RecordedEvent } from "../../src/eventstore/EventStore.js"
import { decodeRecorded, toStored } from "../../src/eventstore/MessageEvents.js"
import { type Documents, memoryDocuments } from "../../src/platform/Documents.js"
import { jsonEncoder, kvDocuments } from "../../src/projections/KvDocuments.js"
import { applyEvent, MessageStatusView } from "../../src/projections/MessageStatus.js"
import { applyPhoneEvent, PhoneNumberView } from "../../src/projections/PhoneNumbers.js"
import { StatsView } from "../../src/projections/Stats.js"

const schemaJson = <A, I>(schema: Schema.Schema<A, I>) => Schema.encodeSync(Schema.parseJson(schema))

const reversed = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(reversed)
  if (typeof value !== "object" || value === null) return value
  return Object.fromEntries(
    Object.entries(value)
      .reverse()
      .map(([key, field]) => [key, reversed(field)])
  )
}

/** the same view with its fields added in the opposite order, nested ones too */
const reversedView = <A, I>(schema: Schema.Schema<A, I>, view: A): A => {
  const copy = reversed(view)
  if (!Schema.is(schema)(copy)) throw new Error("a reversed view no longer matches its schema")
  return copy
}

const messageId = messageIdFor("acme", "order-7")
const t = (seconds: number) => new Date(Date.UTC(2026, 0, 1, 10, 0, seconds))
const requested = new SmsRequested({
  messageId,
  clientId: "acme",
  idempotencyKey: "order-7",
  to: Schema.decodeSync(E164)("+447911123456"),
  from: "ACME",
  body: "Your code is 1234",
  encoding: "GSM-7",
  segments: 1,
  requestedAt: t(0)
})
const retried = new SmsRetried({
  messageId,
  provider: "twilio",
  attempt: 1,
  reason: "http_5xx",
  detail: "502",
  nextAttemptAt: t(5)
})
const dispatched = new SmsDispatched({
  messageId,
  provider: "vonage",
  providerMessageId: "v-1",
  attempt: 2,
  dispatchedAt: t(6)
})
const reported = new SmsStatusReported({
  messageId,
  provider: "vonage",
  providerMessageId: "v-1",
  rawStatus: "queued",
  reportedAt: t(7)
})
const delivered = new SmsDelivered({
  messageId,
  provider: "vonage",
  providerMessageId: "v-1",
  deliveredAt: t(9),
  rawStatus: "delivered"
})
const failed = new SmsFailed({
  messageId,
  reason: "undeliverable",
  permanent: true,
  provider: "vonage",
  code: "30003",
  failedAt: t(9)
})
const resubmitted = new SmsResubmitted({ messageId, by: "ops", reason: "retry", resubmittedAt: t(20) })

/** every view a history passes through */
const viewsOf = (events: ReadonlyArray<MessageEvent>, from?: MessageStatusView) => {
  const views: Array<MessageStatusView> = []
  let view = from
  events.forEach((event, i) => {
    view = applyEvent(view, event, { position: (from?.position ?? 0) + 10 * (i + 1), revision: i })
    if (view !== undefined) views.push(view)
  })
  return views
}

const histories: ReadonlyArray<ReadonlyArray<MessageEvent>> = [
  [requested, dispatched, delivered],
  [requested, retried, dispatched, reported, delivered],
  [requested, dispatched, failed, resubmitted, dispatched, delivered],
  [requested, failed]
]

describe("jsonEncoder", () => {
  it("writes message status views as the Schema does, however their keys were added", () => {
    const encode = jsonEncoder(MessageStatusView)
    const schema = schemaJson(MessageStatusView)
    const decode = Schema.decodeSync(Schema.parseJson(MessageStatusView))
    for (const history of histories) {
      for (const view of viewsOf(history)) {
        expect(encode(view)).toBe(schema(view))
        expect(encode(reversedView(MessageStatusView, view))).toBe(schema(view))
        // applyEvent keeps every view in one shape, the Schema's (see `document`)
        expect(JSON.stringify(view)).toBe(schema(view))
        // a document read from KV, then updated by this process
        for (const next of viewsOf([dispatched, reported, failed], decode(schema(view)))) {
          expect(encode(next)).toBe(schema(next))
        }
      }
    }
  })

  it("writes phone number views, with their history, as the Schema does", () => {
    const encode = jsonEncoder(PhoneNumberView)
    const schema = schemaJson(PhoneNumberView)
    const number = "+447911123456"
    const events: ReadonlyArray<PhoneEvent> = [
      new PhoneDeactivated({
        number,
        reason: "invalid_number",
        source: { kind: "delivery_report", messageId, provider: "vonage", code: "21211" },
        deactivatedAt: t(1)
      }),
      new PhoneReactivated({ number, by: "ops", reason: "ported", reactivatedAt: t(2) }),
      new PhoneDeactivated({
        number,
        reason: "invalid_number",
        source: { kind: "provider_answer", messageId },
        deactivatedAt: t(3)
      })
    ]
    let view: PhoneNumberView | undefined
    events.forEach((event, i) => {
      view = applyPhoneEvent(view, event, { position: i + 1 })
      expect(view).toBeDefined()
      if (view === undefined) return
      expect(encode(view)).toBe(schema(view))
      expect(encode(reversedView(PhoneNumberView, view))).toBe(schema(view))
    })
  })

  it("agrees with the Schema on any view, keys in any order", () => {
    const agrees = <A, I>(schema: Schema.Schema<A, I>) => {
      const encode = jsonEncoder(schema)
      const expected = schemaJson(schema)
      fc.assert(
        fc.property(Arbitrary.make(schema), (view) => {
          expect(encode(view)).toBe(expected(view))
          expect(encode(reversedView(schema, view))).toBe(expected(view))
        })
      )
    }
    agrees(MessageStatusView)
    agrees(PhoneNumberView)
  })

  it("falls back to the Schema where the encoded form is not the type", () => {
    const stats = { counts: { SmsRequested: 3, "SmsDelivered.sim": 2 }, position: 9 }
    expect(jsonEncoder(StatsView)(stats)).toBe(schemaJson(StatsView)(stats))
    const Dated = Schema.Struct({ at: Schema.Date, n: Schema.Number })
    expect(jsonEncoder(Dated)({ at: t(1), n: 1 })).toBe('{"at":"2026-01-01T10:00:01.000Z","n":1}')
  })
})

describe("a read model over the memory documents (no server)", () => {
  const recordedOf = (event: MessageEvent, revision: number): RecordedEvent => ({
    ...toStored(event, revision),
    streamName: messageStream(event.messageId),
    revision,
    position: 100 + revision,
    recordedAt: t(revision)
  })
  const history = [requested, retried, dispatched, reported, delivered].map(recordedOf)
  const statusModel = (documents: Documents) =>
    kvDocuments({
      name: "message-status",
      documents,
      handles: new Set(messageEventTypes),
      schema: MessageStatusView,
      decodeEvent: decodeRecorded,
      keyOf: (event) => event.messageId,
      applyEvent,
      startsDocument: (event) => event._tag === "SmsRequested"
    })

  it.effect(
    "folds a message's events into one document written once; replays and other writers change nothing",
    () =>
      Effect.gen(function* () {
        const store = memoryDocuments()
        let landed = 0
        const counted: Documents = {
          ...store,
          put: (key, value, revision) =>
            store.put(key, value, revision).then((written) => {
              landed++
              return written
            })
        }
        yield* statusModel(counted).applyBatch(history)
        expect(landed).toBe(1)
        const stored = yield* Effect.promise(() => store.get(messageId))
        const expected = history.reduce<MessageStatusView | undefined>(
          (view, record, i) =>
            applyEvent(
              view,
              [requested, retried, dispatched, reported, delivered][i] as MessageEvent,
              record
            ),
          undefined
        )
        expect(stored?.value).toBe(jsonEncoder(MessageStatusView)(expected as MessageStatusView))
        // the same process again, and another one that has cached nothing (its create is refused, it reads)
        yield* statusModel(counted).applyBatch(history)
        yield* statusModel(counted).applyBatch(history.slice(2))
        expect(landed).toBe(1)
        expect((yield* Effect.promise(() => store.get(messageId)))?.revision).toBe(stored?.revision)
      })
  )
})
