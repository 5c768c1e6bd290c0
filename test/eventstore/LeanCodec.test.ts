/**
 * The lean codec of message events against the Schema it stands in for: whatever the Schema writes
 * the lean encoder writes, byte for byte once in JSON; whatever the Schema decodes (or refuses) the
 * lean decoder decodes to the same event (or refuses). The events come from the Schema's own
 * arbitrary, so a field added to an event class is covered here without touching this file.
 */
import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, Effect, Either, FastCheck as fc, Schema } from "effect"
import { messageIdFor } from "../../src/domain/Ids.js"
import {
  MessageEvent,
  messageEventTypes,
  SmsDelivered,
  SmsDispatched,
  SmsFailed,
  SmsRequested,
  SmsResubmitted,
  SmsRetried,
  SmsStatusReported,
  SmsStatusUnknown
} from "../../src/domain/Message.js"
import { EventStoreError, type RecordedEvent } from "../../src/eventstore/EventStore.js"
import {
  decodeMessageEventData,
  decodeRecorded,
  encodeMessageEvent,
  fromStored,
  toStored
} from "../../src/eventstore/MessageEvents.js"

const schemaEncode = Schema.encodeSync(MessageEvent)
const schemaDecode = Schema.decodeUnknownEither(MessageEvent)
const anyEvent = Arbitrary.make(MessageEvent)

/** what the Schema stores for an event: its encoding without `_tag` */
const schemaData = (event: MessageEvent): Record<string, unknown> => {
  const { _tag, ...data } = schemaEncode(event)
  return data
}
/** what the Schema decodes from stored data (the codec's fallback reads it this way) */
const schemaDecoded = (type: string, data: unknown) => schemaDecode({ ...(data as object), _tag: type })
const throughJson = (data: unknown): unknown => JSON.parse(JSON.stringify(data))

let position = 0
const recorded = (type: string, data: unknown): RecordedEvent => ({
  id: `event-${++position}`,
  type,
  data,
  streamName: "sms-test",
  revision: 0,
  position,
  recordedAt: new Date(0)
})

/** The lean decoder and `decodeRecorded` agree with the Schema on `data` stored as `type`. */
const expectSameDecoding = (type: string, data: unknown) => {
  const expected = schemaDecoded(type, data)
  const lean = decodeMessageEventData(type, data)
  // the lean decoder answers only when it is sure: then with the Schema's event, field for field
  if (lean !== undefined) {
    expect(Either.isRight(expected)).toBe(true)
    if (Either.isRight(expected)) expect(lean).toStrictEqual(expected.right)
  }
  const decoded = decodeRecorded(recorded(type, data))
  if (Either.isLeft(expected)) {
    expect(decoded).toBeInstanceOf(EventStoreError)
    expect(decoded instanceof EventStoreError && decoded.reason).toBe("InvalidData")
  } else {
    expect(decoded).toStrictEqual(expected.right)
  }
}

