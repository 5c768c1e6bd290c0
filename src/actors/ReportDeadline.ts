/**
 * Report deadlines (issue 14): a dispatched message whose final delivery report never comes is
 * recorded `unknown` (`SmsStatusUnknown`) once its provider's `reportDeadlineMs` has passed, instead
 * of looking in flight for ever. Providers lose reports, and so can our own restarts.
 *
 * JetStream is the timer, as for retries (2.9 has neither per-message TTLs nor scheduled messages):
 * the `deadline-scheduler` reactor puts one check per `SmsDispatched` on `sms.deadlines.<provider>`
 * (work queue `SMS_DEADLINES`), and this worker naks it with a delay until the deadline, so a crash
 * or restart during the wait loses nothing. At the deadline the message goes through the command
 * handler: the decider records the outcome only if that dispatch is still waiting for its report.
 *
 * A check waiting on a delayed nak still holds one of the consumer's `max_ack_pending` slots, so it
 * looks early and then less and less often (30 s, 1 min, 2 min... at most an hour apart) and is acked
 * as soon as its report is in: a check lives about 30 s for the usual message, the whole deadline
 * only for one whose report is lost. Each delivery counts against `max_deliver`, so the consumer has
 * none (-1): a 72-hour wait is never given up.
 */
import type { JsMsg } from "@nats-io/jetstream"
import { Clock, Duration, Effect, Either, Layer } from "effect"
import { isMessageId, type MessageId } from "../domain/Ids.js"
import { jsonObject, dateFrom } from "../domain/PlainChecks.js"
import type { MessageCommand } from "../domain/Message.js"
import { messageStream } from "../domain/StreamName.js"
import { Nats, NatsError } from "../nats/Nats.js"
import { Streams, Subjects } from "../nats/Topology.js"
import { statusUnknown } from "../observability/Metrics.js"
import { DEFAULT_REPORT_DEADLINE_MS } from "../providers/ProviderConfig.js"
import { Providers } from "../providers/Providers.js"
import { ack, runBatchWorker, Verdict } from "./JetStreamWorker.js"
import { executeMany } from "./MessageRepository.js"

/** What `sms.deadlines.<provider>` carries: the dispatch whose report is awaited. */
export interface DeadlineCheck {
  readonly messageId: MessageId
  readonly provider: string
  readonly providerMessageId: string
  readonly dispatchedAt: Date
}

export const encodeDeadlineCheck = (check: DeadlineCheck): string =>
  JSON.stringify({
    messageId: check.messageId,
    provider: check.provider,
    providerMessageId: check.providerMessageId,
    dispatchedAt: check.dispatchedAt.toISOString()
  })

export const decodeDeadlineCheck = (text: string): DeadlineCheck | undefined => {
  const json = jsonObject(text)
  if (json === undefined) return undefined
  const { messageId, provider, providerMessageId } = json
  const dispatchedAt = dateFrom(json.dispatchedAt)
  if (
    !isMessageId(messageId) ||
    typeof provider !== "string" ||
    typeof providerMessageId !== "string" ||
    dispatchedAt === undefined
  ) {
    return undefined
  }
  return { messageId, provider, providerMessageId, dispatchedAt }
}

/**
 * Publishes checks, one per dispatch event: `Nats-Msg-Id` is the event's id, so a reactor batch
 * replayed after a crash is dropped by the duplicate window instead of queueing a second check.
 */
export const publishDeadlineChecks = (
  checks: ReadonlyArray<{ readonly check: DeadlineCheck; readonly eventId: string }>
) =>
  Effect.flatMap(Nats, ({ js }) =>
    Effect.tryPromise({
      try: () =>
        Promise.all(
          checks.map(({ check, eventId }) =>
            js.publish(Subjects.deadline(check.provider), encodeDeadlineCheck(check), { msgID: eventId })
          )
        ),
      catch: (cause) =>
        new NatsError({ reason: "RequestFailed", message: "cannot publish report-deadline checks", cause })
    })
  )

/** The first look: most reports are in by then, and the check is acked. */
const FIRST_LOOK_MS = 30_000
/** Looks then double apart, up to this: a lost report holds its slot, but costs a read an hour. */
const LONGEST_WAIT_MS = 60 * 60 * 1000
/** A check whose read or append failed comes back after this. */
const FAILURE_DELAY = Duration.seconds(2)

/** Until the next look: never past the deadline, so the outcome is recorded on time. */
const nextLook = (remainingMs: number, delivery: number): Verdict =>
  Verdict.Nak({
    delay: Duration.millis(
      Math.max(1, Math.min(remainingMs, FIRST_LOOK_MS * 2 ** Math.min(delivery - 1, 20), LONGEST_WAIT_MS))
    )
  })

