/**
 * One actor per provider: consumes `sms.work.<provider>`, calls the provider, and records the
 * outcome in the message stream before settling the work item.
 *
 * - Dispatch is idempotent: a fresh work item's snapshot is used on its surely first delivery
 *   (`FirstDeliveries`) or when its stream's last revision is still the item's (see `WorkItem`); any
 *   other item is checked against the stream first. A
 *   message already dispatched or finished is acked without a call. Only a crash between the
 *   provider's answer and the append of `SmsDispatched` can cause a second submission, and the
 *   history shows it (two attempts), and the call journal holds every call before it is made.
 * - A transient failure moves the message to another healthy provider at once (failover: a new
 *   work item, the hop recorded as `SmsRetried` naming `nextProvider`); with no other provider it
 *   waits on this one, the delay carried by JetStream (`nak(delay)`).
 * - A 429 pauses this provider as a whole for its `Retry-After`; an open circuit sends work elsewhere.
 * - When the provider's schedule runs out: `SmsFailed(retries_exhausted)` and a dead letter.
 *
 * What each answer leads to is decided by the pure `AttemptPlan`; this module loads, calls, applies.
 *
 * Its size (over 400 lines) is the actor's one batch: load, admit, call, apply the plan (pure, in
 * `AttemptPlan.ts`), follow up; the steps share the batch's items.
 */
import type { JsMsg } from "@nats-io/jetstream"
import { Clock, Duration, Effect, Either, Layer, Option } from "effect"
import type { MessageId } from "../domain/Ids.js"
import type { MessageState } from "../domain/Message.js"
import { messageStream } from "../domain/StreamName.js"
import { EventStore } from "../eventstore/EventStore.js"
import { deliveryReportUrl, PublicUrl } from "../platform/PublicUrl.js"
import { Streams, Subjects } from "../nats/Topology.js"
import { infoEnabled, logMessageEvents, type RecordedMessage } from "../observability/Logger.js"
import * as Metrics from "../observability/Metrics.js"
import { recordSpan, traceparentOf, tracing } from "../observability/Tracing.js"
import { recordProviderMessage } from "../projections/ProviderIndex.js"
import type { SubmitResult } from "../providers/ProviderAdapter.js"
import type { ConfiguredProvider } from "../providers/Providers.js"
import { Providers } from "../providers/Providers.js"
import { type AttemptPlan, planAttempt, planBeforeCall, planHop } from "./AttemptPlan.js"
import type { Loaded } from "../platform/CommandHandler.js"
import { DeadLetter, publishDeadLetter } from "./DeadLetters.js"
import { eachAtOnce } from "../platform/AtOnce.js"
import { journalCalls } from "./CallJournal.js"
import { type CallLedger, makeCallLedger } from "./CallLedger.js"
import { type FirstDeliveries, makeFirstDeliveries } from "./FirstDeliveries.js"
import { ack, runBatchWorker, Verdict } from "../nats/JetStreamWorker.js"
import { MessageCache } from "../messages/MessageCache.js"
import { execute, executeMany, load } from "../messages/MessageRepository.js"
import { ProviderHealth } from "./ProviderHealth.js"
import { delayBeforeRetry, scheduleFor } from "./RetrySchedules.js"
import { routeFailover } from "./Router.js"
import {
  decodeWorkItem,
  type FreshSnapshot,
  publishWorkItems,
  type WorkItem,
  type WorkOrigin
} from "./WorkItem.js"

/** Deliveries of one work item before it is given up as poison (handler failures, not retries). */
export const MAX_DELIVERIES = 30
/** How often a message held by an open circuit looks again, and tells JetStream it is still in hand. */
const CIRCUIT_POLL_MS = 100
const KEEP_ALIVE_MS = 10_000

type Open = Exclude<MessageState, { status: "none" }>

/** One work item of a batch, on its way through the plan. */
interface Item {
  readonly index: number
  readonly msg: JsMsg
  readonly work: WorkItem
  loaded?: Loaded<MessageState>
  plan?: AttemptPlan
}