describe("lean encoding of message events", () => {
  it("writes what the Schema writes (minus _tag), for arbitrary events of every type", () => {
    const seen = new Set<string>()
    fc.assert(
      fc.property(anyEvent, (event) => {
        seen.add(event._tag)
        const lean = encodeMessageEvent(event)
        expect(lean).toEqual(schemaData(event))
        // byte for byte in storage, field order included
        expect(JSON.stringify(lean)).toBe(JSON.stringify(schemaData(event)))
        expect(toStored(event, 3).data).toEqual(lean)
        expect(toStored(event, 3).type).toBe(event._tag)
      }),
      { numRuns: 2000 }
    )
    expect([...seen].sort()).toEqual([...messageEventTypes].sort())
  })

  it("writes an unknown outcome as the Schema does, with or without the provider message id", () => {
    const base = {
      messageId: messageIdFor("acme", "order-42"),
      provider: "sim",
      deadlineMs: 1000,
      at: new Date("2025-03-01T10:00:00.000Z")
    }
    for (const event of [
      new SmsStatusUnknown({ ...base, providerMessageId: "sim-1" }),
      new SmsStatusUnknown({ ...base, providerMessageId: undefined }),
      new SmsStatusUnknown(base)
    ]) {
      expect(JSON.stringify(encodeMessageEvent(event))).toBe(JSON.stringify(schemaData(event)))
      expectSameDecoding("SmsStatusUnknown", throughJson(encodeMessageEvent(event)))
    }
  })

  it("leaves an optional field out when undefined, where the Schema writes the key as undefined", () => {
    const event = new SmsRetried({
      messageId: messageIdFor("acme", "order-42"),
      provider: "sim",
      attempt: 1,
      reason: "timeout",
      detail: undefined,
      nextAttemptAt: new Date("2025-03-01T10:00:00.000Z")
    })
    expect(Object.keys(encodeMessageEvent(event))).not.toContain("detail")
    expect(JSON.stringify(encodeMessageEvent(event))).toBe(JSON.stringify(schemaData(event)))
  })

  it("copies metadata as the Schema does, so an own __proto__ key is dropped", () => {
    const metadata: Record<string, string> = JSON.parse('{"__proto__":"x","order":"42"}')
    const event = new SmsRequested({
      messageId: messageIdFor("acme", "order-42"),
      clientId: "acme",
      idempotencyKey: "order-42",
      to: "+447911123456",
      body: "hi",
      encoding: "GSM-7",
      segments: 1,
      metadata,
      requestedAt: new Date("2025-03-01T10:00:00.000Z")
    })
    expect(JSON.stringify(encodeMessageEvent(event))).toBe(JSON.stringify(schemaData(event)))
    expect(encodeMessageEvent(event).metadata).toStrictEqual({ order: "42" })
  })

  it("writes a contradicting report's mark as the Schema does, last, and nothing for an unmarked report", () => {
    const messageId = messageIdFor("acme", "order-42")
    const at = new Date("2025-03-01T10:00:00.000Z")
    const delivery = {
      messageId,
      provider: "sim",
      providerMessageId: "sim-1",
      deliveredAt: at,
      rawStatus: "ok"
    }
    const failure = {
      messageId,
      reason: "undeliverable",
      permanent: true,
      provider: "sim",
      failedAt: at
    } as const
    const marked = [
      new SmsDelivered({ ...delivery, contradicts: "failed" }),
      new SmsFailed({ ...failure, contradicts: "delivered" })
    ]
    for (const event of marked) {
      const lean = encodeMessageEvent(event)
      expect(JSON.stringify(lean)).toBe(JSON.stringify(schemaData(event)))
      expect(Object.keys(lean).at(-1)).toBe("contradicts")
      expect(lean.contradicts).toBe(event._tag === "SmsDelivered" ? "failed" : "delivered")
    }
    // as the decider builds an unmarked report: the key present, set to undefined
    for (const event of [
      new SmsDelivered({ ...delivery, contradicts: undefined }),
      new SmsFailed({ ...failure, contradicts: undefined })
    ]) {
      expect(Object.keys(encodeMessageEvent(event))).not.toContain("contradicts")
      expect(JSON.stringify(encodeMessageEvent(event))).toBe(JSON.stringify(schemaData(event)))
    }
  })

  it("keeps the event ids that were stored before (pinned)", () => {
    const messageId = messageIdFor("acme", "order-42")
    const at = new Date("2025-03-01T10:00:00.000Z")
    const pinned: ReadonlyArray<readonly [MessageEvent, string]> = [
      [
        new SmsRequested({
          messageId,
          clientId: "acme",
          idempotencyKey: "order-42",
          to: "+447911123456",
          body: "hi",
          encoding: "GSM-7",
          segments: 1,
          requestedAt: at
        }),
        "be03f9c7-26b5-53c8-9ca9-a56e8e310120"
      ],
      [
        new SmsDispatched({
          messageId,
          provider: "sim",
          providerMessageId: "sim-1",
          attempt: 1,
          dispatchedAt: at
        }),
        "5539116c-188e-5e23-a6a2-c8a58597efe6"
      ],
      [
        new SmsRetried({ messageId, provider: "sim", attempt: 2, reason: "timeout", nextAttemptAt: at }),
        "ebf758bd-7db5-5805-9c3b-e2877211a0db"
      ],
      [
        new SmsDelivered({
          messageId,
          provider: "sim",
          providerMessageId: "sim-1",
          deliveredAt: at,
          rawStatus: "delivered"
        }),
        "b2457d55-acc9-5df8-9bd3-bd2da1704b37"
      ],
      [
        new SmsFailed({ messageId, reason: "undeliverable", permanent: true, code: "30003", failedAt: at }),
        "a3906139-3ede-5cbc-8154-5a00ed5326da"
      ],
      [
        new SmsResubmitted({ messageId, by: "ops", resubmittedAt: at }),
        "13d246c0-2cd6-5d8f-afd0-aaf49d37e414"
      ],
      [
        new SmsStatusReported({
          messageId,
          provider: "sim",
          providerMessageId: "sim-1",
          rawStatus: "sent",
          reportedAt: at
        }),
        "955eceae-cd5b-5d3d-a3a8-a31c26ced445"
      ],
      [
        new SmsStatusUnknown({
          messageId,
          provider: "sim",
          providerMessageId: "sim-1",
          deadlineMs: 259_200_000,
          at
        }),
        "ff9a1723-5b8d-5ec9-a5c1-4225912e0b86"
      ]
    ]
    for (const [revision, [event, id]] of pinned.entries()) expect(toStored(event, revision + 3).id).toBe(id)
  })
})

