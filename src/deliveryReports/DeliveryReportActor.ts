/**
 * Applies stored delivery reports to their messages: finds the message (by the reference the
 * provider echoes, else by the provider-id index) and records `SmsDelivered`, `SmsFailed` or an
 * intermediate status. A report that beats the record of its dispatch (providers do answer that
 * fast) comes back later through JetStream's delayed redelivery.
 *
 * Batch-first: the reports the consumer has ready are decided together, on the states this process
 * recorded last where it has them (`MessageCache`), and appended in one round.
 */
import type { JsMsg } from "@nats-io/jetstream"
import { Duration, Effect, Either, Layer, Option } from "effect"
import { isMessageId, type MessageId } from "../domain/Ids.js"
import type { MessageCommand, MessageState } from "../domain/Message.js"
import { messageStream } from "../domain/StreamName.js"
import { Streams } from "../nats/Topology.js"
import { infoEnabled, logMessageEvents, type RecordedMessage } from "../observability/Logger.js"
import { recordSpan, traceparentOf, tracing } from "../observability/Tracing.js"
import { requeueParked, park } from "../projections/ParkedReports.js"
import { findMessageId, indexKey } from "../projections/ProviderIndex.js"
import { Providers } from "../providers/Providers.js"
import { decodeStoredDeliveryReport, type StoredDeliveryReport } from "./DeliveryReports.js"
import { eachAtOnce } from "../platform/AtOnce.js"
import { ack, runBatchWorker, Verdict } from "../nats/JetStreamWorker.js"
import { MessageCache } from "../messages/MessageCache.js"
import { executeMany, load } from "../messages/MessageRepository.js"

/** Early reports are retried for about 8 minutes in all, then parked until their dispatch shows up. */
const MAX_EARLY_DELIVERIES = 14
const earlyReportDelay = (delivery: number) =>
  Duration.millis(Math.min(100 * 2 ** Math.min(delivery - 1, 12), 60_000))
/** A report whose step failed for the infrastructure comes back after this. */
const FAILURE_DELAY = Duration.seconds(2)

/** Whether the dispatch a report waits for is recorded by now (its message known or not). */
const dispatchRecorded = (provider: string, providerMessageId: string, messageId: MessageId | undefined) =>
  messageId === undefined
    ? Effect.map(findMessageId(provider, providerMessageId), Option.isSome)
    : Effect.map(
        load(messageId),
        ({ state }) => state.status !== "none" && state.providerMessageId === providerMessageId
      )

const retryEarly = (msg: JsMsg, provider: string, providerMessageId: string, messageId?: MessageId) =>
  msg.info.deliveryCount < MAX_EARLY_DELIVERIES
    ? Effect.succeed(Verdict.Nak({ delay: earlyReportDelay(msg.info.deliveryCount) }))
    : parkReport(msg, provider, providerMessageId, messageId)

/** The last early delivery: the report waits in the parked-reports bucket, or is dropped when it is full. */
const parkReport = (msg: JsMsg, provider: string, providerMessageId: string, messageId?: MessageId) =>
  Effect.gen(function* () {
    const key = indexKey(provider, providerMessageId)
    const outcome = yield* park(provider, key, msg.string())
    if (outcome === "full") {
      // Dropped, and acked: the report matched no dispatch for the whole retry window, and the store
      // for such reports is at its bound, which is what a flood of reports for messages that do not
      // exist looks like. Keeping it in SMS_DLR instead would redeliver it forever and move the flood
      // there, unbounded. (Not logged: the raw report, which may hold phone numbers.)
      yield* Effect.logWarning("delivery report dropped: the parked-reports bucket is full").pipe(
        Effect.annotateLogs({ provider, providerMessageId, reason: "full" })
      )
      return ack
    }
    // the dispatch may have been recorded while we parked: then requeue at once
    if (yield* dispatchRecorded(provider, providerMessageId, messageId)) yield* requeueParked(key)
    yield* Effect.logWarning("delivery report parked until its dispatch is recorded").pipe(
      Effect.annotateLogs({ provider, providerMessageId })
    )
    return ack
  }).pipe(
    // this report only: its neighbours in the batch keep their verdicts
    Effect.catchAll((error) =>
      Effect.as(
        Effect.logError("cannot park a delivery report; it will come back", error.message).pipe(
          Effect.annotateLogs({ provider, providerMessageId })
        ),
        Verdict.Nak({ delay: FAILURE_DELAY })
      )
    )
  )

/** The command a report asks for. */
const reportCommand = ({ provider, report, receivedAt }: StoredDeliveryReport): MessageCommand => ({
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
})

interface Located {
  readonly index: number
  readonly msg: JsMsg
  readonly stored: StoredDeliveryReport
  messageId?: MessageId
}

/** A report whose message is known, to be recorded on it. */
export interface ReportForMessage {
  readonly stored: StoredDeliveryReport
  readonly messageId: MessageId
  /** the webhook's span (`traceparent`), linked from the span of the recording */
  readonly link: string | undefined
}

/**
 * A span for a report recorded on its message (only while traces are recorded): in the message's
 * trace, which its request recorded, and linked to the webhook's.
 */
