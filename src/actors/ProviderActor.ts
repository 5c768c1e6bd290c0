/**
 * One actor per provider: consumes `sms.work.<provider>`, calls the provider once per delivery of
 * a work item, and records the outcome in the message stream before settling the work item.
 *
 * Dispatch is idempotent: the stream is read first, and a message already dispatched or finished
 * is acked without a call. Only a crash between the provider's answer and the append of
 * `SmsDispatched` can cause a second submission.
 */
import type { JsMsg } from "@nats-io/jetstream"
import { Clock, Duration, Effect, Layer, Option } from "effect"
import type { MessageCommand } from "../domain/Message.js"
import { deliveryReportUrl, PublicUrl } from "../http/PublicUrl.js"
import { Streams, Subjects } from "../nats/Topology.js"
import { recordProviderMessage } from "../projections/ProviderIndex.js"
import type { ConfiguredProvider } from "../providers/Providers.js"
import { Providers } from "../providers/Providers.js"
import { ack, runWorker, Verdict } from "./JetStreamWorker.js"
import { execute, load } from "./MessageRepository.js"
import { delayBeforeRetry, providerDefault } from "./RetrySchedules.js"
import { decodeWorkItem } from "./WorkItem.js"

const handleWork = (provider: ConfiguredProvider) => (msg: JsMsg) =>
  Effect.gen(function* () {
    const work = yield* decodeWorkItem(msg.string()).pipe(Effect.option)
    if (Option.isNone(work)) return Verdict.Term({ reason: "malformed work item" })
    const { messageId } = work.value
    const loaded = yield* load(messageId)
    const { state } = loaded
    if (state.status === "none") return Verdict.Term({ reason: `work item for unknown message ${messageId}` })
    if (state.status !== "requested" && state.status !== "retrying") return ack

    const now = new Date(yield* Clock.currentTimeMillis)
    const request = state.request
    const providerId = provider.config.id
    const record = (command: MessageCommand) => execute(messageId, () => command, loaded)

    if (request.validUntil !== undefined && request.validUntil.getTime() <= now.getTime()) {
      yield* record({
        _tag: "Fail",
        reason: "expired",
        permanent: true,
        detail: "validUntil passed",
        at: now
      })
      return ack
    }

    const attempt = work.value.priorAttempts + msg.info.deliveryCount
    const publicUrl = yield* PublicUrl
    const result = yield* provider.adapter.submit({
      messageId,
      to: request.to,
      from: request.from,
      body: request.body,
      callbackUrl: deliveryReportUrl(publicUrl, providerId)
    })
    const answeredAt = new Date(yield* Clock.currentTimeMillis)

    switch (result._tag) {
      case "Accepted": {
        yield* record({
          _tag: "RecordDispatch",
          provider: providerId,
          providerMessageId: result.providerMessageId,
          attempt,
          at: answeredAt
        })
        yield* recordProviderMessage(providerId, result.providerMessageId, messageId)
        return ack
      }
      case "Permanent": {
        yield* record({
          _tag: "Fail",
          reason: result.reason,
          permanent: true,
          provider: providerId,
          code: result.code,
          detail: result.detail,
          at: answeredAt
        })
        return ack
      }
      case "Transient": {
        const scheduled = yield* delayBeforeRetry(providerDefault, attempt)
        if (Option.isNone(scheduled)) {
          yield* record({
            _tag: "Fail",
            reason: "retries_exhausted",
            permanent: true,
            provider: providerId,
            detail: `${attempt} attempts, last: ${result.reason} ${result.detail}`,
            at: answeredAt
          })
          return ack
        }
        const delay =
          result.retryAfterMs === undefined
            ? scheduled.value
            : Duration.max(scheduled.value, Duration.millis(result.retryAfterMs))
        yield* record({
          _tag: "ScheduleRetry",
          provider: providerId,
          attempt,
          reason: result.reason,
          detail: result.detail,
          nextAttemptAt: new Date(answeredAt.getTime() + Duration.toMillis(delay))
        })
        return Verdict.Nak({ delay })
      }
    }
  }).pipe(
    Effect.tap((verdict) => Effect.logDebug("work item settled", verdict._tag)),
    Effect.annotateLogs({ provider: provider.config.id })
  )

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
            ackWait: Duration.millis(provider.config.timeoutMs + 20_000)
          },
          handleWork(provider)
        )
      )
    }
  })
)