/** An item the provider is to be called for. */
interface Call {
  readonly item: Item
  readonly state: Open
  readonly attempt: number
  /** set as the call starts: from then on its outcome must be recorded (see `CallLedger`) */
  called: boolean
}

/** The state a fresh item carries (see `WorkItem`), true while its stream is still at its revision. */
const snapshotState = (fresh: FreshSnapshot, work: WorkItem): Loaded<MessageState> => ({
  state: {
    status: fresh.status,
    request: fresh.request,
    attempts: work.priorAttempts,
    ...(fresh.status === "retrying" ? { nextProvider: work.provider } : {})
  },
  revision: fresh.revision
})

const echoesReference = (provider: ConfiguredProvider) =>
  provider.config.type !== "generic-http" || provider.config.echoesReference

/** What the provider actors of one process share: the calls in flight, the trust in first deliveries. */
interface Own {
  readonly ledger: CallLedger
  readonly firstDeliveries: FirstDeliveries
}

/**
 * One batch of work items: decode, load the few that cannot prove their state, call the provider
 * for every callable item at once, plan each answer with `planAttempt`, record every plan's command
 * in one `appendMany`, then queue follow-ups and settle each item by its own plan.
 */
const handleWork = (provider: ConfiguredProvider, own: Own) => (messages: ReadonlyArray<JsMsg>) => {
  const { ledger, firstDeliveries } = own
  // the batch's calls, and which of their outcomes were recorded: the ledger hears of each at the
  // end, however the batch ends
  const calls: Array<Call> = []
  const recorded = new Set<Item>()
  const endCalls = Effect.sync(() => {
    for (const call of calls) {
      ledger.end(call.item.work.messageId, {
        ...(call.called ? { called: call.attempt } : {}),
        recorded: recorded.has(call.item)
      })
    }
  })
  return Effect.gen(function* () {
    const providerId = provider.config.id
    const health = yield* ProviderHealth
    const store = yield* EventStore
    const cache = yield* Effect.serviceOption(MessageCache)
    const verdicts: Array<Verdict> = messages.map(() => ack)
    const items: Array<Item> = []
    messages.forEach((msg, index) => {
      const work = decodeWorkItem(msg.string())
      if (work === undefined) verdicts[index] = Verdict.Term({ reason: "malformed work item" })
      else items.push({ index, msg, work })
    })

    // A fresh item's snapshot is the message's state when its stream is still at the item's revision.
    // Its surely first delivery proves it (`FirstDeliveries`: nothing but this item moves a stream
    // before its dispatch); otherwise one look at each stream's last revision, all at once, does.
    // Anything else reads its stream before any call.
    const fresh: Array<{ readonly item: Item; readonly snapshot: FreshSnapshot }> = []
    for (const item of items) {
      const snapshot = item.work.fresh
      if (snapshot === undefined) continue
      if (firstDeliveries.surelyFirst(item.msg)) item.loaded = snapshotState(snapshot, item.work)
      else fresh.push({ item, snapshot })
    }
    if (fresh.length > 0) {
      const heads = yield* Effect.either(
        store.lastRevisions(fresh.map(({ item }) => messageStream(item.work.messageId)))
      )
      if (Either.isRight(heads)) {
        fresh.forEach(({ item, snapshot }, i) => {
          if (heads.right[i] === snapshot.revision) item.loaded = snapshotState(snapshot, item.work)
        })
      }
    }
    yield* eachAtOnce(
      items.filter((item) => item.loaded === undefined),
      (item) =>
        Effect.matchEffect(load(item.work.messageId), {
          onFailure: (error) => {
            item.plan = { verdict: Verdict.Nak({ delay: FAILURE_DELAY }) }
            return Effect.logError("cannot read a message before its call", error.message)
          },
          onSuccess: (loaded) =>
            Effect.sync(() => {
              item.loaded = loaded
            })
        })
    )

    const now = new Date(yield* Clock.currentTimeMillis)
    for (const item of items) {
      if (item.plan !== undefined || item.loaded === undefined) continue
      item.plan = planBeforeCall(item.loaded.state, item.work, now)
      const state = item.loaded.state
      if (item.plan !== undefined || state.status === "none") continue
      const messageId = item.work.messageId
      if (!ledger.begin(messageId)) {
        // delivered again while this process still calls for it: that call's outcome decides
        item.plan = { verdict: Verdict.Nak({ delay: FAILURE_DELAY }) }
        continue
      }
      // JetStream's delivery count makes a crash visible: a redelivered work item whose first call's
      // outcome was never recorded dispatches as attempt 2 with nothing recorded for attempt 1; the
      // ledger does when the count cannot (a consumer's new leader counts from 1 again)
      const attempt = Math.max(
        state.attempts + 1,
        item.work.priorAttempts + item.msg.info.deliveryCount,
        ledger.unrecordedAttempt(messageId) + 1
      )
      calls.push({ item, state, attempt, called: false })
    }

    const publicUrl = yield* PublicUrl
    const callbackUrl = deliveryReportUrl(publicUrl, providerId)
    const outbound = (state: Open) => ({
      messageId: state.request.messageId,
      to: state.request.to,
      from: state.request.from,
      body: state.request.body,
      callbackUrl
    })
    /** What an answer leads to; the breaker and a 429 pause hear it at once. */
    const planAnswer = (call: Call, answer: SubmitResult, startedAt: number, answeredAt: number) => {
      observeCall(providerId, answer, (answeredAt - startedAt) / 1000)
      if (tracing()) traceCall(providerId, call, answer, startedAt, answeredAt)
      const plan = (retryDelay: Duration.Duration | undefined, failover: string) => {
        const planned = planAttempt({
          state: call.state,
          work: call.item.work,
          attempt: call.attempt,
          answer,
          at: new Date(answeredAt),
          retryDelay,
          failover,
          echoesReference: echoesReference(provider)
        })
        health.answeredNow(providerId, planned.providerAnswered ?? true, planned.throttle)
        return planned
      }
      // only a transient answer needs the schedule and the routing (Effects); the rest is plain
      if (answer._tag !== "Transient") return Effect.succeed(plan(undefined, providerId))
      return Effect.gen(function* () {
        const retryDelay = Option.getOrUndefined(
          yield* delayBeforeRetry(scheduleFor(provider.config.retry), call.attempt)
        )
        const failover =
          answer.reason === "throttled"
            ? providerId
            : yield* routeFailover(providerId, call.state.request.providers)
        return plan(retryDelay, failover)
      })
    }

    // No call starts before the journal holds it (see `CallJournal`): without that record, a call
    // repeated under the same attempt number after a crash could not be accounted for.
    let journaled = true
    if (calls.length > 0) {
      const record = calls.map((call) => ({ messageId: call.item.work.messageId, attempt: call.attempt }))
      const written = yield* Effect.either(journalCalls(providerId, now, record))
      if (Either.isLeft(written)) {
        journaled = false
        for (const call of calls) call.item.plan = { verdict: Verdict.Nak({ delay: FAILURE_DELAY }) }
        yield* Effect.logError("cannot journal the provider calls: none made", written.left.message)
      }
    }

    // Calls the breaker and the rate limit let through now start together as plain promises; the
    // others wait (held, as in a 429 pause) one by one, side by side with them.
    const ready: Array<Call> = []
    const held: Array<Call> = []
    for (const call of journaled ? calls : []) {
      if (health.admitNow(providerId)) ready.push(call)
      else held.push(call)
    }
    const clock = yield* Effect.clock
    const callReady = Effect.gen(function* () {
      const startedAt = clock.unsafeCurrentTimeMillis()
      const answers = yield* Effect.promise(() =>
        Promise.all(
          ready.map((call) => {
            call.called = true
            return provider.adapter
              .submitNow(outbound(call.state))
              .then((answer) => ({ answer, at: clock.unsafeCurrentTimeMillis() }))
          })
        )
      )
      for (let n = 0; n < ready.length; n++) {
        const call = ready[n]
        const answered = answers[n]
        if (call !== undefined && answered !== undefined) {
          call.item.plan = yield* planAnswer(call, answered.answer, startedAt, answered.at)
        }
      }
    })
    const callHeld = eachAtOnce(held, (call) =>
      Effect.gen(function* () {
        const keepAlive = Effect.sync(() => call.item.msg.working())
        const elsewhere = yield* awaitAdmission(providerId, call.state.request.providers, keepAlive)
        if (Option.isSome(elsewhere)) {
          call.item.plan = planHop(call.state, call.item.work, elsewhere.value, call.attempt - 1, now)
          return
        }
        yield* health.acquire(providerId, keepAlive)
        const startedAt = yield* Clock.currentTimeMillis
        call.called = true
        const answer = yield* provider.adapter.submit(outbound(call.state))
        call.item.plan = yield* planAnswer(call, answer, startedAt, yield* Clock.currentTimeMillis)
      })
    )
    // side by side only when both have work: a second fiber costs more than a one-message batch
    yield* held.length === 0
      ? callReady
      : ready.length === 0
        ? callHeld
        : Effect.all([callReady, callHeld], { concurrency: 2, discard: true })

    // every command of the batch in one append round; then follow-ups, each on its own outcome
    const planned = items.filter((item) => item.plan !== undefined)
    const recording = planned.filter((item) => item.plan?.command !== undefined)
    const outcomes = yield* executeMany(
      recording.map((item) => ({
        streamName: messageStream(item.work.messageId),
        command: () => item.plan?.command,
        ...(item.loaded === undefined ? {} : { known: item.loaded })
      }))
    )
    const followUps: Array<{
      readonly item: WorkItem
      readonly origin: WorkOrigin
      readonly traceparent?: string | undefined
    }> = []
    const followUpOf: Array<number> = []
    const indexed: Array<{
      readonly index: number
      readonly providerMessageId: string
      readonly messageId: MessageId
    }> = []
    const deadLetters: Array<DeadLetter> = []
    const revisionOf = new Map<number, Loaded<MessageState>>()
    /** the items whose command this run wrote (not found written by an earlier delivery) */
    const wroteNow = new Set<number>()
    recording.forEach((item, n) => {
      const outcome = outcomes[n]
      if (outcome === undefined) return
      if (Either.isLeft(outcome)) {
        item.plan = { verdict: Verdict.Nak({ delay: FAILURE_DELAY }) }
        Option.map(cache, (c) => c.delete(item.work.messageId))
        return
      }
      revisionOf.set(item.index, outcome.right)
      if (outcome.right.written) wroteNow.add(item.index)
      recorded.add(item)
      Option.map(cache, (c) => c.set(item.work.messageId, outcome.right))
    })
    // a line per recorded event (dispatched, retrying, failed), written right after the append: its
    // delivery report may be recorded soon after. Built only when Info is logged (asked once a batch).
    if (yield* infoEnabled) {
      const recorded: Array<RecordedMessage> = []
      recording.forEach((item, n) => {
        const outcome = outcomes[n]
        if (outcome === undefined || Either.isLeft(outcome)) return
        const { appended, state } = outcome.right
        if (appended.length > 0 && state.status !== "none") {
          recorded.push({ request: state.request, events: appended, trackingId: item.work.trackingId })
        }
      })
      yield* logMessageEvents(recorded)
    }
    for (const item of planned) {
      const plan = item.plan
      if (plan === undefined) continue
      verdicts[item.index] = plan.verdict
      if (plan.command !== undefined && !revisionOf.has(item.index)) continue
      const after = revisionOf.get(item.index) ?? item.loaded
      if (plan.next !== undefined && after !== undefined && after.state.status !== "none") {
        // Fresh only at the revision this very run wrote for the hop. A hop recorded by an earlier
        // delivery is queued again under the same name but without the snapshot (its first item may
        // be queued still, see `FirstDeliveries`); a hop without an event (the circuit opened before
        // any call) is named by this item. Both are checked against the stream.
        const hopRecorded =
          after.state.status === "retrying" && after.state.nextProvider === plan.next.provider
        const recordsHop = hopRecorded && wroteNow.has(item.index)
        followUps.push({
          item: {
            messageId: item.work.messageId,
            provider: plan.next.provider,
            priorAttempts: plan.next.priorAttempts,
            ...(item.work.trackingId === undefined ? {} : { trackingId: item.work.trackingId }),
            ...(recordsHop
              ? { fresh: { revision: after.revision, status: "retrying", request: after.state.request } }
              : {})
          },
          origin: hopRecorded && !recordsHop ? { repeats: after.revision } : item.msg.seq,
          ...(tracing() ? { traceparent: messageTrace(item.msg, after.state) } : {})
        })
        followUpOf.push(item.index)
      }
      if (plan.indexProviderMessageId !== undefined) {
        indexed.push({
          index: item.index,
          providerMessageId: plan.indexProviderMessageId,
          messageId: item.work.messageId
        })
      } else if (
        // a redelivered item of a message this provider dispatched: its index entry may be the step
        // that failed, and writing it again changes nothing
        plan.command === undefined &&
        !echoesReference(provider) &&
        after !== undefined &&
        after.state.status !== "none" &&
        after.state.provider === providerId &&
        after.state.providerMessageId !== undefined
      ) {
        indexed.push({
          index: item.index,
          providerMessageId: after.state.providerMessageId,
          messageId: item.work.messageId
        })
      }
      if (plan.deadLetter !== undefined) {
        deadLetters.push(
          new DeadLetter({
            messageId: item.work.messageId,
            provider: providerId,
            cause: "retries_exhausted",
            attempts: plan.deadLetter.attempts,
            detail: plan.deadLetter.detail,
            deadAt: now
          })
        )
      }
    }
    const published = yield* publishWorkItems(followUps)
    published.forEach((result, n) => {
      const index = followUpOf[n]
      if (result.status === "rejected" && index !== undefined)
        verdicts[index] = Verdict.Nak({ delay: FAILURE_DELAY })
    })
    // at Debug: a hop that made a call is the "message retrying" line above, with its next provider
    for (const { item } of followUps) {
      yield* Effect.logDebug("failover").pipe(
        Effect.annotateLogs({
          messageId: item.messageId,
          trackingId: item.trackingId ?? item.messageId,
          nextProvider: item.provider
        })
      )
    }
    // reports of this message need the entry: without it the item comes back, and writes it again
    yield* eachAtOnce(indexed, ({ index, providerMessageId, messageId }) =>
      Effect.catchAll(recordProviderMessage(providerId, providerMessageId, messageId), () =>
        Effect.sync(() => {
          verdicts[index] = Verdict.Nak({ delay: FAILURE_DELAY })
        })
      )
    )
    yield* eachAtOnce(deadLetters, (letter) =>
      Effect.zipRight(Metrics.deadLettered(providerId, "retries_exhausted"), publishDeadLetter(letter))
    )
    return verdicts
  }).pipe(Effect.ensuring(endCalls), Effect.annotateLogs({ provider: provider.config.id }))
}

