import { describe, expect, it } from "@effect/vitest"
import fc from "fast-check"
import { Schema } from "effect"
import { messageIdFor } from "../../src/domain/Ids.js"
import {
  canResubmit,
  evolve,
  initialState,
  type MessageEvent,
  SmsDelivered,
  SmsDispatched,
  SmsFailed,
  SmsRequested,
  SmsResubmitted,
  SmsRetried,
  SmsStatusReported,
  SmsStatusUnknown
} from "../../src/domain/Message.js"
import { E164 } from "../../src/domain/PhoneNumber.js"
import { applyEvent, type MessageStatusView } from "../../src/projections/MessageStatus.js"

// ---------------------------------------------------------------------------------------------
// Fixtures: one message whose events sit at global positions interleaved with other streams

const messageId = messageIdFor("acme", "order-42")
const requestedAt = new Date("2025-03-01T10:00:00.000Z")
const retriedUntil = new Date("2025-03-01T10:00:06.000Z")
const dispatchedAt = new Date("2025-03-01T10:00:07.000Z")
const deliveredAt = new Date("2025-03-01T10:00:30.000Z")
const failedAt = new Date("2025-03-01T10:05:00.000Z")

const requested = new SmsRequested({
  messageId,
  clientId: "acme",
  idempotencyKey: "order-42",
  to: Schema.decodeSync(E164)("+447911123456"),
  from: "ACME",
  body: "Your code is 1234",
  encoding: "GSM-7",
  segments: 1,
  requestedAt
})
const retried = new SmsRetried({
  messageId,
  provider: "twilio",
  attempt: 1,
  reason: "http_5xx",
  detail: "502 Bad Gateway",
  nextAttemptAt: retriedUntil,
  nextProvider: "vonage"
})
const dispatched = (attempt: number, provider = "twilio") =>
  new SmsDispatched({
    messageId,
    provider,
    providerMessageId: `${provider}-${attempt}`,
    attempt,
    dispatchedAt
  })
const delivered = new SmsDelivered({
  messageId,
  provider: "twilio",
  providerMessageId: "twilio-1",
  deliveredAt,
  rawStatus: "delivered"
})
const failed = new SmsFailed({
  messageId,
  reason: "undeliverable",
  permanent: true,
  provider: "twilio",
  code: "30003",
  detail: "DLR status undelivered",
  failedAt
})

interface Step {
  readonly event: MessageEvent
  readonly position: number
  readonly revision: number
}
const at = (event: MessageEvent, position: number, revision: number): Step => ({ event, position, revision })

// ---------------------------------------------------------------------------------------------
// given / when / then on `applyEvent`

const project = (steps: ReadonlyArray<Step>, from?: MessageStatusView): MessageStatusView | undefined =>
  steps.reduce<MessageStatusView | undefined>((view, step) => applyEvent(view, step.event, step), from)

const given = (...history: ReadonlyArray<Step>) => ({
  when: (...steps: ReadonlyArray<Step>) => {
    const before = project(history)
    const after = project(steps, before)
    return {
      thenView: (expected: Partial<MessageStatusView>) => {
        expect(after).toBeDefined()
        expect(after).toMatchObject(expected)
        return after
      },
      thenUnchanged: () => {
        expect(before).toBeDefined()
        expect(after).toBe(before)
      },
      thenNoDocument: () => {
        expect(after).toBeUndefined()
      }
    }
  }
})

const happyPath = [at(requested, 3, 0), at(dispatched(1), 7, 1), at(delivered, 12, 2)]

