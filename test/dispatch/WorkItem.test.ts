/**
 * The work item's wire format, a contract between gateway versions: what is written reads back,
 * anything malformed is refused, a snapshot that does not hold together is only not fresh, and the
 * items older gateways wrote still read.
 */
import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import { decodeWorkItem, encodeWorkItem, type WorkItem, workItemMsgId } from "../../src/dispatch/WorkItem.js"
import { messageIdFor } from "../../src/domain/Ids.js"
import { SmsRequested } from "../../src/domain/Message.js"
import { E164 } from "../../src/domain/PhoneNumber.js"
import { toStoredFrom } from "../../src/eventstore/MessageEvents.js"

const messageId = messageIdFor("acme", "work-1")
const otherId = messageIdFor("acme", "work-2")

const request = (id = messageId) =>
  new SmsRequested({
    messageId: id,
    clientId: "acme",
    idempotencyKey: "work-1",
    to: Schema.decodeSync(E164)("+447911123456"),
    from: "Acme",
    body: "Ünïcödé body ✓",
    encoding: "UCS-2",
    segments: 1,
    providers: ["twilio", "vonage"],
    validUntil: new Date("2025-03-02T00:00:00.000Z"),
    metadata: { order: "42", "with space": "yes" },
    trackingId: "trk-1",
    requestedAt: new Date("2025-03-01T10:00:00.123Z")
  })

const minimalRequest = new SmsRequested({
  messageId,
  clientId: "acme",
  idempotencyKey: "work-1",
  to: Schema.decodeSync(E164)("+447911123456"),
  body: "hi",
  encoding: "GSM-7",
  segments: 1,
  requestedAt: new Date("2025-03-01T10:00:00.000Z")
})

const fresh: WorkItem = {
  messageId,
  provider: "twilio",
  priorAttempts: 0,
  trackingId: "trk-1",
  fresh: { revision: 0, status: "requested", request: request() }
}
const plain: WorkItem = { messageId, provider: "vonage", priorAttempts: 2 }

/** the JSON of `item` with some fields replaced (undefined removes one) */
const tampered = (item: WorkItem, changes: Record<string, unknown>): string => {
  const json = JSON.parse(encodeWorkItem(item)) as Record<string, unknown>
  for (const [key, value] of Object.entries(changes)) {
    if (value === undefined) delete json[key]
    else json[key] = value
  }
  return JSON.stringify(json)
}

const storedRequest = (event: SmsRequested) => toStoredFrom([event], 0)[0]?.data as Record<string, unknown>

