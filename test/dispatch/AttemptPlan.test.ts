/**
 * The provider actor's pure core as a specification: given a message (its events folded with
 * `evolve`) and a work item, when the provider answers (or before any call, or on an open circuit),
 * then the plan says what is recorded, what is queued next, what is dead-lettered, whether the
 * provider pauses, what the breaker hears, and how the work item is settled.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Either, Schema } from "effect"
import {
  type AttemptPlan,
  type OpenState,
  planAttempt,
  planBeforeCall,
  planHop
} from "../../src/dispatch/AttemptPlan.js"
import type { WorkItem } from "../../src/dispatch/WorkItem.js"
import { messageIdFor } from "../../src/domain/Ids.js"
import {
  decide,
  evolve,
  initialState,
  type MessageCommand,
  type MessageEvent,
  type MessageState,
  SmsDelivered,
  SmsDispatched,
  SmsFailed,
  SmsRequested,
  SmsResubmitted,
  SmsRetried
} from "../../src/domain/Message.js"
import { E164 } from "../../src/domain/PhoneNumber.js"
import type { SubmitResult } from "../../src/providers/ProviderAdapter.js"

// ---------------------------------------------------------------------------------------------
// Fixtures: fixed times, one message, two providers

const messageId = messageIdFor("acme", "plan-1")
const t0 = new Date("2025-03-01T10:00:00.000Z")
const t1 = new Date("2025-03-01T10:00:01.000Z")
const t2 = new Date("2025-03-01T10:00:06.000Z")
const t3 = new Date("2025-03-01T10:00:07.000Z")
const t4 = new Date("2025-03-01T10:05:00.000Z")

const requested = new SmsRequested({
  messageId,
  clientId: "acme",
  idempotencyKey: "plan-1",
  to: Schema.decodeSync(E164)("+447911123456"),
  body: "Your code is 1234",
  encoding: "GSM-7",
  segments: 1,
  requestedAt: t0
})
const requestedUntil = (validUntil: Date) => new SmsRequested({ ...requested, validUntil })

const retried = (attempt: number, nextProvider?: string, provider = "twilio") =>
  new SmsRetried({
    messageId,
    provider,
    attempt,
    reason: "http_5xx",
    detail: "502 Bad Gateway",
    nextAttemptAt: t2,
    ...(nextProvider === undefined ? {} : { nextProvider })
  })
const dispatched = (attempt = 1) =>
  new SmsDispatched({ messageId, provider: "twilio", providerMessageId: "SM-1", attempt, dispatchedAt: t1 })
const delivered = new SmsDelivered({
  messageId,
  provider: "twilio",
  providerMessageId: "SM-1",
  deliveredAt: t4,
  rawStatus: "delivered"
})
const exhausted = new SmsFailed({
  messageId,
  reason: "retries_exhausted",
  permanent: true,
  provider: "twilio",
  detail: "12 attempts",
  failedAt: t4
})
const resubmitted = new SmsResubmitted({ messageId, by: "ops", resubmittedAt: t4 })

const workOn = (provider: string, priorAttempts = 0): WorkItem => ({ messageId, provider, priorAttempts })

// provider answers
const accepted = (providerMessageId = "SM-1"): SubmitResult => ({ _tag: "Accepted", providerMessageId })
const permanent = (reason: "invalid_number" | "rejected", code: string, detail: string): SubmitResult => ({
  _tag: "Permanent",
  reason,
  code,
  detail
})
const timeout: SubmitResult = { _tag: "Transient", reason: "timeout", detail: "no answer within 10000 ms" }
const http5xx = (retryAfterMs?: number): SubmitResult => ({
  _tag: "Transient",
  reason: "http_5xx",
  detail: "503 Service Unavailable",
  ...(retryAfterMs === undefined ? {} : { retryAfterMs })
})
const network: SubmitResult = { _tag: "Transient", reason: "network", detail: "ECONNREFUSED" }
const throttled = (retryAfterMs?: number): SubmitResult => ({
  _tag: "Transient",
  reason: "throttled",
  detail: "429 Too Many Requests",
  ...(retryAfterMs === undefined ? {} : { retryAfterMs })
})

const plusMs = (date: Date, ms: number) => new Date(date.getTime() + ms)

// ---------------------------------------------------------------------------------------------
// A plan compared as a whole: every field the expectation does not name must be absent

type VerdictShape =
  | { readonly _tag: "Ack" }
  | { readonly _tag: "Nak"; readonly delayMs: number }
  | { readonly _tag: "Term"; readonly reason: unknown }

interface PlanShape {
  readonly command?: MessageCommand
  readonly next?: { readonly provider: string; readonly priorAttempts: number }
  readonly deadLetter?: { readonly attempts: number; readonly detail: string }
  readonly throttleMs?: number
  readonly providerAnswered?: boolean
  readonly indexProviderMessageId?: string
  readonly verdict: VerdictShape
}

const shapeOf = (plan: AttemptPlan): PlanShape => ({
  command: plan.command,
  next: plan.next,
  deadLetter: plan.deadLetter,
  throttleMs: plan.throttle === undefined ? undefined : Duration.toMillis(plan.throttle),
  providerAnswered: plan.providerAnswered,
  indexProviderMessageId: plan.indexProviderMessageId,
  verdict:
    plan.verdict._tag === "Nak"
      ? { _tag: "Nak", delayMs: Duration.toMillis(plan.verdict.delay) }
      : plan.verdict._tag === "Term"
        ? { _tag: "Term", reason: plan.verdict.reason }
        : { _tag: "Ack" }
})

const absent = {
  command: undefined,
  next: undefined,
  deadLetter: undefined,
  throttleMs: undefined,
  providerAnswered: undefined,
  indexProviderMessageId: undefined
}

const Ack: VerdictShape = { _tag: "Ack" }
const Nak = (delayMs: number): VerdictShape => ({ _tag: "Nak", delayMs })

const expecting = (plan: AttemptPlan | undefined) => ({
  thenPlans: (expected: PlanShape) => {
    if (plan === undefined) return expect.fail("expected a plan, got undefined (call the provider)")
    expect(shapeOf(plan)).toEqual({ ...absent, ...expected })
    return plan
  },
  thenCallsTheProvider: () => {
    expect(plan).toBeUndefined()
  }
})

const open = (state: MessageState): OpenState => {
  if (state.status === "none") return expect.fail("expected a requested message")
  return state
}

interface AnswerContext {
  readonly work?: WorkItem
  readonly attempt?: number
  readonly at?: Date
  /** the schedule's next delay; `"exhausted"` when it ran out */
  readonly retryDelay?: Duration.Duration | "exhausted"
  readonly failover?: string
  readonly echoesReference?: boolean
}

