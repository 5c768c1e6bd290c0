/**
 * Report deadlines (issue 14): a dispatched message whose final delivery report never comes is
 * recorded `unknown` (`SmsStatusUnknown`) once its provider's `reportDeadlineMs` has passed, instead
 * of looking in flight for ever. Providers lose reports, and so can our own restarts.
 *
 * JetStream is the timer (2.9 has neither per-message TTLs nor scheduled messages): the
 * `deadline-scheduler` reactor puts one check per batch of dispatches on `sms.deadlines.<provider>`
 * (work queue `SMS_DEADLINES`), and this worker naks each check with its remaining delay, once, so a
 * crash or restart during the wait loses nothing. One provider's checks come in dispatch order and
 * share one deadline, so each provider has its own consumer with a few checks in hand: the ones
 * behind them are due later still and wait in the stream, holding nothing. At the deadline every
 * message of the check goes through the command handler, and the decider records the outcome only
 * where that dispatch is still waiting for its report. Nothing is read before the deadline, and
 * nothing is published per message: one check a batch kept the hot path's cost out of sight (a check
 * and a look per message cost about 3 NATS messages and 0.4 ms of gateway CPU per SMS in the bench).
 *
 * A provider whose API can tell a message's status (Twilio, Vonage: `ProviderAdapter.queryStatus`)
 * is asked first, for the dispatches that still wait only (their messages read all at once, the
 * queries a few at a time): a final answer is recorded as the report it stands for, marked
 * `source: "status_query"`; a status that is not final yet, or no usable answer, is `unknown` as
 * without a query.
 */
import type { JsMsg } from "@nats-io/jetstream"
import { Clock, Duration, Effect, Either, Layer } from "effect"
import { isMessageId, type MessageId } from "../domain/Ids.js"
import { jsonObject, dateFrom } from "../domain/PlainChecks.js"
import type { MessageCommand, MessageState } from "../domain/Message.js"
import { messageStream } from "../domain/StreamName.js"
import { Nats, NatsError } from "../nats/Nats.js"
import { Streams, Subjects } from "../nats/Topology.js"
import { infoEnabled, logMessageEvents, type RecordedMessage } from "../observability/Logger.js"
import { reportStatusQueries, statusUnknown } from "../observability/Metrics.js"
import type { DeliveryReport, QueriedStatus, StatusQueryError } from "../providers/ProviderAdapter.js"
import { DEFAULT_REPORT_DEADLINE_MS } from "../providers/ProviderConfig.js"
import { Providers } from "../providers/Providers.js"
import type { Loaded } from "../platform/CommandHandler.js"
import { ack, runBatchWorker, Verdict } from "../nats/JetStreamWorker.js"
import { executeMany, load } from "../messages/MessageRepository.js"

/** A dispatch whose report is awaited. */
export interface DeadlineCheck {
  readonly messageId: MessageId
  readonly provider: string
  readonly providerMessageId: string
  readonly dispatchedAt: Date
}

const plainCheck = (check: DeadlineCheck) => ({
  messageId: check.messageId,
  provider: check.provider,
  providerMessageId: check.providerMessageId,
  dispatchedAt: check.dispatchedAt.toISOString()
})