describe("WorkItem wire format", () => {
  describe("round trip", () => {
    it("a fresh item reads back with its snapshot: revision, status and the request with every field", () => {
      const decoded = decodeWorkItem(encodeWorkItem(fresh))
      expect(decoded).toEqual(fresh)
      expect(decoded?.fresh?.request).toBeInstanceOf(SmsRequested)
      expect(decoded?.fresh?.request.validUntil?.toISOString()).toBe("2025-03-02T00:00:00.000Z")
      expect(decoded?.fresh?.request.requestedAt.toISOString()).toBe("2025-03-01T10:00:00.123Z")
    })

    it("a fresh item queued by a failover (status retrying, later revision) reads back", () => {
      const hop: WorkItem = {
        messageId,
        provider: "vonage",
        priorAttempts: 3,
        fresh: { revision: 4, status: "retrying", request: minimalRequest }
      }
      expect(decodeWorkItem(encodeWorkItem(hop))).toEqual(hop)
    })

    it("a plain item reads back without a snapshot, with and without trackingId", () => {
      expect(decodeWorkItem(encodeWorkItem(plain))).toEqual(plain)
      const tracked: WorkItem = { ...plain, trackingId: "trk-9" }
      expect(decodeWorkItem(encodeWorkItem(tracked))).toEqual(tracked)
      const decoded = decodeWorkItem(encodeWorkItem(plain))
      expect(decoded !== undefined && "fresh" in decoded).toBe(false)
      expect(decoded !== undefined && "trackingId" in decoded).toBe(false)
    })

    it("writes the request exactly as the message stream stores SmsRequested; a plain item writes no snapshot", () => {
      const json = JSON.parse(encodeWorkItem(fresh)) as Record<string, unknown>
      expect(json).toEqual({
        messageId,
        provider: "twilio",
        priorAttempts: 0,
        trackingId: "trk-1",
        revision: 0,
        status: "requested",
        request: storedRequest(request())
      })
      expect(Object.keys(JSON.parse(encodeWorkItem(plain)) as object).sort()).toEqual([
        "messageId",
        "priorAttempts",
        "provider"
      ])
    })
  })

  describe("malformed items are refused", () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      ["not JSON", "{messageId:"],
      ["empty", ""],
      ["null", "null"],
      ["a number", "42"],
      ["a string", JSON.stringify(encodeWorkItem(plain))],
      ["an array", "[]"],
      ["no messageId", tampered(plain, { messageId: undefined })],
      ["a messageId that is not a UUID", tampered(plain, { messageId: "order-42" })],
      ["a numeric messageId", tampered(plain, { messageId: 42 })],
      ["no provider", tampered(plain, { provider: undefined })],
      ["an empty provider", tampered(plain, { provider: "" })],
      ["a numeric provider", tampered(plain, { provider: 7 })],
      ["no priorAttempts", tampered(plain, { priorAttempts: undefined })],
      ["priorAttempts as a string", tampered(plain, { priorAttempts: "2" })],
      ["negative priorAttempts", tampered(plain, { priorAttempts: -1 })],
      ["fractional priorAttempts", tampered(plain, { priorAttempts: 1.5 })],
      ["a numeric trackingId", tampered(plain, { trackingId: 5 })],
      ["a null trackingId", tampered(plain, { trackingId: null })]
    ]
    for (const [name, text] of cases) {
      it(`${name} -> undefined`, () => {
        expect(decodeWorkItem(text)).toBeUndefined()
      })
    }
  })

  describe("a snapshot that does not hold together: the item reads, but not fresh (checked against the stream)", () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      ["the request is another message's", tampered(fresh, { request: storedRequest(request(otherId)) })],
      ["a negative revision", tampered(fresh, { revision: -1 })],
      ["a fractional revision", tampered(fresh, { revision: 0.5 })],
      ["a revision as a string", tampered(fresh, { revision: "0" })],
      ["no revision", tampered(fresh, { revision: undefined })],
      ["status dispatched", tampered(fresh, { status: "dispatched" })],
      ["status failed", tampered(fresh, { status: "failed" })],
      ["no status", tampered(fresh, { status: undefined })],
      ["no request", tampered(fresh, { request: undefined })],
      ["a request that is not an object", tampered(fresh, { request: "SmsRequested" })],
      [
        "a request without a body",
        tampered(fresh, { request: { ...storedRequest(request()), body: undefined } })
      ],
      [
        "a request with an invalid date",
        tampered(fresh, { request: { ...storedRequest(request()), requestedAt: "yesterday" } })
      ],
      ["a request as an array", tampered(fresh, { request: [storedRequest(request())] })]
    ]
    for (const [name, text] of cases) {
      it(`${name}`, () => {
        const decoded = decodeWorkItem(text)
        expect(decoded).toEqual({ messageId, provider: "twilio", priorAttempts: 0, trackingId: "trk-1" })
        expect(decoded?.fresh).toBeUndefined()
        expect(decoded !== undefined && "fresh" in decoded).toBe(false)
      })
    }
  })

  describe("items written by an older gateway ({ messageId, provider, priorAttempts, trackingId? })", () => {
    it("read as plain items", () => {
      expect(decodeWorkItem(JSON.stringify({ messageId, provider: "twilio", priorAttempts: 0 }))).toEqual({
        messageId,
        provider: "twilio",
        priorAttempts: 0
      })
      expect(
        decodeWorkItem(JSON.stringify({ messageId, provider: "vonage", priorAttempts: 3, trackingId: "t-1" }))
      ).toEqual({ messageId, provider: "vonage", priorAttempts: 3, trackingId: "t-1" })
    })

    it("unknown fields a newer or older gateway adds are ignored", () => {
      const decoded = decodeWorkItem(
        JSON.stringify({ messageId, provider: "twilio", priorAttempts: 1, hops: 2 })
      )
      expect(decoded).toEqual({ messageId, provider: "twilio", priorAttempts: 1 })
    })
  })

  describe("Nats-Msg-Id", () => {
    it("a fresh item is named by the revision that queued it", () => {
      expect(workItemMsgId(fresh, "intake")).toBe(`${messageId}:r0`)
      const hop: WorkItem = { ...plain, fresh: { revision: 3, status: "retrying", request: minimalRequest } }
      expect(workItemMsgId(hop, 1234)).toBe(`${messageId}:r3`)
    })

    it("a re-run of the step that wrote a revision has the same id, whatever its origin", () => {
      expect(workItemMsgId(fresh, "intake")).toBe(workItemMsgId(fresh, 99))
      expect(workItemMsgId(fresh, "intake")).toBe(
        workItemMsgId(decodeWorkItem(encodeWorkItem(fresh)) ?? plain, 1)
      )
    })

    it("a step done again queues its item without the snapshot, under the fresh item's id", () => {
      const { fresh: _, ...repeat } = fresh
      expect(workItemMsgId(repeat, { repeats: 0 })).toBe(workItemMsgId(fresh, "intake"))
      expect(decodeWorkItem(encodeWorkItem(repeat))?.fresh).toBeUndefined()
    })

    it("two revisions of one message never share an id", () => {
      const at = (revision: number): WorkItem => ({
        ...fresh,
        fresh: { revision, status: "retrying", request: minimalRequest }
      })
      expect(workItemMsgId(at(1), "x")).not.toBe(workItemMsgId(at(2), "x"))
    })

    it("any other item is named by its origin, provider and prior attempts", () => {
      expect(workItemMsgId(plain, 17)).toBe(`${messageId}:vonage:2:17`)
      expect(workItemMsgId(plain, "resubmit-2025-03-01T10:00:00.000Z")).toBe(
        `${messageId}:vonage:2:resubmit-2025-03-01T10:00:00.000Z`
      )
      expect(workItemMsgId(plain, 17)).not.toBe(workItemMsgId(plain, 18))
      expect(workItemMsgId(plain, 17)).not.toBe(workItemMsgId({ ...plain, provider: "twilio" }, 17))
      expect(workItemMsgId(plain, 17)).not.toBe(workItemMsgId({ ...plain, priorAttempts: 3 }, 17))
    })
  })
})
