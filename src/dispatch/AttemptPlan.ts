/**
 * The provider actor's pure core. Given the message's state, its work item and what happened (the
 * provider's answer, the retry schedule's next delay, where failover would go), it returns a plan:
 * the command to record, the follow-up work item, a dead letter, a pause of the provider, the
 * breaker's verdict and the work item's own verdict. The actor loads, calls, and applies the plan.
 */
import { Duration } from "effect"
import type { MessageCommand, MessageState, RetryReason } from "../domain/Message.js"
import type { SubmitResult } from "../providers/ProviderAdapter.js"
import { ack, Verdict } from "../nats/JetStreamWorker.js"
import type { WorkItem } from "./WorkItem.js"

export type OpenState = Exclude<MessageState, { status: "none" }>

export interface AttemptPlan {
  /** recorded in the message stream before anything else of the plan */
  readonly command?: MessageCommand
  /** queued after the command is recorded, fresh at the revision it wrote */
  readonly next?: { readonly provider: string; readonly priorAttempts: number }
  readonly deadLetter?: { readonly attempts: number; readonly detail: string }
  /** a 429: the provider as a whole pauses this long */
  readonly throttle?: Duration.Duration
  /** the breaker's verdict on this call: any answer shows the provider up; transport errors and 5xx do not */
  readonly providerAnswered?: boolean
  /** the provider's message id, when the provider cannot echo our reference (delivery reports need an index) */
  readonly indexProviderMessageId?: string
  readonly verdict: Verdict
}

/** Why the actor does not call the provider for this item, or undefined when it should. */
export const planBeforeCall = (state: MessageState, work: WorkItem, now: Date): AttemptPlan | undefined => {
  if (state.status === "none")
    return { verdict: Verdict.Term({ reason: `work item for unknown message ${work.messageId}` }) }
  if (state.status !== "requested" && state.status !== "retrying") return { verdict: ack }
  // a failover was recorded after this item was queued: the message belongs to the next provider now
  if (
    state.status === "retrying" &&
    state.nextProvider !== undefined &&
    state.nextProvider !== work.provider
  ) {
    return { next: { provider: state.nextProvider, priorAttempts: state.attempts }, verdict: ack }
  }
  if (state.request.validUntil !== undefined && state.request.validUntil.getTime() <= now.getTime()) {
    return {
      command: { _tag: "Fail", reason: "expired", permanent: true, detail: "validUntil passed", at: now },
      verdict: ack
    }
  }
  return undefined
}

const retryCommand = (
  provider: string,
  attempt: number,
  reason: RetryReason,
  detail: string,
  nextAttemptAt: Date,
  nextProvider?: string
): MessageCommand => ({
  _tag: "ScheduleRetry",
  provider,
  attempt,
  reason,
  detail,
  nextAttemptAt,
  nextProvider
})

/** Failover without a call (the circuit is open): not an attempt, unless one was made before. */
export const planHop = (
  state: OpenState,
  work: WorkItem,
  next: string,
  attempts: number,
  at: Date
): AttemptPlan => ({
  // the retry event needs a fresh attempt number; a hop that made no new call records nothing
  ...(attempts > state.attempts
    ? { command: retryCommand(work.provider, attempts, "provider_unavailable", "circuit open", at, next) }
    : {}),
  next: { provider: next, priorAttempts: attempts },
  verdict: ack
})

export interface AttemptInput {
  readonly state: OpenState
  readonly work: WorkItem
  /** this call's attempt number */
  readonly attempt: number
  readonly answer: SubmitResult
  readonly at: Date
  /** the provider's schedule: the delay before the next try; undefined when it ran out */
  readonly retryDelay: Duration.Duration | undefined
  /** where a transient failure goes: another healthy provider, or this one */
  readonly failover: string
  /** the provider echoes our reference in its delivery reports */
  readonly echoesReference: boolean
}

/** What a provider's answer leads to. */
export const planAttempt = (input: AttemptInput): AttemptPlan => {
  const { answer, at, attempt, work } = input
  const provider = work.provider
  const providerAnswered = answer._tag !== "Transient" || answer.reason === "throttled"
  switch (answer._tag) {
    case "Accepted":
      return {
        command: {
          _tag: "RecordDispatch",
          provider,
          providerMessageId: answer.providerMessageId,
          attempt,
          at
        },
        ...(input.echoesReference ? {} : { indexProviderMessageId: answer.providerMessageId }),
        providerAnswered,
        verdict: ack
      }
    case "Permanent":
      // the provider answered: it is healthy, the message is not
      return {
        command: {
          _tag: "Fail",
          reason: answer.reason,
          permanent: true,
          provider,
          code: answer.code,
          detail: answer.detail,
          at
        },
        providerAnswered,
        verdict: ack
      }
    case "Transient": {
      if (input.retryDelay === undefined) {
        return {
          command: {
            _tag: "Fail",
            reason: "retries_exhausted",
            permanent: true,
            provider,
            detail: `${attempt} attempts, last: ${answer.reason} ${answer.detail}`,
            at
          },
          deadLetter: { attempts: attempt, detail: `${answer.reason}: ${answer.detail}` },
          providerAnswered,
          verdict: ack
        }
      }
      /** a retry on this provider after `delay`, the work item coming back then */
      const retryHere = (delay: Duration.Duration, throttle?: Duration.Duration): AttemptPlan => ({
        command: retryCommand(
          provider,
          attempt,
          answer.reason,
          answer.detail,
          new Date(at.getTime() + Duration.toMillis(delay))
        ),
        ...(throttle === undefined ? {} : { throttle }),
        providerAnswered,
        verdict: Verdict.Nak({ delay })
      })
      if (answer.reason === "throttled") {
        // a 429 is about the provider, not the message: pause it as a whole, retry here afterwards
        const pause = Duration.millis(answer.retryAfterMs ?? 1000)
        return retryHere(pause, pause)
      }
      if (input.failover !== provider) {
        return {
          command: retryCommand(provider, attempt, answer.reason, answer.detail, at, input.failover),
          next: { provider: input.failover, priorAttempts: attempt },
          providerAnswered,
          verdict: ack
        }
      }
      return retryHere(
        answer.retryAfterMs === undefined
          ? input.retryDelay
          : Duration.max(input.retryDelay, Duration.millis(answer.retryAfterMs))
      )
    }
  }
}