/** A work item whose step failed for the infrastructure comes back after this. */
const FAILURE_DELAY = Duration.seconds(2)

/**
 * Waits until the breaker lets a call to this provider through, or another provider can take the
 * message (Some). The work item is held meanwhile, as in a 429 pause: a nak would spend one of its
 * deliveries per wait and show as a phantom attempt, and held items make JetStream stop delivering.
 */
const awaitAdmission = (
  providerId: string,
  allowed: ReadonlyArray<string> | undefined,
  keepAlive: Effect.Effect<void>
): Effect.Effect<Option.Option<string>, never, ProviderHealth | Providers> =>
  Effect.gen(function* () {
    const health = yield* ProviderHealth
    let sinceKeepAlive = 0
    for (;;) {
      if (yield* health.admit(providerId)) return Option.none()
      const next = yield* routeFailover(providerId, allowed)
      if (next !== providerId) return Option.some(next)
      // open: until it reopens; half-open with a probe out: until the probe has its answer
      const reopensIn = (yield* health.reopensAt(providerId)) - (yield* Clock.currentTimeMillis)
      const wait = Math.min(Math.max(CIRCUIT_POLL_MS, reopensIn), KEEP_ALIVE_MS)
      yield* Effect.sleep(Duration.millis(wait))
      sinceKeepAlive += wait
      if (sinceKeepAlive >= KEEP_ALIVE_MS) {
        yield* keepAlive
        sinceKeepAlive = 0
      }
    }
  })