const traceApplied = (report: ReportForMessage, state: MessageState, changed: boolean, startedAt: number) =>
  recordSpan({
    name: "sms.delivery_report.apply",
    kind: "consumer",
    parent: state.status === "none" ? undefined : state.request.traceparent,
    links: [report.link],
    startTime: startedAt,
    endTime: Date.now(),
    attributes: {
      "sms.message_id": report.messageId,
      "sms.provider": report.stored.provider,
      "sms.report.outcome": report.stored.report.outcome,
      "sms.report.recorded": changed
    }
  })

/**
 * Records each report on its message, all in one append round, deciding on the state this process
 * recorded last where it holds it (`MessageCache`). Outcomes come back in order; each report fails
 * or succeeds on its own. Shared by the report actor (stored reports) and the webhook (reports
 * recorded as they arrive: `ReportsAtOnce.ts`).
 */
export const recordOnMessages = (reports: ReadonlyArray<ReportForMessage>) =>
  Effect.gen(function* () {
    const cache = yield* Effect.serviceOption(MessageCache)
    const startedAt = tracing() ? Date.now() : 0
    const outcomes = yield* executeMany(
      reports.map((report) => {
        const known = Option.flatMap(cache, (c) => Option.fromNullable(c.get(report.messageId)))
        return {
          streamName: messageStream(report.messageId),
          command: () => reportCommand(report.stored),
          ...(Option.isSome(known) ? { known: known.value } : {})
        }
      })
    )
    // a line per recorded event (delivered, failed, a contradicting report), built only when Info is
    // logged: the level is asked once per batch
    const logged: Array<RecordedMessage> | undefined = (yield* infoEnabled) ? [] : undefined
    reports.forEach((report, n) => {
      const outcome = outcomes[n]
      if (outcome === undefined || Either.isLeft(outcome)) return
      Option.map(cache, (c) => c.set(report.messageId, outcome.right))
      const { appended, state } = outcome.right
      if (startedAt > 0) traceApplied(report, state, appended.length > 0, startedAt)
      if (logged !== undefined && appended.length > 0 && state.status !== "none") {
        logged.push({ request: state.request, events: appended })
      }
    })
    if (logged !== undefined) yield* logMessageEvents(logged)
    return outcomes
  })

export const handleDeliveryReports = (messages: ReadonlyArray<JsMsg>) =>
  Effect.gen(function* () {
    const providers = yield* Providers
    const verdicts: Array<Verdict> = messages.map(() => ack)
    const reports: Array<Located> = []
    messages.forEach((msg, index) => {
      const stored = decodeStoredDeliveryReport(msg.string())
      if (stored === undefined) verdicts[index] = Verdict.Term({ reason: "malformed stored delivery report" })
      else if (providers.get(stored.provider) === undefined) {
        verdicts[index] = Verdict.Term({ reason: `unknown provider ${stored.provider}` })
      } else {
        const reference = stored.report.reference
        reports.push({ index, msg, stored, ...(isMessageId(reference) ? { messageId: reference } : {}) })
      }
    })

    // reports without our reference: the provider-id index (providers that cannot echo it)
    yield* eachAtOnce(
      reports.filter((report) => report.messageId === undefined),
      (report) =>
        Effect.map(findMessageId(report.stored.provider, report.stored.report.providerMessageId), (found) => {
          if (Option.isSome(found)) report.messageId = found.value
        })
    )

    const located: Array<Located & { readonly messageId: MessageId }> = []
    const early: Array<Located> = []
    for (const report of reports) {
      const { messageId } = report
      if (messageId === undefined) early.push(report)
      else located.push({ ...report, messageId })
    }
    const outcomes = yield* recordOnMessages(
      located.map((report) => ({
        stored: report.stored,
        messageId: report.messageId,
        link: traceparentOf(report.msg)
      }))
    )
    for (let n = 0; n < located.length; n++) {
      const report = located[n]
      const outcome = outcomes[n]
      if (report === undefined || outcome === undefined || Either.isRight(outcome)) continue
      const error = outcome.left
      switch (error._tag) {
        case "NotYetDispatched":
          early.push(report)
          break
        case "ProviderMessageMismatch":
        case "MessageNotRequested":
          verdicts[report.index] = Verdict.Term({ reason: error.message })
          break
        default:
          verdicts[report.index] = Verdict.Nak({ delay: FAILURE_DELAY })
          yield* Effect.logError("cannot record a delivery report; it will come back", error.message).pipe(
            Effect.annotateLogs({ messageId: report.messageId, provider: report.stored.provider })
          )
      }
    }
    yield* eachAtOnce(early, (report) =>
      Effect.map(
        retryEarly(
          report.msg,
          report.stored.provider,
          report.stored.report.providerMessageId,
          report.messageId
        ),
        (verdict) => {
          verdicts[report.index] = verdict
        }
      )
    )
    return verdicts
  })

export const layer = (options: { readonly concurrency: number } = { concurrency: 1024 }) =>
  Layer.scopedDiscard(
    Effect.forkScoped(
      runBatchWorker(
        {
          stream: Streams.dlr,
          durable: "delivery-reports",
          filterSubject: "sms.dlr.>",
          concurrency: options.concurrency
        },
        handleDeliveryReports
      )
    )
  )
