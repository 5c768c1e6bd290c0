import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import { messageIdFor } from "../../src/domain/Ids.js"
import {
  decide,
  evolve,
  type Fail,
  fold,
  initialState,
  isTerminal,
  type MessageCommand,
  type MessageEvent,
  type MessageRuleViolation,
  type MessageState,
  type RecordDeliveryReport,
  type RecordDispatch,
  type ScheduleRetry,
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

// ---------------------------------------------------------------------------------------------
// Fixtures: fixed times, one message

const messageId = messageIdFor("acme", "order-42")
const t0 = new Date("2025-03-01T10:00:00.000Z")
const t1 = new Date("2025-03-01T10:00:01.000Z")
const t2 = new Date("2025-03-01T10:00:06.000Z")
const t3 = new Date("2025-03-01T10:00:07.000Z")
const t4 = new Date("2025-03-01T10:00:30.000Z")
const t5 = new Date("2025-03-01T10:05:00.000Z")

const requested = new SmsRequested({
  messageId,
  clientId: "acme",
  idempotencyKey: "order-42",
  to: Schema.decodeSync(E164)("+447911123456"),
  body: "Your code is 1234",
  encoding: "GSM-7",
  segments: 1,
  requestedAt: t0
})

const dispatch = (overrides: Partial<Omit<RecordDispatch, "_tag">> = {}): RecordDispatch => ({
  _tag: "RecordDispatch",
  provider: "twilio",
  providerMessageId: "SM-1",
  attempt: 1,
  at: t1,
  ...overrides
})

const retry = (overrides: Partial<Omit<ScheduleRetry, "_tag">> = {}): ScheduleRetry => ({
  _tag: "ScheduleRetry",
  provider: "twilio",
  attempt: 1,
  reason: "http_5xx",
  detail: "502 Bad Gateway",
  nextAttemptAt: t2,
  ...overrides
})

const report = (overrides: Partial<Omit<RecordDeliveryReport, "_tag">> = {}): RecordDeliveryReport => ({
  _tag: "RecordDeliveryReport",
  provider: "twilio",
  providerMessageId: "SM-1",
  outcome: { _tag: "Delivered" },
  rawStatus: "delivered",
  at: t4,
  ...overrides
})

const failedReport = (code?: string): RecordDeliveryReport =>
  report({
    outcome: { _tag: "Failed", reason: "undeliverable", code },
    rawStatus: "undelivered",
    at: t5
  })

const fail = (overrides: Partial<Omit<Fail, "_tag">> = {}): Fail => ({
  _tag: "Fail",
  reason: "retries_exhausted",
  permanent: true,
  provider: "twilio",
  detail: "12 attempts",
  at: t5,
  ...overrides
})

// events as the decider records them for the commands above
const dispatched = (attempt = 1, providerMessageId = "SM-1", at = t1) =>
  new SmsDispatched({ messageId, provider: "twilio", providerMessageId, attempt, dispatchedAt: at })
const retried = (attempt = 1, nextAttemptAt = t2) =>
  new SmsRetried({
    messageId,
    provider: "twilio",
    attempt,
    reason: "http_5xx",
    detail: "502 Bad Gateway",
    nextAttemptAt
  })
const delivered = new SmsDelivered({
  messageId,
  provider: "twilio",
  providerMessageId: "SM-1",
  deliveredAt: t4,
  rawStatus: "delivered"
})
const failedByDlr = new SmsFailed({
  messageId,
  reason: "undeliverable",
  permanent: true,
  provider: "twilio",
  code: "30003",
  detail: "DLR status undelivered",
  failedAt: t5
})
const failedByRetries = new SmsFailed({
  messageId,
  reason: "retries_exhausted",
  permanent: true,
  provider: "twilio",
  detail: "12 attempts",
  failedAt: t5
})

// a report after the message was final: on the record, marked with the final status it contradicts
const contradictingFailure = new SmsFailed({ ...failedByDlr, contradicts: "delivered" })
const contradictingDelivery = new SmsDelivered({ ...delivered, contradicts: "failed" })

// ---------------------------------------------------------------------------------------------
// given / when / then, on `fold` + `decide`

const given = (...history: ReadonlyArray<MessageEvent>) => ({
  when: (command: MessageCommand) => {
    const state = fold(history)
    const result = decide(command, state)
    const events = (): ReadonlyArray<MessageEvent> =>
      Either.getOrElse(result, (error) => expect.fail(`expected events, got ${error._tag}`))
    return {
      thenEmits: (...expected: ReadonlyArray<MessageEvent>) => {
        expect(expected.length).toBeGreaterThan(0)
        expect(events()).toEqual(expected)
        return fold(events(), state)
      },
      thenNothing: () => {
        expect(events()).toEqual([])
      },
      thenFails: <Tag extends MessageRuleViolation["_tag"]>(
        tag: Tag,
        fields: Partial<Omit<Extract<MessageRuleViolation, { _tag: Tag }>, "_tag">> = {}
      ) => {
        if (Either.isRight(result)) return expect.fail(`expected ${tag}, got ${result.right.length} event(s)`)
        expect(result.left._tag).toBe(tag)
        expect(result.left).toMatchObject(fields)
      }
    }
  }
})

/** the state after `history`, narrowed to a requested message */
const stateAfter = (...history: ReadonlyArray<MessageEvent>) => {
  const state: MessageState = fold(history)
  if (state.status === "none") return expect.fail("expected a requested message")
  return state
}

// ---------------------------------------------------------------------------------------------

describe("decide", () => {
  describe("Request", () => {
    it("records SmsRequested on a new message", () => {
      given().when({ _tag: "Request", event: requested }).thenEmits(requested)
    })

    it("refuses a second request for the same message", () => {
      given(requested).when({ _tag: "Request", event: requested }).thenFails("MessageAlreadyRequested", {
        messageId
      })
    })

    it("refuses a request even after the message is final", () => {
      given(requested, dispatched(), delivered)
        .when({ _tag: "Request", event: requested })
        .thenFails("MessageAlreadyRequested")
    })
  })

  describe("a message that was never requested", () => {
    const commands: ReadonlyArray<MessageCommand> = [dispatch(), retry(), report(), fail()]
    for (const command of commands) {
      it(`refuses ${command._tag} with MessageNotRequested`, () => {
        given().when(command).thenFails("MessageNotRequested", { command: command._tag })
      })
    }
  })

  describe("RecordDispatch", () => {
    it("records SmsDispatched on a requested message", () => {
      given(requested).when(dispatch()).thenEmits(dispatched())
    })

    it("records SmsDispatched on a message waiting for a retry", () => {
      given(requested, retried(1))
        .when(dispatch({ attempt: 2, providerMessageId: "SM-2", at: t3 }))
        .thenEmits(dispatched(2, "SM-2", t3))
    })

    it("records nothing once the message is dispatched (a redelivered dispatch record)", () => {
      given(requested, dispatched()).when(dispatch()).thenNothing()
      given(requested, dispatched())
        .when(dispatch({ attempt: 2, providerMessageId: "SM-2" }))
        .thenNothing()
    })

    it("records nothing once the message is delivered or failed", () => {
      given(requested, dispatched(), delivered).when(dispatch()).thenNothing()
      given(requested, failedByRetries).when(dispatch()).thenNothing()
    })
  })

  describe("ScheduleRetry", () => {
    it("records SmsRetried on a requested message", () => {
      given(requested).when(retry()).thenEmits(retried(1))
    })

    it("records the next retry while retrying, carrying the next provider", () => {
      given(requested, retried(1))
        .when(retry({ attempt: 2, nextAttemptAt: t3, nextProvider: "vonage" }))
        .thenEmits(
          new SmsRetried({
            messageId,
            provider: "twilio",
            attempt: 2,
            reason: "http_5xx",
            detail: "502 Bad Gateway",
            nextAttemptAt: t3,
            nextProvider: "vonage"
          })
        )
    })

    it("ignores a stale retry whose attempt is not above the attempts already recorded", () => {
      given(requested, retried(1))
        .when(retry({ attempt: 1 }))
        .thenNothing()
      given(requested, retried(1), retried(2, t3))
        .when(retry({ attempt: 1 }))
        .thenNothing()
      given(requested, retried(1), retried(2, t3))
        .when(retry({ attempt: 2 }))
        .thenNothing()
    })

    it("records nothing after the message was dispatched", () => {
      given(requested, dispatched())
        .when(retry({ attempt: 2 }))
        .thenNothing()
    })

    it("records nothing after the message is final", () => {
      given(requested, dispatched(), delivered)
        .when(retry({ attempt: 2 }))
        .thenNothing()
      given(requested, failedByRetries)
        .when(retry({ attempt: 2 }))
        .thenNothing()
    })
  })

  describe("RecordDeliveryReport", () => {
    it("refuses a report that arrives before the dispatch is recorded", () => {
      given(requested).when(report()).thenFails("NotYetDispatched", { messageId })
      given(requested, retried(1)).when(report()).thenFails("NotYetDispatched", { messageId })
    })

    it("refuses a report for another provider message id", () => {
      given(requested, dispatched())
        .when(report({ providerMessageId: "SM-other" }))
        .thenFails("ProviderMessageMismatch", { messageId, expected: "SM-1", received: "SM-other" })
    })

    // `toEqual` on the events below also proves that the report making the message final is unmarked
    it("records SmsDelivered for a delivered report", () => {
      const state = given(requested, dispatched()).when(report()).thenEmits(delivered)
      expect(state.status).toBe("delivered")
    })

    it("records a permanent SmsFailed with the reason and code for a failed report", () => {
      const state = given(requested, dispatched()).when(failedReport("30003")).thenEmits(failedByDlr)
      expect(state.status).toBe("failed")
    })

    it("records nothing for a duplicate delivered report", () => {
      given(requested, dispatched(), delivered).when(report()).thenNothing()
    })

    it("records nothing for a duplicate failed report", () => {
      given(requested, dispatched(), failedByDlr).when(failedReport("30003")).thenNothing()
    })

    it("records a failed report after delivered, marked as contradicting it; the status stays delivered (first terminal wins)", () => {
      const state = given(requested, dispatched(), delivered)
        .when(failedReport("30003"))
        .thenEmits(contradictingFailure)
      expect(state.status).toBe("delivered")
      expect(state.status !== "none" && state.final).toEqual(delivered)
      expect(state.status !== "none" && state.contradictedBy?.contradicts).toBe("delivered")
    })

    it("records a delivered report after failed, marked as contradicting it; the status stays failed", () => {
      const state = given(requested, dispatched(), failedByDlr)
        .when(report())
        .thenEmits(contradictingDelivery)
      expect(state.status).toBe("failed")
      expect(state.status !== "none" && state.final).toEqual(failedByDlr)
      expect(state.status !== "none" && state.contradictedBy?.contradicts).toBe("failed")
    })

    it("records only the first contradicting report: a repeat changes nothing", () => {
      given(requested, dispatched(), delivered, contradictingFailure)
        .when(failedReport("30003"))
        .thenNothing()
      given(requested, dispatched(), delivered, contradictingFailure)
        .when(failedReport("30005"))
        .thenNothing()
    })

    it("records nothing for a duplicate of the final report, before or after a contradiction", () => {
      given(requested, dispatched(), delivered).when(report()).thenNothing()
      given(requested, dispatched(), delivered, contradictingFailure).when(report()).thenNothing()
      given(requested, dispatched(), failedByDlr).when(failedReport("30003")).thenNothing()
      given(requested, dispatched(), failedByDlr, contradictingDelivery)
        .when(failedReport("30003"))
        .thenNothing()
    })
  })

  describe("Fail", () => {
    it("records SmsFailed on a requested, retrying or dispatched message", () => {
      given(requested).when(fail()).thenEmits(failedByRetries)
      given(requested, retried(1)).when(fail()).thenEmits(failedByRetries)
      given(requested, dispatched())
        .when(fail({ reason: "expired", code: "E1", detail: undefined, permanent: false }))
        .thenEmits(
          new SmsFailed({
            messageId,
            reason: "expired",
            permanent: false,
            provider: "twilio",
            code: "E1",
            failedAt: t5
          })
        )
    })

    it("records nothing once the message is final", () => {
      given(requested, dispatched(), delivered).when(fail()).thenNothing()
      given(requested, failedByRetries)
        .when(fail({ reason: "expired" }))
        .thenNothing()
    })
  })
})

describe("evolve", () => {
  it("starts from none", () => {
    expect(initialState).toEqual({ status: "none" })
    expect(fold([])).toEqual(initialState)
  })

  it("goes requested -> retrying -> dispatched -> delivered", () => {
    const history = [requested, retried(1), dispatched(2, "SM-2", t3), delivered]
    const statuses: Array<string> = []
    let state: MessageState = initialState
    for (const event of history) {
      state = evolve(state, event)
      statuses.push(state.status)
    }
    expect(statuses).toEqual(["requested", "retrying", "dispatched", "delivered"])
  })

  it("keeps the request and starts with no attempts", () => {
    const state = stateAfter(requested)
    expect(state.request).toEqual(requested)
    expect(state.attempts).toBe(0)
    expect(state.providerMessageId).toBeUndefined()
  })

  it("ignores events before the request and a second request", () => {
    expect(evolve(initialState, dispatched())).toEqual(initialState)
    const other = new SmsRequested({ ...requested, body: "another body" })
    expect(stateAfter(requested, other).request.body).toBe("Your code is 1234")
  })

  it("tracks the highest attempt, even when a stale event arrives later", () => {
    expect(stateAfter(requested, retried(1), retried(3), retried(2)).attempts).toBe(3)
    expect(stateAfter(requested, retried(1), retried(2), dispatched(3, "SM-3")).attempts).toBe(3)
    expect(stateAfter(requested, retried(4), dispatched(2, "SM-2")).attempts).toBe(4)
  })

  it("formats lastError as `reason: detail`, or the bare reason without detail", () => {
    expect(stateAfter(requested, retried(1)).lastError).toBe("http_5xx: 502 Bad Gateway")
    const bare = new SmsRetried({
      messageId,
      provider: "twilio",
      attempt: 1,
      reason: "timeout",
      nextAttemptAt: t2
    })
    expect(stateAfter(requested, bare).lastError).toBe("timeout")
  })

  it("formats a failure as `reason (code)`, or the bare reason without code", () => {
    expect(stateAfter(requested, dispatched(), failedByDlr).lastError).toBe("undeliverable (30003)")
    expect(stateAfter(requested, failedByRetries).lastError).toBe("retries_exhausted")
  })

  it("remembers the provider message id and the next provider, and clears the next provider on dispatch", () => {
    const waiting = new SmsRetried({
      messageId,
      provider: "twilio",
      attempt: 1,
      reason: "provider_unavailable",
      nextAttemptAt: t2,
      nextProvider: "vonage"
    })
    expect(stateAfter(requested, waiting).nextProvider).toBe("vonage")
    const state = stateAfter(
      requested,
      waiting,
      new SmsDispatched({
        messageId,
        provider: "vonage",
        providerMessageId: "V-9",
        attempt: 2,
        dispatchedAt: t3
      })
    )
    expect(state.nextProvider).toBeUndefined()
    expect(state.provider).toBe("vonage")
    expect(state.providerMessageId).toBe("V-9")
  })

  it("keeps the first terminal event: later events never change the status, a contradiction is noted once", () => {
    const final = stateAfter(requested, dispatched(), delivered)
    expect(final.final).toEqual(delivered)
    expect(fold([retried(5), dispatched(6, "SM-6")], final)).toEqual(final)
    const contradicted = fold([failedByDlr, retried(5), failedByRetries], final)
    expect(contradicted).toEqual({ ...final, contradictedBy: failedByDlr })
    const failed = stateAfter(requested, failedByRetries)
    expect(evolve(failed, delivered)).toEqual({ ...failed, contradictedBy: delivered })
    expect(failed.final).toEqual(failedByRetries)
  })

  it("folds a marked contradiction as an unmarked one (stored before the mark): noted once, status kept", () => {
    const final = stateAfter(requested, dispatched(), delivered)
    expect(fold([contradictingFailure], final)).toEqual({ ...final, contradictedBy: contradictingFailure })
    expect(fold([contradictingFailure, failedByDlr], final)).toEqual(fold([contradictingFailure], final))
    const failed = stateAfter(requested, dispatched(), failedByDlr)
    expect(evolve(failed, contradictingDelivery)).toEqual({
      ...failed,
      contradictedBy: contradictingDelivery
    })
  })
})

describe("Resubmit", () => {
  const resubmit = { _tag: "Resubmit", by: "ops@acme", reason: "provider fixed", at: t5 } as const
  const resubmitted = new SmsResubmitted({
    messageId,
    by: "ops@acme",
    reason: "provider fixed",
    resubmittedAt: t5
  })

  it("sends a message that ran out of retries back, on the record", () => {
    const state = given(requested, retried(1), failedByRetries).when(resubmit).thenEmits(resubmitted)
    expect(state.status).toBe("requested")
    expect(state.status !== "none" && state.attempts).toBe(1)
  })

  it("is refused for any other final or open state", () => {
    given(requested, dispatched(), delivered)
      .when(resubmit)
      .thenFails("CannotResubmit", { messageId, status: "delivered" })
    given(requested, dispatched(), failedByDlr)
      .when(resubmit)
      .thenFails("CannotResubmit", { messageId, status: "failed" })
    given(requested).when(resubmit).thenFails("CannotResubmit", { messageId, status: "requested" })
  })

  it("after a resubmission the message can be dispatched and delivered again", () => {
    given(requested, failedByRetries, resubmitted)
      .when(dispatch({ attempt: 2, providerMessageId: "SM-2" }))
      .thenEmits(dispatched(2, "SM-2"))
  })
})

describe("intermediate provider statuses", () => {
  const sent = report({ outcome: { _tag: "Pending" }, rawStatus: "sent" })
  const sentEvent = new SmsStatusReported({
    messageId,
    provider: "twilio",
    providerMessageId: "SM-1",
    rawStatus: "sent",
    reportedAt: t4
  })

  it("are recorded once each, and never change the status", () => {
    const state = given(requested, dispatched()).when(sent).thenEmits(sentEvent)
    expect(state.status).toBe("dispatched")
    given(requested, dispatched(), sentEvent).when(sent).thenNothing()
  })

  it("after a final status are still recorded, and the status stays final", () => {
    const state = given(requested, dispatched(), delivered).when(sent).thenEmits(sentEvent)
    expect(state.status).toBe("delivered")
  })

  it("need the dispatch like any report", () => {
    given(requested).when(sent).thenFails("NotYetDispatched", { messageId })
  })
})

describe("report deadline: RecordStatusUnknown", () => {
  const deadlineMs = 259_200_000
  const t6 = new Date("2025-03-04T10:00:01.000Z")
  const t7 = new Date("2025-03-04T11:00:00.000Z")
  const deadlinePassed = (providerMessageId = "SM-1"): MessageCommand => ({
    _tag: "RecordStatusUnknown",
    provider: "twilio",
    providerMessageId,
    deadlineMs,
    at: t6
  })
  const unknown = new SmsStatusUnknown({
    messageId,
    provider: "twilio",
    providerMessageId: "SM-1",
    deadlineMs,
    at: t6
  })
  const lateDelivery = report({ at: t7 })
  const lateDelivered = new SmsDelivered({ ...delivered, deliveredAt: t7 })

  it("records SmsStatusUnknown on a dispatched message still waiting for its report", () => {
    const state = given(requested, dispatched()).when(deadlinePassed()).thenEmits(unknown)
    expect(state.status).toBe("unknown")
    expect(isTerminal(state)).toBe(false)
  })

  it("records it once: a second deadline check finds the outcome already unknown", () => {
    given(requested, dispatched(), unknown).when(deadlinePassed()).thenNothing()
  })

  it("records nothing after a final report: the report came in time (unknown after delivered or failed)", () => {
    given(requested, dispatched(), delivered).when(deadlinePassed()).thenNothing()
    given(requested, dispatched(), failedByDlr).when(deadlinePassed()).thenNothing()
  })

  it("records nothing before a dispatch, or for another dispatch than the one whose deadline passed", () => {
    given(requested).when(deadlinePassed()).thenNothing()
    given(requested, retried()).when(deadlinePassed()).thenNothing()
    given(requested, dispatched(1, "SM-2")).when(deadlinePassed("SM-1")).thenNothing()
  })

  it("a late delivered report is still recorded and wins: delivered after unknown is delivered", () => {
    const state = given(requested, dispatched(), unknown).when(lateDelivery).thenEmits(lateDelivered)
    expect(state.status).toBe("delivered")
    expect(state.status !== "none" && state.final).toEqual(lateDelivered)
  })

  it("a late failed report is still recorded and wins, unmarked (it contradicts no final status)", () => {
    const state = given(requested, dispatched(), unknown).when(failedReport("30003")).thenEmits(failedByDlr)
    expect(state.status).toBe("failed")
  })

  it("an intermediate status after unknown is recorded and the outcome stays unknown", () => {
    const state = given(requested, dispatched(), unknown)
      .when(report({ outcome: { _tag: "Pending" }, rawStatus: "sent" }))
      .thenEmits(
        new SmsStatusReported({
          messageId,
          provider: "twilio",
          providerMessageId: "SM-1",
          rawStatus: "sent",
          reportedAt: t4
        })
      )
    expect(state.status).toBe("unknown")
  })

  it("evolve ignores an unknown outcome folded onto a final status (it changes nothing recorded after)", () => {
    expect(fold([requested, dispatched(), delivered, unknown]).status).toBe("delivered")
  })
})