/** The message's trace context: its work item's header, else what its request recorded. */
const messageTrace = (msg: JsMsg, state: Open) => traceparentOf(msg) ?? state.request.traceparent

/** A span for one provider call, in its message's trace (only called while traces are recorded). */
const traceCall = (
  provider: string,
  call: Call,
  answer: SubmitResult,
  startedAt: number,
  answeredAt: number
) =>
  recordSpan({
    name: "sms.provider.submit",
    kind: "client",
    parent: messageTrace(call.item.msg, call.state),
    startTime: startedAt,
    endTime: answeredAt,
    attributes: {
      "sms.message_id": call.item.work.messageId,
      "sms.provider": provider,
      "sms.attempt": call.attempt,
      "sms.provider.answer": answer._tag
    },
    error: answer._tag === "Accepted" ? undefined : answer.reason
  })

/** The call's metrics, updated at once (no Effect per call). */
const observeCall = (provider: string, result: SubmitResult, seconds: number) => {
  const outcome =
    result._tag === "Accepted"
      ? "accepted"
      : result._tag === "Permanent"
        ? "permanent"
        : result.reason === "throttled"
          ? "throttled"
          : "transient"
  Metrics.unsafe.providerCall(
    provider,
    outcome,
    seconds,
    result._tag === "Accepted" ? undefined : { kind: result.reason, retried: result._tag === "Transient" }
  )
}