// ---------------------------------------------------------------------------------------------
// given / when / then

const given = (...history: ReadonlyArray<MessageEvent>) => {
  const state = history.reduce(evolve, initialState)
  return {
    state,
    /** planBeforeCall: the item arrives at `now` */
    whenWorkArrives: (work: WorkItem, now: Date = t3) => expecting(planBeforeCall(state, work, now)),
    /** planHop: the circuit is open, `next` is healthy, `attempts` calls were made */
    whenCircuitOpen: (work: WorkItem, next: string, attempts: number, at: Date = t3) =>
      expecting(planHop(open(state), work, next, attempts, at)),
    /** planAttempt: the provider answered */
    whenProviderAnswers: (answer: SubmitResult, context: AnswerContext = {}) => {
      const work = context.work ?? workOn("twilio")
      const delay = context.retryDelay ?? Duration.seconds(5)
      return expecting(
        planAttempt({
          state: open(state),
          work,
          attempt: context.attempt ?? open(state).attempts + 1,
          answer,
          at: context.at ?? t3,
          retryDelay: delay === "exhausted" ? undefined : delay,
          failover: context.failover ?? work.provider,
          echoesReference: context.echoesReference ?? true
        })
      )
    }
  }
}

// ---------------------------------------------------------------------------------------------