describe("MessageStatus.applyEvent", () => {
  it("creates the document from SmsRequested", () => {
    const view = given()
      .when(at(requested, 3, 0))
      .thenView({
        messageId,
        clientId: "acme",
        status: "requested",
        to: "+447911123456",
        from: "ACME",
        encoding: "GSM-7",
        segments: 1,
        attempts: 0,
        requestedAt: "2025-03-01T10:00:00.000Z",
        position: 3,
        revision: 0
      })
    expect(view?.dispatchedAt).toBeUndefined()
    expect(view?.provider).toBeUndefined()
  })

  it("follows requested -> dispatched -> delivered with provider, attempts and timestamps", () => {
    given(at(requested, 3, 0))
      .when(at(dispatched(1), 7, 1))
      .thenView({
        status: "dispatched",
        provider: "twilio",
        providerMessageId: "twilio-1",
        attempts: 1,
        dispatchedAt: "2025-03-01T10:00:07.000Z",
        position: 7,
        revision: 1
      })
    given(at(requested, 3, 0), at(dispatched(1), 7, 1))
      .when(at(delivered, 12, 2))
      .thenView({
        status: "delivered",
        provider: "twilio",
        providerMessageId: "twilio-1",
        attempts: 1,
        requestedAt: "2025-03-01T10:00:00.000Z",
        dispatchedAt: "2025-03-01T10:00:07.000Z",
        deliveredAt: "2025-03-01T10:00:30.000Z",
        position: 12,
        revision: 2
      })
  })

  it("records a failure with its reason, code and time", () => {
    const view = given(at(requested, 3, 0), at(dispatched(1), 7, 1))
      .when(at(failed, 12, 2))
      .thenView({
        status: "failed",
        provider: "twilio",
        failureReason: "undeliverable",
        lastError: "undeliverable (30003)",
        failedAt: "2025-03-01T10:05:00.000Z",
        position: 12,
        revision: 2
      })
    expect(view?.deliveredAt).toBeUndefined()
  })

  describe("attempts count the provider calls a failure ended (issue 14, item 11)", () => {
    const refused = new SmsFailed({
      messageId,
      reason: "invalid_number",
      permanent: true,
      provider: "twilio",
      code: "21211",
      detail: "not a valid phone number",
      failedAt
    })

    it("a provider's permanent answer to the first call is one attempt", () => {
      given(at(requested, 3, 0))
        .when(at(refused, 7, 1))
        .thenView({ status: "failed", failureReason: "invalid_number", attempts: 1 })
    })

    it("after a retried attempt, the failing call is the second", () => {
      given(at(requested, 3, 0), at(retried, 5, 1))
        .when(at(refused, 7, 2))
        .thenView({ status: "failed", attempts: 2 })
    })

    it("a delivery report's failure after the dispatch is no new call", () => {
      given(at(requested, 3, 0), at(dispatched(1), 7, 1))
        .when(at(failed, 12, 2))
        .thenView({ status: "failed", attempts: 1 })
    })

    it("a refusal that called no provider (inactive recipient, expired) is no attempt", () => {
      const inactive = new SmsFailed({
        messageId,
        reason: "recipient_inactive",
        permanent: true,
        detail: "phone-447911123456@2",
        failedAt
      })
      given(at(requested, 3, 0))
        .when(at(inactive, 7, 1))
        .thenView({ status: "failed", attempts: 0 })
    })
  })

  describe("idempotency", () => {
    it("skips any event at or below the stored position", () => {
      for (const step of happyPath)
        given(...happyPath)
          .when(step)
          .thenUnchanged()
      given(...happyPath)
        .when(at(retried, 12, 3), at(failed, 5, 3), at(dispatched(2), 1, 1))
        .thenUnchanged()
    })

    it("skips a replayed SmsRequested instead of resetting the document", () => {
      given(at(requested, 3, 0), at(dispatched(1), 7, 1))
        .when(at(requested, 3, 0))
        .thenUnchanged()
    })

    it("gives the same document when the whole list is applied twice (a rebuild over live data)", () => {
      const steps = [
        at(requested, 3, 0),
        at(retried, 5, 1),
        at(dispatched(2, "vonage"), 9, 2),
        at(delivered, 12, 3)
      ]
      const once = project(steps)
      expect(once).toBeDefined()
      expect(project(steps, once)).toEqual(once)
      expect(project([...steps, ...steps])).toEqual(once)
    })

    it("gives the same document when a redelivered batch overlaps the one already applied", () => {
      const [first, second, third] = happyPath
      if (first === undefined || second === undefined || third === undefined) return expect.fail("fixture")
      const whole = project(happyPath)
      const overlapping = project([second, third], project([first, second]))
      expect(overlapping).toEqual(whole)
    })
  })

  it("keeps delivered when a failed report arrives afterwards, only moving the position", () => {
    const view = given(...happyPath)
      .when(at(failed, 20, 3))
      .thenView({ status: "delivered", deliveredAt: "2025-03-01T10:00:30.000Z", position: 20, revision: 3 })
    expect(view?.failureReason).toBeUndefined()
    expect(view?.failedAt).toBeUndefined()
  })

  it("keeps failed when a delivered report arrives afterwards", () => {
    given(at(requested, 3, 0), at(dispatched(1), 7, 1), at(failed, 12, 2))
      .when(at(delivered, 20, 3))
      .thenView({ status: "failed", failureReason: "undeliverable", position: 20 })
  })

  it("keeps the first final on a report the decider marked as contradicting it, in both directions", () => {
    // the whole document: only the position and revision move
    const contradictedFailure = at(new SmsFailed({ ...failed, contradicts: "delivered" }), 20, 3)
    expect(project([...happyPath, contradictedFailure])).toEqual({
      ...project(happyPath),
      position: 20,
      revision: 3
    })
    const failedFirst = [at(requested, 3, 0), at(dispatched(1), 7, 1), at(failed, 12, 2)]
    const contradictedDelivery = at(new SmsDelivered({ ...delivered, contradicts: "failed" }), 20, 3)
    expect(project([...failedFirst, contradictedDelivery])).toEqual({
      ...project(failedFirst),
      position: 20,
      revision: 3
    })
  })

  it("sets nextAttemptAt and lastError on a retry, and a later dispatch clears nextAttemptAt", () => {
    const retrying = given(at(requested, 3, 0))
      .when(at(retried, 5, 1))
      .thenView({
        status: "retrying",
        provider: "twilio",
        attempts: 1,
        lastError: "http_5xx: 502 Bad Gateway",
        nextAttemptAt: "2025-03-01T10:00:06.000Z",
        position: 5,
        revision: 1
      })
    expect(retrying?.dispatchedAt).toBeUndefined()

    const view = given(at(requested, 3, 0), at(retried, 5, 1))
      .when(at(dispatched(2, "vonage"), 9, 2))
      .thenView({ status: "dispatched", provider: "vonage", providerMessageId: "vonage-2", attempts: 2 })
    expect(view?.nextAttemptAt).toBeUndefined()
  })

  it("formats lastError as the bare reason for a retry without detail", () => {
    const bare = new SmsRetried({
      messageId,
      provider: "twilio",
      attempt: 1,
      reason: "timeout",
      nextAttemptAt: retriedUntil
    })
    given(at(requested, 3, 0))
      .when(at(bare, 5, 1))
      .thenView({ lastError: "timeout" })
  })

  it("yields no document for an unknown message whose first event is not SmsRequested", () => {
    for (const event of [dispatched(1), retried, delivered, failed]) {
      given()
        .when(at(event, 7, 1))
        .thenNoDocument()
    }
  })
})

