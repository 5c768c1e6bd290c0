/**
 * One actor per provider: consumes `sms.work.<provider>`, calls the provider, and records the
 * outcome in the message stream before settling the work item.
 *
 * - Dispatch is idempotent: the stream is read first; a message already dispatched or finished is
 *   acked without a call. Only a crash between the provider's answer and the append of
 *   `SmsDispatched` can cause a second submission, and the history shows it (two attempts).
 * - A transient failure moves the message to another healthy provider at once (failover: a new
 *   work item, the hop recorded as `SmsRetried` naming `nextProvider`); with no other provider it
 *   waits on this one, the delay carried by JetStream (`nak(delay)`).
 * - A 429 pauses this provider as a whole for its `Retry-After`; an open circuit sends work elsewhere.
 * - When the provider's schedule runs out: `SmsFailed(retries_exhausted)` and a dead letter.
 */
import type { JsMsg } from "@nats-io/jetstream"
import { Clock, Duration, Effect, Layer, Option } from "effect"
import type { MessageCommand, MessageState } from "../domain/Message.js"
import { deliveryReportUrl, PublicUrl } from "../http/PublicUrl.js"
import { Streams, Subjects } from "../nats/Topology.js"
import * as Metrics from "../observability/Metrics.js"
import { recordProviderMessage } from "../projections/ProviderIndex.js"
import type { SubmitResult } from "../providers/ProviderAdapter.js"
import type { ConfiguredProvider } from "../providers/Providers.js"
import { Providers } from "../providers/Providers.js"
import { DeadLetter, publishDeadLetter } from "./DeadLetters.js"
import { ack, runWorker, Verdict } from "./JetStreamWorker.js"
import { execute, type LoadedMessage, load } from "./MessageRepository.js"
import { ProviderHealth } from "./ProviderHealth.js"
import { delayBeforeRetry, scheduleFor } from "./RetrySchedules.js"
import { routeFailover } from "./Router.js"
import { decodeWorkItem, publishWork, WorkItem } from "./WorkItem.js"

/** Deliveries of one work item before it is given up as poison (handler failures, not retries). */
export const MAX_DELIVERIES = 30
/** How often a message held by an open circuit looks again, and tells JetStream it is still in hand. */
const CIRCUIT_POLL_MS = 100
const KEEP_ALIVE_MS = 10_000

type Open = Exclude<MessageState, { status: "none" }>
type Recorder = (command: MessageCommand) => ReturnType<typeof execute>

const handleWork = (provider: ConfiguredProvider) => (msg: JsMsg) =>
  Effect.gen(function* () {
    const work = yield* decodeWorkItem(msg.string()).pipe(Effect.option)
    if (Option.isNone(work)) return Verdict.Term({ reason: "malformed work item" })
    const loaded = yield* load(work.value.messageId)
    const { state } = loaded
    if (state.status === "none")
      return Verdict.Term({ reason: `work item for unknown message ${work.value.messageId}` })
    if (state.status !== "requested" && state.status !== "retrying") return ack
    return yield* attempt(provider, msg, work.value, { ...loaded, state })
  }).pipe(Effect.annotateLogs({ provider: provider.config.id }))

const attempt = (
  provider: ConfiguredProvider,
  msg: JsMsg,
  work: WorkItem,
  loaded: LoadedMessage & { state: Open }
) =>
  Effect.gen(function* () {
    const { state } = loaded
    const providerId = provider.config.id
    const messageId = state.request.messageId
    const health = yield* ProviderHealth
    const record = (command: MessageCommand) => execute(messageId, () => command, loaded)
    const now = new Date(yield* Clock.currentTimeMillis)

    if (state.request.validUntil !== undefined && state.request.validUntil.getTime() <= now.getTime()) {
      yield* record({
        _tag: "Fail",
        reason: "expired",
        permanent: true,
        detail: "validUntil passed",
        at: now
      })
      return ack
    }

    // JetStream's delivery count makes a crash visible: a redelivered work item whose first call's
    // outcome was never recorded dispatches as attempt 2 with nothing recorded for attempt 1
    const number = Math.max(state.attempts + 1, work.priorAttempts + msg.info.deliveryCount)
    const keepAlive = Effect.sync(() => msg.working())
    const elsewhere = yield* awaitAdmission(providerId, state.request.providers, keepAlive)
    if (Option.isSome(elsewhere))
      return yield* hop(
        msg.seq,
        work,
        state,
        elsewhere.value,
        number - 1,
        "provider_unavailable",
        "circuit open",
        record
      )

    yield* health.acquire(providerId, keepAlive)
    const publicUrl = yield* PublicUrl
    const startedAt = yield* Clock.currentTimeMillis
    const result = yield* provider.adapter.submit({
      messageId,
      to: state.request.to,
      from: state.request.from,
      body: state.request.body,
      callbackUrl: deliveryReportUrl(publicUrl, providerId)
    })
    const answeredAt = new Date(yield* Clock.currentTimeMillis)
    yield* observeCall(providerId, result, (answeredAt.getTime() - startedAt) / 1000)
    // One verdict per call for the breaker, whatever becomes of the message: a probe always resolves.
    // Any answer (accepted, refused, 429) shows the provider up; only transport errors and 5xx count against it.
    const answered = result._tag !== "Transient" || result.reason === "throttled"
    yield* answered ? health.succeeded(providerId) : health.failed(providerId)
    return yield* settle(msg.seq, provider, work, state, number, result, answeredAt, record)
  })

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