const checkFrom = (json: Readonly<Record<string, unknown>> | undefined): DeadlineCheck | undefined => {
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

/** What `sms.deadlines.<provider>` carries: one provider's dispatches of one projector batch. */
export const encodeDeadlineChecks = (checks: ReadonlyArray<DeadlineCheck>): string =>
  JSON.stringify({ checks: checks.map(plainCheck) })

export const decodeDeadlineChecks = (text: string): ReadonlyArray<DeadlineCheck> | undefined => {
  const json = jsonObject(text)
  if (json === undefined || !Array.isArray(json.checks) || json.checks.length === 0) return undefined
  const checks: Array<DeadlineCheck> = []
  for (const entry of json.checks as ReadonlyArray<unknown>) {
    const check = checkFrom(
      typeof entry === "object" && entry !== null ? (entry as Record<string, unknown>) : undefined
    )
    if (check === undefined) return undefined
    checks.push(check)
  }
  return checks
}

/**
 * Publishes a batch's checks, one message per provider: `Nats-Msg-Id` names the batch's first and
 * last dispatch events, so a reactor batch replayed after a crash is dropped by the duplicate window
 * (a replay cut differently queues a second check for some messages: harmless, the decider records
 * `unknown` once).
 */
export const publishDeadlineChecks = (
  checks: ReadonlyArray<{ readonly check: DeadlineCheck; readonly eventId: string }>
) =>
  Effect.flatMap(Nats, ({ publish }) => {
    const byProvider = new Map<string, Array<{ readonly check: DeadlineCheck; readonly eventId: string }>>()
    for (const entry of checks) {
      const list = byProvider.get(entry.check.provider)
      if (list === undefined) byProvider.set(entry.check.provider, [entry])
      else list.push(entry)
    }
    return Effect.tryPromise({
      try: () =>
        Promise.all(
          [...byProvider].map(([provider, list]) =>
            publish(Subjects.deadline(provider), encodeDeadlineChecks(list.map((e) => e.check)), {
              msgID: `${list[0]?.eventId}..${list[list.length - 1]?.eventId}`
            })
          )
        ),
      catch: (cause) =>
        new NatsError({ reason: "RequestFailed", message: "cannot publish report-deadline checks", cause })
    })
  })

/** A check whose read or append failed comes back after this. */
const FAILURE_DELAY = Duration.seconds(2)

interface Due {
  readonly index: number
  readonly check: DeadlineCheck
  readonly deadlineMs: number
}

/** Status queries in flight at once, per batch of checks: a provider's API is not ours to flood. */
const QUERY_CONCURRENCY = 16

/** Whether this dispatch still waits for its report (the one case a query, or an unknown, is for). */
const waitsForReport = (state: MessageState, check: DeadlineCheck): boolean =>
  state.status === "dispatched" && state.providerMessageId === check.providerMessageId

/** A final answer to a status query, as the delivery report it stands for. */
const queriedReportCommand = (check: DeadlineCheck, report: DeliveryReport, at: Date): MessageCommand => ({
  _tag: "RecordDeliveryReport",
  provider: check.provider,
  providerMessageId: check.providerMessageId,
  outcome:
    report.outcome === "delivered"
      ? { _tag: "Delivered" }
      : { _tag: "Failed", reason: report.failureReason ?? "undeliverable", code: report.code },
  rawStatus: report.rawStatus,
  at,
  source: "status_query"
})

type QueryOutcome = "delivered" | "failed" | "pending" | "error"

const queryOutcome = (answer: Either.Either<QueriedStatus, StatusQueryError>): QueryOutcome =>
  Either.isLeft(answer)
    ? "error"
    : answer.right._tag === "NotFinal"
      ? "pending"
      : answer.right.report.outcome === "delivered"
        ? "delivered"
        : "failed"

/** What a query answered, for the log line of a message recorded unknown. */
const queryNote = (answer: Either.Either<QueriedStatus, StatusQueryError>) =>
  Either.isLeft(answer)
    ? `error ${answer.left.reason}: ${answer.left.message}`
    : answer.right._tag === "NotFinal"
      ? answer.right.rawStatus
      : answer.right.report.rawStatus

/** A due check, with what was learnt of it before the command: its message's state, a query's answer. */
interface Looked extends Due {
  /** the state read for the query, handed on to the command handler (no second read) */
  known?: Loaded<MessageState>
  answer?: Either.Either<QueriedStatus, StatusQueryError>
  /** the read failed: the check comes back, and the message is asked then */
  unread?: boolean
}

/**
 * Asks the providers that can say (`queryStatus`) for the status of every due dispatch that still
 * waits for its report: first one read per message, all at once, then the queries, a few at a time.
 */
const queryWaiting = (due: ReadonlyArray<Due>) =>
  Effect.gen(function* () {
    const providers = yield* Providers
    const looked: Array<Looked> = due.map((entry) => ({ ...entry }))
    const queryOf = (entry: Looked) => providers.get(entry.check.provider)?.adapter.queryStatus
    const queryable = looked.filter((entry) => queryOf(entry) !== undefined)
    if (queryable.length === 0) return looked
    yield* Effect.forEach(
      queryable,
      (entry) =>
        Effect.match(load(entry.check.messageId), {
          onFailure: () => {
            entry.unread = true
          },
          onSuccess: ({ state, revision }) => {
            entry.known = { state, revision }
          }
        }),
      { concurrency: "unbounded", discard: true }
    )
    const waiting = queryable.filter(
      (entry) => entry.known !== undefined && waitsForReport(entry.known.state, entry.check)
    )
    yield* Effect.forEach(
      waiting,
      (entry) => {
        const query = queryOf(entry)
        if (query === undefined) return Effect.void
        return Effect.map(Effect.either(query(entry.check.providerMessageId)), (answer) => {
          entry.answer = answer
        })
      },
      { concurrency: QUERY_CONCURRENCY, discard: true }
    )
    const counted = new Map<string, { provider: string; outcome: QueryOutcome; n: number }>()
    for (const { check, answer } of waiting) {
      if (answer === undefined) continue
      const outcome = queryOutcome(answer)
      const key = `${check.provider}\u0000${outcome}`
      const known = counted.get(key)
      if (known === undefined) counted.set(key, { provider: check.provider, outcome, n: 1 })
      else known.n++
    }
    for (const { provider, outcome, n } of counted.values()) yield* reportStatusQueries(provider, outcome, n)
    return looked
  })

export const handleDeadlineChecks = (messages: ReadonlyArray<JsMsg>) =>
  Effect.gen(function* () {
    const providers = yield* Providers
    const now = yield* Clock.currentTimeMillis
    const verdicts: Array<Verdict> = messages.map(() => ack)
    const due: Array<Due> = []
    messages.forEach((msg, index) => {
      const checks = decodeDeadlineChecks(msg.string())
      if (checks === undefined) {
        verdicts[index] = Verdict.Term({ reason: "malformed report-deadline check" })
        return
      }
      // the deadline configured now (a provider no longer configured keeps the default)
      const deadlineOf = (check: DeadlineCheck) =>
        providers.get(check.provider)?.config.reportDeadlineMs ?? DEFAULT_REPORT_DEADLINE_MS
      let latest = 0
      for (const check of checks) latest = Math.max(latest, check.dispatchedAt.getTime() + deadlineOf(check))
      // not due yet: back once, when the last of its dispatches reaches its deadline
      if (latest > now) verdicts[index] = Verdict.Nak({ delay: Duration.millis(latest - now) })
      else for (const check of checks) due.push({ index, check, deadlineMs: deadlineOf(check) })
    })
    if (due.length === 0) return verdicts

    const looked = yield* queryWaiting(due)
    for (const { check, index, unread } of looked) {
      if (unread !== true) continue
      yield* Effect.logWarning("report-deadline check: cannot read the message; it will come back").pipe(
        Effect.annotateLogs({ messageId: check.messageId, provider: check.provider })
      )
      verdicts[index] = Verdict.Nak({ delay: FAILURE_DELAY })
    }
    // Why a failed query (timeout, 5xx, throttled, unknown id, refused credentials) records unknown
    // now instead of bringing the check back for another try: the deadline has passed, and its point
    // is that no message looks in flight for ever. `unknown` is not final: a report that comes later
    // still wins. Retrying would hold a whole check (a batch of dispatches) on one provider's outage,
    // for an answer that, after a deadline of days, rarely differs. The answer is on the unknown's log line.
    const applied = looked.filter((entry) => entry.unread !== true)
    const requests = applied.map(({ check, deadlineMs, known, answer }) => {
      const final = answer !== undefined && Either.isRight(answer) && answer.right._tag === "Final"
      const report = final ? answer.right.report : undefined
      const command =
        report === undefined
          ? (): MessageCommand => ({
              _tag: "RecordStatusUnknown",
              provider: check.provider,
              providerMessageId: check.providerMessageId,
              deadlineMs,
              at: new Date(now)
            })
          : // recorded as its report only while this dispatch still waits for one: a report that
            // came meanwhile stays the record, never contradicted by our query
            (current: MessageState) =>
              waitsForReport(current, check) ? queriedReportCommand(check, report, new Date(now)) : undefined
      return {
        streamName: messageStream(check.messageId),
        command,
        ...(known === undefined ? {} : { known })
      }
    })

    // One read per message not read above, all at once; the decider records the outcome only where
    // this dispatch still waits for its report, and refuses it for every message whose report came.
    const outcomes = yield* executeMany(requests)
    const unknownByProvider = new Map<string, number>()
    const logged: Array<RecordedMessage> | undefined = (yield* infoEnabled) ? [] : undefined
    for (const [n, outcome] of outcomes.entries()) {
      const entry = applied[n]
      if (entry === undefined) continue
      const { index, check, answer } = entry
      if (Either.isLeft(outcome)) {
        const error = outcome.left
        if (error._tag === "WrongExpectedRevision" || error._tag === "EventStoreError") {
          yield* Effect.logWarning("report-deadline check failed; it will come back", error.message).pipe(
            Effect.annotateLogs({ messageId: check.messageId, provider: check.provider })
          )
          verdicts[index] = Verdict.Nak({ delay: FAILURE_DELAY })
        }
        // a rule violation is the usual answer: the report came (or the message never was)
        continue
      }
      const { appended, state } = outcome.right
      for (const event of appended) {
        if (event._tag !== "SmsStatusUnknown") continue
        unknownByProvider.set(event.provider, (unknownByProvider.get(event.provider) ?? 0) + 1)
        yield* Effect.logWarning("no delivery report within the report deadline: status unknown").pipe(
          Effect.annotateLogs({
            messageId: check.messageId,
            provider: check.provider,
            deadlineMs: event.deadlineMs,
            ...(answer === undefined ? {} : { statusQuery: queryNote(answer) })
          })
        )
      }
      // the outcome a status query found: a line per event, as a report's would have
      const found = appended.filter((event) => event._tag === "SmsDelivered" || event._tag === "SmsFailed")
      if (logged !== undefined && found.length > 0 && state.status !== "none") {
        logged.push({ request: state.request, events: found })
      }
    }
    for (const [provider, n] of unknownByProvider) yield* statusUnknown(provider, n)
    if (logged !== undefined && logged.length > 0) {
      yield* logMessageEvents(logged).pipe(Effect.annotateLogs({ source: "status_query" }))
    }
    return verdicts
  })

/**
 * Checks in hand per provider: each waits on one delayed nak until due; those behind it are due
 * later (dispatch order, one deadline), so they wait in the stream without holding anything.
 */
const CHECKS_IN_HAND = 64

/** The workers, one per configured provider, in the `dlr` role. */
export const layer = Layer.scopedDiscard(
  Effect.gen(function* () {
    const providers = yield* Providers
    for (const provider of providers.all) {
      const id = provider.config.id
      yield* Effect.forkScoped(
        runBatchWorker(
          {
            stream: Streams.deadlines,
            durable: `report-deadlines-${id}`,
            filterSubject: Subjects.deadline(id),
            concurrency: CHECKS_IN_HAND,
            // a delayed nak is a delivery: a deadline of days must never run out of them
            maxDeliver: -1
          },
          handleDeadlineChecks
        )
      )
    }
  })
)
