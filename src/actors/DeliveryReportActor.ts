/**
 * Applies stored delivery reports to their messages: finds the message by the provider's message
 * id and records `SmsDelivered` or `SmsFailed`. A report that beats the record of its dispatch
 * (providers do answer that fast) comes back later through JetStream's delayed redelivery.
 */
import type { JsMsg } from "@nats-io/jetstream"
import { Duration, Effect, Layer, Option } from "effect"
import { Streams } from "../nats/Topology.js"
import { findMessageId } from "../projections/ProviderIndex.js"
import { Providers } from "../providers/Providers.js"
import { decodeStoredDeliveryReport } from "./DeliveryReports.js"
import { ack, runWorker, Verdict } from "./JetStreamWorker.js"
import { execute } from "./MessageRepository.js"

/** Early reports are retried for about 8 minutes in all before they are given up as unmatched. */
const MAX_EARLY_DELIVERIES = 14
const earlyReportDelay = (delivery: number) =>
  Duration.millis(Math.min(100 * 2 ** Math.min(delivery - 1, 12), 60_000))

const retryEarly = (msg: JsMsg, why: string) =>
  msg.info.deliveryCount >= MAX_EARLY_DELIVERIES
    ? Verdict.Term({ reason: `unmatched delivery report: ${why}` })
    : Verdict.Nak({ delay: earlyReportDelay(msg.info.deliveryCount) })

export const handleDeliveryReport = (msg: JsMsg) =>
  Effect.gen(function* () {
    const stored = yield* decodeStoredDeliveryReport(msg.string()).pipe(Effect.option)
    if (Option.isNone(stored)) return Verdict.Term({ reason: "malformed stored delivery report" })
    const { provider, report, receivedAt } = stored.value
    const providers = yield* Providers
    if (providers.get(provider) === undefined) return Verdict.Term({ reason: `unknown provider ${provider}` })
    if (report.outcome === "pending") return ack

    const messageId = yield* findMessageId(provider, report.providerMessageId)
    if (Option.isNone(messageId))
      return retryEarly(msg, `no message for ${provider}/${report.providerMessageId}`)

    return yield* execute(messageId.value, () => ({
      _tag: "RecordDeliveryReport",
      provider,
      providerMessageId: report.providerMessageId,
      outcome:
        report.outcome === "delivered"
          ? { _tag: "Delivered" }
          : { _tag: "Failed", reason: report.failureReason ?? "undeliverable", code: report.code },
      rawStatus: report.rawStatus,
      at: receivedAt
    })).pipe(
      Effect.as(ack),
      Effect.catchTags({
        NotYetDispatched: () => Effect.succeed(retryEarly(msg, "dispatch not recorded yet")),
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