/** The work item used up its deliveries without an outcome: record the failure and dead-letter it. */
const giveUp = (provider: ConfiguredProvider) => (msg: JsMsg, why: string) =>
  Effect.gen(function* () {
    const work = decodeWorkItem(msg.string())
    if (work === undefined) return
    const at = new Date(yield* Clock.currentTimeMillis)
    const detail = `${msg.info.deliveryCount} deliveries without an outcome (last: ${why})`
    const { appended, state } = yield* execute(work.messageId, () => ({
      _tag: "Fail",
      reason: "retries_exhausted",
      permanent: true,
      provider: provider.config.id,
      detail,
      at
    }))
    // one message given up (a cold path): its line needs no level check
    if (state.status !== "none") {
      yield* logMessageEvents([{ request: state.request, events: appended, trackingId: work.trackingId }])
    }
    yield* Metrics.deadLettered(provider.config.id, "max_deliveries")
    yield* publishDeadLetter(
      new DeadLetter({
        messageId: work.messageId,
        provider: provider.config.id,
        cause: "max_deliveries",
        attempts: state.status === "none" ? 0 : state.attempts,
        detail,
        deadAt: at
      })
    )
  })

export const layer = Layer.scopedDiscard(
  Effect.gen(function* () {
    const providers = yield* Providers
    // one for the process: a message moves between providers (failover)
    const own = { ledger: makeCallLedger(), firstDeliveries: yield* makeFirstDeliveries }
    for (const provider of providers.all) {
      yield* Effect.forkScoped(
        runBatchWorker(
          {
            stream: Streams.work,
            durable: `provider-${provider.config.id}`,
            filterSubject: Subjects.work(provider.config.id),
            concurrency: provider.config.concurrency,
            ackWait: Duration.millis(provider.config.timeoutMs + 20_000),
            maxDeliver: MAX_DELIVERIES,
            onGiveUp: giveUp(provider)
          },
          handleWork(provider, own)
        )
      )
    }
  })
)