describe("one set of status rules (statusAfter) for the decider and the status view", () => {
  const unknownReported = new SmsStatusUnknown({
    messageId,
    provider: "twilio",
    providerMessageId: "twilio-1",
    deadlineMs: 60_000,
    at: failedAt
  })
  const resubmitted = new SmsResubmitted({ messageId, by: "ops", resubmittedAt: failedAt })
  const exhausted = new SmsFailed({ messageId, reason: "retries_exhausted", permanent: true, failedAt })
  const reported = new SmsStatusReported({
    messageId,
    provider: "twilio",
    providerMessageId: "twilio-1",
    rawStatus: "sent",
    reportedAt: deliveredAt
  })
  const anyEvent = fc.constantFrom<MessageEvent>(
    requested,
    retried,
    dispatched(1),
    dispatched(2, "vonage"),
    delivered,
    failed,
    exhausted,
    unknownReported,
    resubmitted,
    reported
  )

  it("gives the view the decider's status after any sequence of events", () => {
    fc.assert(
      fc.property(fc.array(anyEvent, { maxLength: 12 }), (events) => {
        // what the decider would have appended: `SmsResubmitted` only when it may
        let state = initialState
        let view: MessageStatusView | undefined
        events.forEach((event, i) => {
          if (event._tag === "SmsResubmitted" && !canResubmit(state)) return
          state = evolve(state, event)
          view = applyEvent(view, event, { position: i + 1, revision: i })
        })
        expect(view?.status ?? "none").toBe(state.status)
      })
    )
  })
})