interface Pending {
  readonly index: number
  readonly msg: JsMsg
  readonly check: DeadlineCheck
  readonly deadlineMs: number
  readonly remainingMs: number
}

export const handleDeadlineChecks = (messages: ReadonlyArray<JsMsg>) =>
  Effect.gen(function* () {
    const providers = yield* Providers
    const now = yield* Clock.currentTimeMillis
    const verdicts: Array<Verdict> = messages.map(() => ack)
    const toRead: Array<Pending> = []
    messages.forEach((msg, index) => {
      const check = decodeDeadlineCheck(msg.string())
      if (check === undefined) {
        verdicts[index] = Verdict.Term({ reason: "malformed report-deadline check" })
        return
      }
      // the deadline configured now (a provider no longer configured keeps the default)
      const deadlineMs = providers.get(check.provider)?.config.reportDeadlineMs ?? DEFAULT_REPORT_DEADLINE_MS
      const remainingMs = check.dispatchedAt.getTime() + deadlineMs - now
      // just dispatched: its report cannot be awaited yet, so wait without reading the message
      if (remainingMs > 0 && msg.info.deliveryCount === 1) verdicts[index] = nextLook(remainingMs, 1)
      else toRead.push({ index, msg, check, deadlineMs, remainingMs })
    })
    if (toRead.length === 0) return verdicts

    // One read per message, all at once; at the deadline the decider records the outcome only if
    // this dispatch still waits for its report, before it only the state is looked at.
    const outcomes = yield* executeMany(
      toRead.map(({ check, deadlineMs, remainingMs }) => ({
        streamName: messageStream(check.messageId),
        command: (): MessageCommand | undefined =>
          remainingMs > 0
            ? undefined
            : {
                _tag: "RecordStatusUnknown",
                provider: check.provider,
                providerMessageId: check.providerMessageId,
                deadlineMs,
                at: new Date(now)
              }
      }))
    )
    const unknownByProvider = new Map<string, number>()
    for (const [n, outcome] of outcomes.entries()) {
      const pending = toRead[n]
      if (pending === undefined) continue
      const { index, msg, check, remainingMs } = pending
      if (Either.isLeft(outcome)) {
        const error = outcome.left
        if (error._tag === "WrongExpectedRevision" || error._tag === "EventStoreError") {
          yield* Effect.logWarning("report-deadline check failed; it will come back", error.message).pipe(
            Effect.annotateLogs({ messageId: check.messageId, provider: check.provider })
          )
          verdicts[index] = Verdict.Nak({ delay: FAILURE_DELAY })
        } else {
          // a rule violation (the message was never requested) cannot change by waiting
          verdicts[index] = Verdict.Term({ reason: `report-deadline check refused: ${error._tag}` })
        }
        continue
      }
      const { state, appended } = outcome.right
      for (const event of appended) {
        if (event._tag === "SmsStatusUnknown") {
          unknownByProvider.set(event.provider, (unknownByProvider.get(event.provider) ?? 0) + 1)
          yield* Effect.logWarning("no delivery report within the report deadline: status unknown").pipe(
            Effect.annotateLogs({
              messageId: check.messageId,
              provider: check.provider,
              deadlineMs: event.deadlineMs
            })
          )
        }
      }
      // still waiting for this dispatch's report: look again later; otherwise the check is done
      const waiting =
        remainingMs > 0 &&
        state.status === "dispatched" &&
        state.providerMessageId === check.providerMessageId
      verdicts[index] = waiting ? nextLook(remainingMs, msg.info.deliveryCount) : ack
    }
    for (const [provider, n] of unknownByProvider) yield* statusUnknown(provider, n)
    return verdicts
  })

/**
 * Checks waiting at once, cluster-wide (the consumer's `max_ack_pending`): about 30 s of dispatches
 * plus the messages whose reports are late. Past it, checks wait in the stream and are looked at
 * later; the deadline is computed from the dispatch time, so none is missed, only seen later.
 */
const DEFAULT_CONCURRENCY = 50_000

/** The worker, in the `dlr` role. */
export const layer = (options: { readonly concurrency: number } = { concurrency: DEFAULT_CONCURRENCY }) =>
  Layer.scopedDiscard(
    Effect.forkScoped(
      runBatchWorker(
        {
          stream: Streams.deadlines,
          durable: "report-deadlines",
          filterSubject: "sms.deadlines.>",
          concurrency: options.concurrency,
          // every delayed nak is a delivery: a deadline of days must never run out of them
          maxDeliver: -1
        },
        handleDeadlineChecks
      )
    )
  )