describe("planBeforeCall", () => {
  it("terms a work item for a message that was never requested", () => {
    given()
      .whenWorkArrives(workOn("twilio"))
      .thenPlans({ verdict: { _tag: "Term", reason: expect.stringContaining(messageId) } })
  })

  it("acks without a call or a command once the message is dispatched (idempotent dispatch)", () => {
    given(requested, dispatched()).whenWorkArrives(workOn("twilio")).thenPlans({ verdict: Ack })
  })

  it("acks without a call or a command once the message is delivered or failed", () => {
    given(requested, dispatched(), delivered).whenWorkArrives(workOn("twilio")).thenPlans({ verdict: Ack })
    given(requested, exhausted).whenWorkArrives(workOn("twilio")).thenPlans({ verdict: Ack })
  })

  it("a failover recorded after the item was queued: ack, and queue the message on the next provider", () => {
    given(requested, retried(1, "vonage"))
      .whenWorkArrives(workOn("twilio"))
      .thenPlans({ next: { provider: "vonage", priorAttempts: 1 }, verdict: Ack })
  })

  it("the next provider carries every attempt recorded so far", () => {
    given(requested, retried(1), retried(2), retried(3, "vonage"))
      .whenWorkArrives(workOn("twilio", 0))
      .thenPlans({ next: { provider: "vonage", priorAttempts: 3 }, verdict: Ack })
  })

  it("calls the provider the failover named", () => {
    given(requested, retried(1, "vonage")).whenWorkArrives(workOn("vonage", 1)).thenCallsTheProvider()
  })

  it("calls the provider for a requested message, or one waiting to retry on the same provider", () => {
    given(requested).whenWorkArrives(workOn("twilio")).thenCallsTheProvider()
    given(requested, retried(1)).whenWorkArrives(workOn("twilio")).thenCallsTheProvider()
  })

  it("calls the provider again for a resubmitted message", () => {
    given(requested, exhausted, resubmitted).whenWorkArrives(workOn("twilio")).thenCallsTheProvider()
  })

  it("fails a message past its validUntil as expired, unsent", () => {
    given(requestedUntil(t2))
      .whenWorkArrives(workOn("twilio"), t3)
      .thenPlans({
        command: { _tag: "Fail", reason: "expired", permanent: true, detail: "validUntil passed", at: t3 },
        verdict: Ack
      })
  })

  it("validUntil is exclusive: a message is expired at that very instant, not a millisecond before", () => {
    given(requestedUntil(t3))
      .whenWorkArrives(workOn("twilio"), t3)
      .thenPlans({
        command: { _tag: "Fail", reason: "expired", permanent: true, detail: "validUntil passed", at: t3 },
        verdict: Ack
      })
    given(requestedUntil(t3)).whenWorkArrives(workOn("twilio"), plusMs(t3, -1)).thenCallsTheProvider()
  })

  it("fails an expired message that was waiting for a retry", () => {
    given(requestedUntil(t2), retried(1))
      .whenWorkArrives(workOn("twilio"), t3)
      .thenPlans({
        command: { _tag: "Fail", reason: "expired", permanent: true, detail: "validUntil passed", at: t3 },
        verdict: Ack
      })
  })

  it("an expired message that moved to another provider is that provider's to fail", () => {
    given(requestedUntil(t2), retried(1, "vonage"))
      .whenWorkArrives(workOn("twilio"), t3)
      .thenPlans({ next: { provider: "vonage", priorAttempts: 1 }, verdict: Ack })
  })

  it("never fails a final message as expired", () => {
    given(requestedUntil(t2), dispatched(), delivered)
      .whenWorkArrives(workOn("twilio"), t4)
      .thenPlans({ verdict: Ack })
  })
})

describe("planHop (circuit open, another provider healthy)", () => {
  it("records nothing when no call was made since the last recorded attempt", () => {
    given(requested)
      .whenCircuitOpen(workOn("twilio"), "vonage", 0)
      .thenPlans({
        next: { provider: "vonage", priorAttempts: 0 },
        verdict: Ack
      })
    given(requested, retried(2))
      .whenCircuitOpen(workOn("twilio"), "vonage", 2)
      .thenPlans({
        next: { provider: "vonage", priorAttempts: 2 },
        verdict: Ack
      })
  })

  it("records nothing for a stale attempt count below the recorded one", () => {
    given(requested, retried(3))
      .whenCircuitOpen(workOn("twilio"), "vonage", 2)
      .thenPlans({
        next: { provider: "vonage", priorAttempts: 2 },
        verdict: Ack
      })
  })

  it("records the hop as a retry naming the next provider when a call was made and never recorded", () => {
    given(requested, retried(1))
      .whenCircuitOpen(workOn("twilio"), "vonage", 2, t3)
      .thenPlans({
        command: {
          _tag: "ScheduleRetry",
          provider: "twilio",
          attempt: 2,
          reason: "provider_unavailable",
          detail: "circuit open",
          nextAttemptAt: t3,
          nextProvider: "vonage"
        },
        next: { provider: "vonage", priorAttempts: 2 },
        verdict: Ack
      })
  })

  it("the recorded hop is an event the decider accepts, and it points the stream at the next provider", () => {
    const state = open(given(requested).state)
    const plan = planHop(state, workOn("twilio"), "vonage", 1, t3)
    const command = plan.command ?? expect.fail("expected a command")
    const events = Either.getOrElse(decide(command, state), (e) => expect.fail(e._tag))
    expect(events).toHaveLength(1)
    const after = open(events.reduce(evolve, state))
    expect(after).toMatchObject({ status: "retrying", attempts: 1, nextProvider: "vonage" })
  })
})

