/**
 * Applies stored delivery reports to their messages: finds the message by the provider's message
 * id and records `SmsDelivered` or `SmsFailed`. A report that beats the record of its dispatch
 * (providers do answer that fast) comes back later through JetStream's delayed redelivery.
 */
import type { JsMsg } from "@nats-io/jetstream"
import { Duration, Effect, Layer, Option } from "effect"
import { Streams } from "../nats/Topology.js"
import { requeueParked, park } from "../projections/ParkedReports.js"
import { findMessageId, indexKey } from "../projections/ProviderIndex.js"
import { Providers } from "../providers/Providers.js"
import { decodeStoredDeliveryReport } from "./DeliveryReports.js"
import { ack, runWorker, Verdict } from "./JetStreamWorker.js"
import { execute } from "./MessageRepository.js"

/** Early reports are retried for about 8 minutes in all, then parked until their dispatch shows up. */
const MAX_EARLY_DELIVERIES = 14
const earlyReportDelay = (delivery: number) =>
  Duration.millis(Math.min(100 * 2 ** Math.min(delivery - 1, 12), 60_000))

const retryEarly = (msg: JsMsg, provider: string, providerMessageId: string) =>
  msg.info.deliveryCount < MAX_EARLY_DELIVERIES
    ? Effect.succeed(Verdict.Nak({ delay: earlyReportDelay(msg.info.deliveryCount) }))
    : Effect.gen(function* () {
        const key = indexKey(provider, providerMessageId)
        yield* park(key, msg.string())
        // the dispatch may have been indexed while we parked: then requeue at once
        if (Option.isSome(yield* findMessageId(provider, providerMessageId))) yield* requeueParked(key)
        yield* Effect.logWarning("delivery report parked until its dispatch is recorded").pipe(
          Effect.annotateLogs({ provider, providerMessageId })
        )
        return ack
      })

export const handleDeliveryReport = (msg: JsMsg) =>
  Effect.gen(function* () {
    const stored = yield* decodeStoredDeliveryReport(msg.string()).pipe(Effect.option)
    if (Option.isNone(stored)) return Verdict.Term({ reason: "malformed stored delivery report" })
    const { provider, report, receivedAt } = stored.value
    const providers = yield* Providers
    if (providers.get(provider) === undefined) return Verdict.Term({ reason: `unknown provider ${provider}` })

    const messageId = yield* findMessageId(provider, report.providerMessageId)
    if (Option.isNone(messageId)) return yield* retryEarly(msg, provider, report.providerMessageId)

    return yield* execute(messageId.value, () => ({
      _tag: "RecordDeliveryReport",
      provider,
      providerMessageId: report.providerMessageId,
      outcome:
        report.outcome === "delivered"
          ? { _tag: "Delivered" }
          : report.outcome === "pending"
            ? { _tag: "Pending" }
            : { _tag: "Failed", reason: report.failureReason ?? "undeliverable", code: report.code },
      rawStatus: report.rawStatus,
      at: receivedAt
    })).pipe(
      Effect.as(ack),
      Effect.catchTags({
        NotYetDispatched: () => retryEarly(msg, provider, report.providerMessageId),
        ProviderMessageMismatch: (e) => Effect.succeed(Verdict.Term({ reason: e.message })),
        MessageNotRequested: (e) => Effect.succeed(Verdict.Term({ reason: e.message }))
      }),
      Effect.annotateLogs({ messageId: messageId.value, provider })
    )
  })

export const layer = (options: { readonly concurrency: number } = { concurrency: 256 }) =>
  Layer.scopedDiscard(
    Effect.forkScoped(
      runWorker(
        {
          stream: Streams.dlr,
          durable: "delivery-reports",
          filterSubject: "sms.dlr.>",
          concurrency: options.concurrency
        },
        handleDeliveryReport
      )
    )
  )
