/**
 * The intake's pure decision for a new message: queued on a provider with a fresh work item at the
 * revision its own append writes (0), or refused on the record (an inactive number, no provider).
 */
import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import { decideIntake, type IntakeDecision } from "../../src/intake/IntakeDecision.js"
import { decodeWorkItem, encodeWorkItem, workItemMsgId } from "../../src/dispatch/WorkItem.js"
import { messageIdFor } from "../../src/domain/Ids.js"
import { decide, fold, SmsFailed, SmsRequested } from "../../src/domain/Message.js"
import { E164 } from "../../src/domain/PhoneNumber.js"

const messageId = messageIdFor("shop", "order-42")
const requestedAt = new Date("2025-03-01T10:00:00.000Z")

const requested = (fields: Partial<ConstructorParameters<typeof SmsRequested>[0]> = {}) =>
  new SmsRequested({
    messageId,
    clientId: "shop",
    idempotencyKey: "order-42",
    to: Schema.decodeSync(E164)("+447911123456"),
    body: "Your code is 1234",
    encoding: "GSM-7",
    segments: 1,
    requestedAt,
    ...fields
  })

const proof = "phone-447911123456 inactive since 2025-02-01T00:00:00.000Z (revision 3): ported_out"

const refused = (decision: IntakeDecision) => {
  if (decision._tag !== "Refuse") return expect.fail(`expected Refuse, got ${decision._tag}`)
  return decision
}
const queued = (decision: IntakeDecision) => {
  if (decision._tag !== "Queue") return expect.fail(`expected Queue, got ${decision._tag}`)
  return decision
}

describe("decideIntake", () => {
  describe("a provider is configured and the number is not known inactive", () => {
    it("queues the message: SmsRequested alone, and a fresh work item at revision 0", () => {
      const event = requested()
      const decision = queued(decideIntake(event, "twilio", undefined))
      expect(decision.events).toEqual([event])
      expect(decision.work).toEqual({
        messageId,
        provider: "twilio",
        priorAttempts: 0,
        fresh: { revision: 0, status: "requested", request: event }
      })
      expect("trackingId" in decision.work).toBe(false)
    })

    it("the work item carries the request's trackingId", () => {
      const event = requested({ trackingId: "trk-7" })
      expect(queued(decideIntake(event, "vonage", undefined)).work).toEqual({
        messageId,
        provider: "vonage",
        priorAttempts: 0,
        trackingId: "trk-7",
        fresh: { revision: 0, status: "requested", request: event }
      })
    })

    it("the snapshot is what the stream holds at revision 0 once the events are appended", () => {
      const decision = queued(decideIntake(requested(), "twilio", undefined))
      const state = fold(decision.events)
      expect(decision.events.length - 1).toBe(decision.work.fresh?.revision)
      expect(state.status).toBe(decision.work.fresh?.status)
      expect(state.status === "none" ? undefined : state.request).toEqual(decision.work.fresh?.request)
      // and the decider, on a new stream, records exactly these events
      expect(decide({ _tag: "Request", event: requested() }, fold([]))).toEqual(Either.right(decision.events))
    })

    it("the work item survives the wire as a fresh item named by its revision", () => {
      const decision = queued(decideIntake(requested({ trackingId: "trk-1" }), "twilio", undefined))
      const decoded = decodeWorkItem(encodeWorkItem(decision.work))
      expect(decoded).toEqual(decision.work)
      expect(workItemMsgId(decision.work, "intake")).toBe(`${messageId}:r0`)
    })
  })

  describe("the number is inactive", () => {
    it("refuses on the record: SmsRequested then a permanent SmsFailed(recipient_inactive) naming the proof", () => {
      const event = requested()
      const decision = refused(decideIntake(event, "twilio", proof))
      expect(decision.events).toEqual([
        event,
        new SmsFailed({
          messageId,
          reason: "recipient_inactive",
          permanent: true,
          detail: proof,
          failedAt: requestedAt
        })
      ])
      expect("work" in decision).toBe(false)
      expect(fold(decision.events)).toMatchObject({ status: "failed", lastError: "recipient_inactive" })
    })

    it("an inactive number is refused before a missing provider is looked at", () => {
      const decision = refused(decideIntake(requested({ providers: ["nowhere"] }), undefined, proof))
      expect(decision.events[1]).toMatchObject({
        _tag: "SmsFailed",
        reason: "recipient_inactive",
        detail: proof
      })
    })
  })

  describe("no configured provider", () => {
    it("refuses with no_provider, listing the providers the message named", () => {
      const event = requested({ providers: ["acme-sms", "other"] })
      const decision = refused(decideIntake(event, undefined, undefined))
      expect(decision.events).toEqual([
        event,
        new SmsFailed({
          messageId,
          reason: "no_provider",
          permanent: true,
          detail: "none of the providers [acme-sms, other] is configured",
          failedAt: requestedAt
        })
      ])
      expect(fold(decision.events)).toMatchObject({ status: "failed", lastError: "no_provider" })
    })

    it("a message that named no providers lists none", () => {
      const decision = refused(decideIntake(requested(), undefined, undefined))
      expect(decision.events[1]).toMatchObject({
        _tag: "SmsFailed",
        reason: "no_provider",
        detail: "none of the providers [] is configured"
      })
    })
  })
})