describe("lean decoding of message events", () => {
  it("decodes what was stored exactly as the Schema does, without falling back to it", () => {
    fc.assert(
      fc.property(anyEvent, (event) => {
        const data = throughJson(encodeMessageEvent(event))
        expectSameDecoding(event._tag, data)
        // valid data never takes the slow path (a NaN or Infinity, which JSON writes as null, is not valid)
        expect(decodeMessageEventData(event._tag, data) !== undefined).toBe(
          Either.isRight(schemaDecoded(event._tag, data))
        )
        // and before JSON too (what an in-process caller holds)
        expectSameDecoding(event._tag, encodeMessageEvent(event))
      }),
      { numRuns: 2000 }
    )
  })

  /** values that break a field, or happen to fit another one */
  const junkValues: ReadonlyArray<unknown> = [
    null,
    undefined,
    0,
    -1.5,
    true,
    false,
    "",
    " ",
    "bored",
    "yesterday",
    "2025-02-30",
    "2025-03-01",
    "0",
    "2025-03-01T10:00:00Z ",
    "not-a-uuid",
    "D4788ED6-486B-550B-8CDA-83561E9EAA48",
    "GSM-7",
    "UCS-2",
    "timeout",
    "retries_exhausted",
    [],
    ["a", 1],
    {},
    { a: "b" },
    { a: 1 },
    Number.NaN,
    Number.POSITIVE_INFINITY,
    "1",
    "UTF-8",
    "rejected",
    new Array<string>(1),
    JSON.parse('{"__proto__":"x","a":"b"}'),
    new Date("2025-03-01T10:00:00.000Z")
  ]
  const junk = fc.oneof(
    fc.constantFrom(...junkValues),
    fc.string(),
    fc.integer(),
    fc.uuid(),
    fc.date({ noInvalidDate: true }).map((date) => date.toISOString()),
    fc.array(fc.string(), { maxLength: 3 }),
    fc.dictionary(fc.string(), fc.string(), { maxKeys: 3 })
  )

  const malformed = fc.oneof(
    // a field removed
    fc.tuple(anyEvent, fc.nat()).map(([event, n]): readonly [string, unknown] => {
      const data = encodeMessageEvent(event)
      const keys = Object.keys(data)
      const { [keys[n % keys.length] ?? "messageId"]: _removed, ...rest } = data
      return [event._tag, rest]
    }),
    // a field, or a new one, set to junk
    fc
      .tuple(anyEvent, fc.nat(), junk, fc.boolean())
      .map(([event, n, value, known]): readonly [string, unknown] => {
        const data = encodeMessageEvent(event)
        const keys = [
          ...Object.keys(data),
          "from",
          "detail",
          "providers",
          "metadata",
          "validUntil",
          "contradicts",
          "providerMessageId",
          "extra"
        ]
        return [event._tag, { ...data, [known ? (keys[n % keys.length] ?? "extra") : "extra"]: value }]
      }),
    // another type's data, or an unknown type
    fc
      .tuple(anyEvent, fc.constantFrom(...messageEventTypes, "SmsExploded", ""))
      .map(([event, type]): readonly [string, unknown] => [type, encodeMessageEvent(event)]),
    // not an object at all
    fc
      .tuple(fc.constantFrom(...messageEventTypes), junk)
      .map(([type, data]): readonly [string, unknown] => [type, data])
  )

  it("accepts and refuses every field of every type set to each junk value, or removed, as the Schema does", () => {
    const messageId = messageIdFor("acme", "order-42")
    const at = new Date("2025-03-01T10:00:00.000Z")
    const everyField: ReadonlyArray<MessageEvent> = [
      new SmsRequested({
        messageId,
        clientId: "acme",
        idempotencyKey: "order-42",
        to: "+447911123456",
        from: "ACME",
        body: "hi",
        encoding: "UCS-2",
        segments: 1,
        providers: ["sim"],
        validUntil: at,
        metadata: { order: "42" },
        trackingId: "trk-1",
        requestedAt: at
      }),
      new SmsDispatched({
        messageId,
        provider: "sim",
        providerMessageId: "sim-1",
        attempt: 1,
        dispatchedAt: at
      }),
      new SmsRetried({
        messageId,
        provider: "sim",
        attempt: 2,
        reason: "throttled",
        detail: "429",
        nextAttemptAt: at,
        nextProvider: "other"
      }),
      new SmsDelivered({
        messageId,
        provider: "sim",
        providerMessageId: "sim-1",
        deliveredAt: at,
        rawStatus: "ok",
        contradicts: "failed"
      }),
      new SmsFailed({
        messageId,
        reason: "expired",
        permanent: false,
        provider: "sim",
        code: "1",
        detail: "late",
        failedAt: at,
        contradicts: "delivered"
      }),
      new SmsResubmitted({ messageId, by: "ops", reason: "retry", provider: "sim", resubmittedAt: at }),
      new SmsStatusReported({
        messageId,
        provider: "sim",
        providerMessageId: "sim-1",
        rawStatus: "sent",
        reportedAt: at
      }),
      new SmsStatusUnknown({
        messageId,
        provider: "sim",
        providerMessageId: "sim-1",
        deadlineMs: 259_200_000,
        at
      })
    ]
    for (const event of everyField) {
      const data = throughJson(encodeMessageEvent(event)) as Record<string, unknown>
      for (const key of Object.keys(data)) {
        const { [key]: _removed, ...rest } = data
        expectSameDecoding(event._tag, rest)
        for (const value of junkValues) expectSameDecoding(event._tag, { ...data, [key]: value })
      }
    }
  })

  it("decodes a contradicting report's mark as the Schema does, and refuses the wrong status as it does", () => {
    const messageId = messageIdFor("acme", "order-42")
    const at = "2025-03-01T10:00:00.000Z"
    const delivered = {
      messageId,
      provider: "sim",
      providerMessageId: "sim-1",
      deliveredAt: at,
      rawStatus: "ok"
    }
    const failed = { messageId, reason: "undeliverable", permanent: true, provider: "sim", failedAt: at }
    const markedDelivery = decodeMessageEventData("SmsDelivered", { ...delivered, contradicts: "failed" })
    expect(markedDelivery?._tag === "SmsDelivered" && markedDelivery.contradicts).toBe("failed")
    const markedFailure = decodeMessageEventData("SmsFailed", { ...failed, contradicts: "delivered" })
    expect(markedFailure?._tag === "SmsFailed" && markedFailure.contradicts).toBe("delivered")
    // stored before the mark existed: decodes, without the key
    const old = decodeMessageEventData("SmsFailed", failed)
    expect(old).toBeDefined()
    expect(Object.keys(old ?? {})).not.toContain("contradicts")
    for (const [type, data] of [
      ["SmsDelivered", { ...delivered, contradicts: "failed" }],
      ["SmsFailed", { ...failed, contradicts: "delivered" }],
      ["SmsDelivered", delivered],
      ["SmsFailed", failed],
      // a report only contradicts the other final status
      ["SmsDelivered", { ...delivered, contradicts: "delivered" }],
      ["SmsFailed", { ...failed, contradicts: "failed" }],
      ["SmsFailed", { ...failed, contradicts: true }],
      ["SmsDelivered", { ...delivered, contradicts: null }]
    ] as const) {
      expectSameDecoding(type, data)
    }
    expect(decodeRecorded(recorded("SmsFailed", { ...failed, contradicts: "failed" }))).toBeInstanceOf(
      EventStoreError
    )
  })

  it("accepts and refuses malformed data exactly as the Schema does", () => {
    fc.assert(
      fc.property(malformed, ([type, data]) => expectSameDecoding(type, data)),
      { numRuns: 5000 }
    )
  })

  it("leaves unusual shapes to the Schema: a key set to undefined, a class instance, null data", () => {
    const event = new SmsRetried({
      messageId: messageIdFor("acme", "order-42"),
      provider: "sim",
      attempt: 1,
      reason: "timeout",
      nextAttemptAt: new Date("2025-03-01T10:00:00.000Z")
    })
    const data = encodeMessageEvent(event)
    const withUndefined = { ...data, detail: undefined }
    expect(decodeMessageEventData("SmsRetried", withUndefined)).toBeUndefined()
    expectSameDecoding("SmsRetried", withUndefined)
    class Stored {
      constructor(readonly fields: Record<string, unknown>) {
        Object.assign(this, fields)
      }
    }
    expect(decodeMessageEventData("SmsRetried", new Stored(data))).toBeUndefined()
    expectSameDecoding("SmsRetried", new Stored(data))
    expectSameDecoding("SmsRetried", null)
    expectSameDecoding("SmsRetried", Object.assign(Object.create(null), data))
  })

  it.effect("fromStored yields the memoised event, or fails with the EventStoreError", () =>
    Effect.gen(function* () {
      const event = new SmsDelivered({
        messageId: messageIdFor("acme", "order-42"),
        provider: "sim",
        providerMessageId: "sim-1",
        deliveredAt: new Date("2025-03-01T10:00:00.000Z"),
        rawStatus: "delivered"
      })
      const record = recorded("SmsDelivered", throughJson(toStored(event, 0).data))
      const decoded = yield* fromStored(record)
      expect(decoded).toStrictEqual(event)
      // one decoding per recorded event, whoever reads it
      expect(decodeRecorded(record)).toBe(decoded)
      expect(yield* fromStored(record)).toBe(decoded)
      const error = yield* Effect.flip(
        fromStored(
          recorded("SmsDelivered", { ...(toStored(event, 0).data as object), deliveredAt: "yesterday" })
        )
      )
      expect(error).toBeInstanceOf(EventStoreError)
      expect(error.reason).toBe("InvalidData")
    })
  )
})