const settle = (
  sourceSeq: number,
  provider: ConfiguredProvider,
  work: WorkItem,
  state: Open,
  number: number,
  result: SubmitResult,
  at: Date,
  record: Recorder
) =>
  Effect.gen(function* () {
    const providerId = provider.config.id
    const messageId = state.request.messageId
    const health = yield* ProviderHealth
    switch (result._tag) {
      case "Accepted": {
        yield* record({
          _tag: "RecordDispatch",
          provider: providerId,
          providerMessageId: result.providerMessageId,
          attempt: number,
          at
        })
        yield* recordProviderMessage(providerId, result.providerMessageId, messageId)
        return ack
      }
      case "Permanent": {
        // the provider answered: it is healthy, the message is not
        yield* record({
          _tag: "Fail",
          reason: result.reason,
          permanent: true,
          provider: providerId,
          code: result.code,
          detail: result.detail,
          at
        })
        return ack
      }
      case "Transient": {
        const scheduled = yield* delayBeforeRetry(scheduleFor(provider.config.retry), number)
        if (Option.isNone(scheduled)) {
          yield* record({
            _tag: "Fail",
            reason: "retries_exhausted",
            permanent: true,
            provider: providerId,
            detail: `${number} attempts, last: ${result.reason} ${result.detail}`,
            at
          })
          yield* Metrics.deadLettered(providerId, "retries_exhausted")
          yield* publishDeadLetter(
            new DeadLetter({
              messageId,
              provider: providerId,
              cause: "retries_exhausted",
              attempts: number,
              detail: `${result.reason}: ${result.detail}`,
              deadAt: at
            })
          )
          return ack
        }
        if (result.reason === "throttled") {
          // a 429 is about the provider, not the message: pause it as a whole, retry here afterwards
          const pause = Duration.millis(result.retryAfterMs ?? 1000)
          yield* health.throttle(providerId, pause)
          yield* record(
            retryCommand(providerId, number, result, new Date(at.getTime() + Duration.toMillis(pause)))
          )
          return Verdict.Nak({ delay: pause })
        }
        const next = yield* routeFailover(providerId, state.request.providers)
        if (next !== providerId)
          return yield* hop(sourceSeq, work, state, next, number, result.reason, result.detail, record, at)
        const delay =
          result.retryAfterMs === undefined
            ? scheduled.value
            : Duration.max(scheduled.value, Duration.millis(result.retryAfterMs))
        yield* record(
          retryCommand(providerId, number, result, new Date(at.getTime() + Duration.toMillis(delay)))
        )
        return Verdict.Nak({ delay })
      }
    }
  })

const observeCall = (provider: string, result: SubmitResult, seconds: number) =>
  Effect.gen(function* () {
    const outcome =
      result._tag === "Accepted"
        ? "accepted"
        : result._tag === "Permanent"
          ? "permanent"
          : result.reason === "throttled"
            ? "throttled"
            : "transient"
    yield* Metrics.providerCall(provider, outcome, seconds)
    if (result._tag !== "Accepted") yield* Metrics.providerError(provider, result.reason)
    if (result._tag === "Transient") yield* Metrics.retried(provider, result.reason)
  })

const retryCommand = (
  provider: string,
  attempt: number,
  result: Extract<SubmitResult, { _tag: "Transient" }>,
  nextAttemptAt: Date,
  nextProvider?: string
): MessageCommand => ({
  _tag: "ScheduleRetry",
  provider,
  attempt,
  reason: result.reason,
  detail: result.detail,
  nextAttemptAt,
  nextProvider
})

/** Failover: record the hop, queue the message on `next`, and let this work item go. */
const hop = (
  sourceSeq: number,
  work: WorkItem,
  state: Open,
  next: string,
  attempts: number,
  reason: Extract<SubmitResult, { _tag: "Transient" }>["reason"],
  detail: string,
  record: Recorder,
  at?: Date
) =>
  Effect.gen(function* () {
    const now = at ?? new Date(yield* Clock.currentTimeMillis)
    // a hop without a call (circuit open) is not an attempt: the retry event needs a fresh number
    if (attempts > state.attempts) {
      yield* record(retryCommand(work.provider, attempts, { _tag: "Transient", reason, detail }, now, next))
    }
    yield* publishWork(
      new WorkItem({
        messageId: work.messageId,
        provider: next,
        priorAttempts: attempts,
        trackingId: work.trackingId
      }),
      sourceSeq
    )
    yield* Effect.logInfo("failover").pipe(
      Effect.annotateLogs({ messageId: work.messageId, from: work.provider, to: next })
    )
    return ack
  })

/** The work item used up its deliveries without an outcome: record the failure and dead-letter it. */
const giveUp = (provider: ConfiguredProvider) => (msg: JsMsg, why: string) =>
  Effect.gen(function* () {
    const work = yield* decodeWorkItem(msg.string())
    const at = new Date(yield* Clock.currentTimeMillis)
    const detail = `${msg.info.deliveryCount} deliveries without an outcome (last: ${why})`
    const { state } = yield* execute(work.messageId, () => ({
      _tag: "Fail",
      reason: "retries_exhausted",
      permanent: true,
      provider: provider.config.id,
      detail,
      at
    }))
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
    for (const provider of providers.all) {
      yield* Effect.forkScoped(
        runWorker(
          {
            stream: Streams.work,
            durable: `provider-${provider.config.id}`,
            filterSubject: Subjects.work(provider.config.id),
            concurrency: provider.config.concurrency,
            ackWait: Duration.millis(provider.config.timeoutMs + 20_000),
            maxDeliver: MAX_DELIVERIES,
            onGiveUp: giveUp(provider)
          },
          handleWork(provider)
        )
      )
    }
  })
)