describe("planAttempt", () => {
  describe("Accepted", () => {
    it("records the dispatch with the provider's message id; the breaker hears an answer", () => {
      given(requested)
        .whenProviderAnswers(accepted("SM-77"), { attempt: 1, at: t1 })
        .thenPlans({
          command: {
            _tag: "RecordDispatch",
            provider: "twilio",
            providerMessageId: "SM-77",
            attempt: 1,
            at: t1
          },
          providerAnswered: true,
          verdict: Ack
        })
    })

    it("records the attempt number it was given, after earlier retries", () => {
      given(requested, retried(1), retried(2))
        .whenProviderAnswers(accepted(), { attempt: 3 })
        .thenPlans({
          command: {
            _tag: "RecordDispatch",
            provider: "twilio",
            providerMessageId: "SM-1",
            attempt: 3,
            at: t3
          },
          providerAnswered: true,
          verdict: Ack
        })
    })

    it("indexes the provider's message id only when the provider does not echo our reference", () => {
      given(requested)
        .whenProviderAnswers(accepted("SM-9"), { echoesReference: false })
        .thenPlans({
          command: {
            _tag: "RecordDispatch",
            provider: "twilio",
            providerMessageId: "SM-9",
            attempt: 1,
            at: t3
          },
          indexProviderMessageId: "SM-9",
          providerAnswered: true,
          verdict: Ack
        })
    })

    it("is recorded even when the schedule ran out or another provider would take a failure", () => {
      given(requested)
        .whenProviderAnswers(accepted(), { retryDelay: "exhausted", failover: "vonage" })
        .thenPlans({
          command: {
            _tag: "RecordDispatch",
            provider: "twilio",
            providerMessageId: "SM-1",
            attempt: 1,
            at: t3
          },
          providerAnswered: true,
          verdict: Ack
        })
    })
  })

  describe("Permanent", () => {
    it("fails the message at once with the provider's reason and code; the provider is healthy", () => {
      given(requested)
        .whenProviderAnswers(permanent("invalid_number", "21211", "not a mobile number"))
        .thenPlans({
          command: {
            _tag: "Fail",
            reason: "invalid_number",
            permanent: true,
            provider: "twilio",
            code: "21211",
            detail: "not a mobile number",
            at: t3
          },
          providerAnswered: true,
          verdict: Ack
        })
    })

    it("is never retried nor moved, nor dead-lettered, whatever the schedule and the failover", () => {
      given(requested, retried(1))
        .whenProviderAnswers(permanent("rejected", "auth", "401 Unauthorized"), {
          retryDelay: "exhausted",
          failover: "vonage"
        })
        .thenPlans({
          command: {
            _tag: "Fail",
            reason: "rejected",
            permanent: true,
            provider: "twilio",
            code: "auth",
            detail: "401 Unauthorized",
            at: t3
          },
          providerAnswered: true,
          verdict: Ack
        })
    })
  })

  describe("Transient, no other provider healthy: wait on this one", () => {
    it("a timeout: retry after the schedule's delay, carried by a nak; the breaker counts a failure", () => {
      given(requested)
        .whenProviderAnswers(timeout, { retryDelay: Duration.seconds(5), at: t3 })
        .thenPlans({
          command: {
            _tag: "ScheduleRetry",
            provider: "twilio",
            attempt: 1,
            reason: "timeout",
            detail: "no answer within 10000 ms",
            nextAttemptAt: plusMs(t3, 5000)
          },
          providerAnswered: false,
          verdict: Nak(5000)
        })
    })

    it("a 5xx without Retry-After: the schedule's delay", () => {
      given(requested, retried(1))
        .whenProviderAnswers(http5xx(), { attempt: 2, retryDelay: Duration.seconds(10) })
        .thenPlans({
          command: {
            _tag: "ScheduleRetry",
            provider: "twilio",
            attempt: 2,
            reason: "http_5xx",
            detail: "503 Service Unavailable",
            nextAttemptAt: plusMs(t3, 10_000)
          },
          providerAnswered: false,
          verdict: Nak(10_000)
        })
    })

    it("a 5xx with a Retry-After longer than the schedule: the Retry-After", () => {
      given(requested)
        .whenProviderAnswers(http5xx(30_000), { retryDelay: Duration.seconds(5) })
        .thenPlans({
          command: {
            _tag: "ScheduleRetry",
            provider: "twilio",
            attempt: 1,
            reason: "http_5xx",
            detail: "503 Service Unavailable",
            nextAttemptAt: plusMs(t3, 30_000)
          },
          providerAnswered: false,
          verdict: Nak(30_000)
        })
    })

    it("a 5xx with a Retry-After shorter than the schedule: the schedule", () => {
      given(requested)
        .whenProviderAnswers(http5xx(2_000), { retryDelay: Duration.seconds(5) })
        .thenPlans({
          command: {
            _tag: "ScheduleRetry",
            provider: "twilio",
            attempt: 1,
            reason: "http_5xx",
            detail: "503 Service Unavailable",
            nextAttemptAt: plusMs(t3, 5_000)
          },
          providerAnswered: false,
          verdict: Nak(5_000)
        })
    })

    it("a network error: the schedule's delay; the breaker counts a failure", () => {
      given(requested)
        .whenProviderAnswers(network, { retryDelay: Duration.millis(4_321) })
        .thenPlans({
          command: {
            _tag: "ScheduleRetry",
            provider: "twilio",
            attempt: 1,
            reason: "network",
            detail: "ECONNREFUSED",
            nextAttemptAt: plusMs(t3, 4_321)
          },
          providerAnswered: false,
          verdict: Nak(4_321)
        })
    })
  })

  describe("Transient, another provider healthy: failover at once", () => {
    it("records the hop naming the next provider, queues the message there and acks this item", () => {
      given(requested)
        .whenProviderAnswers(network, { failover: "vonage", at: t3 })
        .thenPlans({
          command: {
            _tag: "ScheduleRetry",
            provider: "twilio",
            attempt: 1,
            reason: "network",
            detail: "ECONNREFUSED",
            nextAttemptAt: t3,
            nextProvider: "vonage"
          },
          next: { provider: "vonage", priorAttempts: 1 },
          providerAnswered: false,
          verdict: Ack
        })
    })

    it("the next provider carries this attempt: a 5xx on the third attempt hands over 3", () => {
      given(requested, retried(1), retried(2))
        .whenProviderAnswers(http5xx(60_000), { attempt: 3, failover: "vonage" })
        .thenPlans({
          command: {
            _tag: "ScheduleRetry",
            provider: "twilio",
            attempt: 3,
            reason: "http_5xx",
            detail: "503 Service Unavailable",
            nextAttemptAt: t3,
            nextProvider: "vonage"
          },
          next: { provider: "vonage", priorAttempts: 3 },
          providerAnswered: false,
          verdict: Ack
        })
    })

    it("once recorded, an item redelivered on the old provider follows the message to the new one", () => {
      const state = open(given(requested).state)
      const plan = planAttempt({
        state,
        work: workOn("twilio"),
        attempt: 1,
        answer: timeout,
        at: t3,
        retryDelay: Duration.seconds(5),
        failover: "vonage",
        echoesReference: true
      })
      const command = plan.command ?? expect.fail("expected a command")
      const after = Either.getOrElse(decide(command, state), (e) => expect.fail(e._tag)).reduce(evolve, state)
      expecting(planBeforeCall(after, workOn("twilio"), t3)).thenPlans({
        next: { provider: "vonage", priorAttempts: 1 },
        verdict: Ack
      })
      expecting(planBeforeCall(after, workOn("vonage", 1), t3)).thenCallsTheProvider()
    })
  })

  describe("Throttled (429): the provider pauses as a whole", () => {
    it("with Retry-After: pause that long, retry here afterwards; a 429 is an answer for the breaker", () => {
      given(requested)
        .whenProviderAnswers(throttled(7_000), { retryDelay: Duration.seconds(5) })
        .thenPlans({
          command: {
            _tag: "ScheduleRetry",
            provider: "twilio",
            attempt: 1,
            reason: "throttled",
            detail: "429 Too Many Requests",
            nextAttemptAt: plusMs(t3, 7_000)
          },
          throttleMs: 7_000,
          providerAnswered: true,
          verdict: Nak(7_000)
        })
    })

    it("without Retry-After: a one-second pause", () => {
      given(requested)
        .whenProviderAnswers(throttled(), { retryDelay: Duration.seconds(5) })
        .thenPlans({
          command: {
            _tag: "ScheduleRetry",
            provider: "twilio",
            attempt: 1,
            reason: "throttled",
            detail: "429 Too Many Requests",
            nextAttemptAt: plusMs(t3, 1_000)
          },
          throttleMs: 1_000,
          providerAnswered: true,
          verdict: Nak(1_000)
        })
    })

    it("stays on this provider even when another one is healthy (it is about the provider, not the message)", () => {
      given(requested)
        .whenProviderAnswers(throttled(2_000), { failover: "vonage" })
        .thenPlans({
          command: {
            _tag: "ScheduleRetry",
            provider: "twilio",
            attempt: 1,
            reason: "throttled",
            detail: "429 Too Many Requests",
            nextAttemptAt: plusMs(t3, 2_000)
          },
          throttleMs: 2_000,
          providerAnswered: true,
          verdict: Nak(2_000)
        })
    })
  })

  describe("the schedule ran out", () => {
    it("fails with retries_exhausted and dead-letters the message; the breaker counts the failure", () => {
      given(requested, retried(1), retried(2))
        .whenProviderAnswers(timeout, { attempt: 3, retryDelay: "exhausted" })
        .thenPlans({
          command: {
            _tag: "Fail",
            reason: "retries_exhausted",
            permanent: true,
            provider: "twilio",
            detail: "3 attempts, last: timeout no answer within 10000 ms",
            at: t3
          },
          deadLetter: { attempts: 3, detail: "timeout: no answer within 10000 ms" },
          providerAnswered: false,
          verdict: Ack
        })
    })

    it("fails even when another provider is healthy: the schedule is the message's budget", () => {
      given(requested)
        .whenProviderAnswers(http5xx(1_000), { retryDelay: "exhausted", failover: "vonage" })
        .thenPlans({
          command: {
            _tag: "Fail",
            reason: "retries_exhausted",
            permanent: true,
            provider: "twilio",
            detail: "1 attempts, last: http_5xx 503 Service Unavailable",
            at: t3
          },
          deadLetter: { attempts: 1, detail: "http_5xx: 503 Service Unavailable" },
          providerAnswered: false,
          verdict: Ack
        })
    })

    it("a 429 as the last answer: failed and dead-lettered, and still an answer for the breaker", () => {
      given(requested, retried(1))
        .whenProviderAnswers(throttled(3_000), { attempt: 2, retryDelay: "exhausted" })
        .thenPlans({
          command: {
            _tag: "Fail",
            reason: "retries_exhausted",
            permanent: true,
            provider: "twilio",
            detail: "2 attempts, last: throttled 429 Too Many Requests",
            at: t3
          },
          deadLetter: { attempts: 2, detail: "throttled: 429 Too Many Requests" },
          providerAnswered: true,
          verdict: Ack
        })
    })
  })

  describe("the breaker's verdict", () => {
    const answers: ReadonlyArray<readonly [string, SubmitResult, boolean]> = [
      ["accepted", accepted(), true],
      ["permanent", permanent("invalid_number", "21211", "bad"), true],
      ["throttled", throttled(1_000), true],
      ["timeout", timeout, false],
      ["http_5xx", http5xx(), false],
      ["network", network, false],
      ["provider_unavailable", { _tag: "Transient", reason: "provider_unavailable", detail: "404" }, false]
    ]
    for (const [name, answer, up] of answers) {
      it(`${name}: providerAnswered is ${up}, with or without a schedule, with or without failover`, () => {
        for (const retryDelay of [Duration.seconds(1), "exhausted"] as const) {
          for (const failover of ["twilio", "vonage"]) {
            const plan = planAttempt({
              state: open(given(requested).state),
              work: workOn("twilio"),
              attempt: 1,
              answer,
              at: t3,
              retryDelay: retryDelay === "exhausted" ? undefined : retryDelay,
              failover,
              echoesReference: true
            })
            expect(plan.providerAnswered).toBe(up)
          }
        }
      })
    }
  })
})
