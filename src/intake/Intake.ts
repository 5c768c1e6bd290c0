/**
 * The intake actor: turns each `SendSms` on `sms.commands.send` into a message stream and a work
 * item. A command is acked only once both are stored, so a crash in between redelivers it; the
 * deterministic message id makes that redelivery land on the same stream, never a second message.
 *
 * Batch-first: the commands the consumer has ready are parsed and decided by plain functions,
 * charged to quotas with one compare-and-set per client, appended all at once (one conditional
 * publish per new stream), and their work items published together; each command is settled by
 * its own outcome.
 */
import type { JsMsg } from "@nats-io/jetstream"
import { Clock, Duration, Effect, Either, Layer, Option } from "effect"
import { Clients } from "../clients/Clients.js"
import { type Charge, QUOTA_EXCEEDED_REASON } from "../clients/Quotas.js"
import { messageIdFor, type MessageId } from "../domain/Ids.js"
import type { MessageEvent } from "../domain/Message.js"
import { maskNumber } from "../domain/PhoneNumber.js"
import { parseSendSms, type SendSms } from "../domain/SendSms.js"
import { messageStream, phoneStream } from "../domain/StreamName.js"
import { EventStore, ExpectedRevision } from "../eventstore/EventStore.js"
import { toStoredFrom } from "../eventstore/MessageEvents.js"
import { Streams, Subjects } from "../nats/Topology.js"
import { infoEnabled, logMessageEvents } from "../observability/Logger.js"
import { quotaRejections, recordMessageEvents } from "../observability/Metrics.js"
import { type OpenSpan, startSpan, traceparentOf, tracing } from "../observability/Tracing.js"
import { InactiveNumbers } from "./InactiveNumbers.js"
import { eachAtOnce } from "../platform/AtOnce.js"
import { ack, runBatchWorker, Verdict } from "../nats/JetStreamWorker.js"
import { messageLimits } from "./MessageLimits.js"
import { load } from "../messages/MessageRepository.js"
import { loadPhone } from "../messages/PhoneRepository.js"
import { publishReject, type Reject } from "./Rejects.js"
import { firstProvider, liveRouteInput } from "../dispatch/Router.js"
import { publishWork, publishWorkItems, type WorkItem } from "../dispatch/WorkItem.js"
import { decideIntake, type IntakeDecision, requestedEvent } from "./IntakeDecision.js"

/**
 * A command whose step failed for the infrastructure comes back later, backing off with each
 * delivery: 2 s, 4 s, 8 s … up to 5 minutes. With `DEFAULT_MAX_DELIVERIES` that rides out an event
 * store outage of about an hour before the command is given up to `sms.rejects`; a command is
 * never redelivered without end (one that could never be stored once held an intake slot forever).
 */
export const failureDelay = (deliveryCount: number, base: Duration.Duration = Duration.seconds(2)) =>
  Duration.min(Duration.times(base, 2 ** Math.min(Math.max(deliveryCount - 1, 0), 20)), Duration.minutes(5))

/** Deliveries of one command before it is given up (see `failureDelay`). */
export const DEFAULT_MAX_DELIVERIES = 20

/** A command that parsed, on its way to becoming a message. */
interface Candidate {
  readonly index: number
  readonly msg: JsMsg
  readonly command: SendSms
  readonly messageId: MessageId
}

const rejectOf = (msg: JsMsg, field: string, reason: string): Reject => ({
  source: Subjects.send,
  field,
  reason,
  payload: msg.data,
  ref: `${Streams.commands}:${msg.seq}`
})

/** One charge per candidate: one compare-and-set per client of the batch (none without a registry). */
const chargeQuotas = (candidates: ReadonlyArray<Candidate>) =>
  Effect.gen(function* () {
    const registry = yield* Effect.serviceOption(Clients)
    const charges = new Map<Candidate, Charge>()
    if (Option.isNone(registry)) return charges
    const byClient = new Map<string, Array<Candidate>>()
    for (const candidate of candidates) {
      const list = byClient.get(candidate.command.clientId)
      if (list === undefined) byClient.set(candidate.command.clientId, [candidate])
      else list.push(candidate)
    }
    yield* eachAtOnce([...byClient], ([clientId, list]) =>
      Effect.map(
        registry.value.chargeMany(
          clientId,
          list.map((candidate) => candidate.messageId)
        ),
        (answers) => {
          list.forEach((candidate, i) => {
            const answer = answers[i]
            if (answer !== undefined) charges.set(candidate, answer)
          })
        }
      )
    )
    return charges
  })

/** The proof of an inactive number (the phone stream's revision), for the numbers the view flags. */
const inactiveProof = (to: string) =>
  Effect.map(loadPhone(to), (phone) =>
    phone.state.status === "inactive"
      ? `${phoneStream(to)} inactive since ${phone.state.since.toISOString()} (revision ${phone.revision}): ${phone.state.because.reason}`
      : undefined
  )

/** A command seen before. A crash may have come between its append and its work item: re-queue if untouched. */
const recover = (candidate: Candidate) =>
  Effect.gen(function* () {
    const existing = yield* load(candidate.messageId)
    if (existing.state.status !== "requested" || existing.revision !== 0) return
    const input = yield* liveRouteInput(existing.state.request.providers)
    const provider = firstProvider(input)
    if (provider === undefined) return
    // The first run's item again, named the same (JetStream drops it if that one was stored within
    // its duplicate window) but without the snapshot: past the window both may be queued, and only
    // the step that wrote a revision queues an item fresh at it (`FirstDeliveries` trusts a fresh
    // item's first delivery). This one reads the stream before any call.
    yield* publishWork({ messageId: candidate.messageId, provider, priorAttempts: 0 }, { repeats: 0 })
  })

export const handleCommands = (messages: ReadonlyArray<JsMsg>, backoffBase?: Duration.Duration) =>
  Effect.gen(function* () {
    const later = (msg: JsMsg) => Verdict.Nak({ delay: failureDelay(msg.info.deliveryCount, backoffBase) })
    const store = yield* EventStore
    const inactiveView = yield* Effect.serviceOption(InactiveNumbers)
    const verdicts: Array<Verdict> = messages.map(() => ack)
    const rejects: Array<{ readonly index: number; readonly reject: Reject }> = []
    const now = new Date(yield* Clock.currentTimeMillis)

    const candidates: Array<Candidate> = []
    messages.forEach((msg, index) => {
      const parsed = parseSendSms(msg.data, messageLimits)
      if (Either.isLeft(parsed)) {
        rejects.push({ index, reject: rejectOf(msg, parsed.left.field, parsed.left.reason) })
        verdicts[index] = Verdict.Term({ reason: `invalid SendSms: ${parsed.left.message}` })
        return
      }
      const command = parsed.right
      candidates.push({
        index,
        msg,
        command,
        messageId: messageIdFor(command.clientId, command.idempotencyKey)
      })
    })

    // issue 7: charged to the client's daily quota first; over it: rejected (sms.rejects) and Term
    const charges = yield* chargeQuotas(candidates)
    const admitted: Array<Candidate> = []
    for (const candidate of candidates) {
      const charge = charges.get(candidate)
      if (charge?._tag !== "Exhausted") {
        admitted.push(candidate)
        continue
      }
      yield* quotaRejections(candidate.command.clientId, "nats")
      yield* Effect.logWarning("SendSms over the daily quota: rejected").pipe(
        Effect.annotateLogs({
          messageId: candidate.messageId,
          clientId: candidate.command.clientId,
          to: maskNumber(candidate.command.to),
          trackingId: candidate.command.trackingId ?? candidate.messageId,
          limit: charge.limit
        })
      )
      rejects.push({
        index: candidate.index,
        reject: rejectOf(candidate.msg, "clientId", QUOTA_EXCEEDED_REASON)
      })
      verdicts[candidate.index] = Verdict.Term({
        reason: `${candidate.command.clientId}: ${QUOTA_EXCEEDED_REASON} (${charge.limit})`
      })
    }

    // the in-process view flags numbers that may be inactive; only those read their phone stream
    const flagged = admitted.filter(
      (candidate) => Option.isNone(inactiveView) || inactiveView.value.mayBeInactive(candidate.command.to)
    )
    const proofs = new Map<Candidate, string | undefined>()
    yield* eachAtOnce(flagged, (candidate) =>
      Effect.map(inactiveProof(candidate.command.to), (proof) => proofs.set(candidate, proof))
    )

    // while traces are recorded: a span per admitted command, its producer's child; the message's
    // later steps follow it (the work item's header, SmsRequested)
    const spans: ReadonlyArray<OpenSpan | undefined> | undefined = tracing()
      ? admitted.map((candidate) =>
          startSpan({
            name: "sms.intake",
            kind: "consumer",
            parent: traceparentOf(candidate.msg),
            startTime: now.getTime(),
            attributes: { "sms.message_id": candidate.messageId, "sms.client_id": candidate.command.clientId }
          })
        )
      : undefined
    const outcomes = new Map<Candidate, string>()

    const route = yield* liveRouteInput(undefined)
    const decisions = admitted.map((candidate, i) =>
      decideIntake(
        requestedEvent(candidate.command, candidate.messageId, now, spans?.[i]?.traceparent),
        firstProvider({ ...route, explicit: candidate.command.providers, random: Math.random() }),
        proofs.get(candidate)
      )
    )
    const appended = yield* store.appendMany(
      decisions.map((decision, i) => ({
        streamName: messageStream(admitted[i]?.messageId ?? ""),
        events: toStoredFrom(decision.events, 0),
        expected: ExpectedRevision.NoStream()
      }))
    )

    const queued: Array<{ readonly item: WorkItem; readonly origin: string; readonly traceparent?: string }> =
      []
    const queuedFor: Array<Candidate> = []
    const recorded: Array<MessageEvent> = []
    const duplicates: Array<Candidate> = []
    const recordedDecisions: Array<IntakeDecision> = []
    const failures: Array<string> = []
    admitted.forEach((candidate, i) => {
      const outcome = appended[i]
      const decision = decisions[i]
      if (outcome === undefined || decision === undefined) return
      // The stream held this very request already: another run's append (a conflict), or an earlier
      // run's found again (the same event id, not written now). A duplicate: `recover` queues its work
      // item, if one is due, without the snapshot; only the writing run queues it fresh.
      if (Either.isRight(outcome) ? !outcome.right.written : outcome.left._tag === "WrongExpectedRevision") {
        duplicates.push(candidate)
        if (spans !== undefined) outcomes.set(candidate, "duplicate")
        return
      }
      if (Either.isLeft(outcome)) {
        verdicts[candidate.index] = later(candidate.msg)
        failures.push(outcome.left.message)
        if (spans !== undefined) outcomes.set(candidate, "not_recorded")
        return
      }
      recorded.push(...decision.events)
      recordedDecisions.push(decision)
      if (spans !== undefined) outcomes.set(candidate, decision._tag === "Queue" ? "queued" : "refused")
      if (decision._tag === "Queue") {
        const traceparent = spans?.[i]?.traceparent
        queued.push({
          item: decision.work,
          origin: "intake",
          ...(traceparent === undefined ? {} : { traceparent })
        })
        queuedFor.push(candidate)
      }
    })
    for (const failure of failures) {
      yield* Effect.logError("cannot record a message; the command will come back", failure)
    }
    // one line per recorded event ("message requested", then "message refused" for a refusal),
    // built only when Info is logged (the level is asked once per batch)
    if (yield* infoEnabled) {
      yield* logMessageEvents(
        recordedDecisions.flatMap((decision) => {
          const request = decision.events[0]
          return request?._tag === "SmsRequested"
            ? [{ request, events: decision.events, refused: decision._tag === "Refuse" }]
            : []
        })
      )
    }
    yield* recordMessageEvents(recorded)

    const published = yield* publishWorkItems(queued)
    published.forEach((result, i) => {
      const candidate = queuedFor[i]
      // the stream is written: a redelivered command finds it and re-queues (see `recover`)
      if (result.status === "rejected" && candidate !== undefined) {
        verdicts[candidate.index] = later(candidate.msg)
        if (spans !== undefined) outcomes.set(candidate, "work_item_not_stored")
      }
    })
    if (spans !== undefined) {
      admitted.forEach((candidate, i) => {
        spans[i]?.end({ attributes: { "sms.intake.outcome": outcomes.get(candidate) ?? "unknown" } })
      })
    }

    yield* eachAtOnce(duplicates, (candidate) =>
      recover(candidate).pipe(
        Effect.zipRight(
          Effect.logInfo("duplicate SendSms").pipe(
            Effect.annotateLogs({
              messageId: candidate.messageId,
              trackingId: candidate.command.trackingId ?? candidate.messageId
            })
          )
        ),
        Effect.catchAllCause(() =>
          Effect.sync(() => {
            verdicts[candidate.index] = later(candidate.msg)
          })
        )
      )
    )

    // refusals are stored before the commands they refuse are terminated: nothing is dropped
    yield* eachAtOnce(rejects, ({ index, reject }) =>
      Effect.catchAll(publishReject(reject), () =>
        Effect.sync(() => {
          const msg = messages[index]
          if (msg !== undefined) verdicts[index] = later(msg)
        })
      )
    )
    return verdicts
  })

export interface IntakeOptions {
  readonly concurrency: number
  /** deliveries before a command that cannot be recorded is given up to `sms.rejects` */
  readonly maxDeliveries?: number
  /** the first redelivery's delay, doubling after (tests shorten it) */
  readonly backoffBase?: Duration.DurationInput
}

/** The last delivery ended without the command recorded: it lands on `sms.rejects`, never silently. */
const giveUp = (msg: JsMsg, why: string) =>
  publishReject({
    ...rejectOf(msg, "$", `not recorded after ${msg.info.deliveryCount} deliveries (${why}); send it again`),
    source: Subjects.send
  })

export const layer = (options: IntakeOptions = { concurrency: 1024 }) =>
  Layer.scopedDiscard(
    Effect.gen(function* () {
      // numbers inactive before this start must be known before the first command is decided
      const inactive = yield* Effect.serviceOption(InactiveNumbers)
      if (Option.isSome(inactive)) yield* inactive.value.ready
      yield* Effect.forkScoped(
        runBatchWorker(
          {
            stream: Streams.commands,
            durable: "intake",
            filterSubject: Subjects.send,
            concurrency: options.concurrency,
            maxDeliver: options.maxDeliveries ?? DEFAULT_MAX_DELIVERIES,
            onGiveUp: giveUp,
            ...(options.backoffBase === undefined ? {} : { failureDelay: options.backoffBase })
          },
          (messages) =>
            handleCommands(
              messages,
              options.backoffBase === undefined ? undefined : Duration.decode(options.backoffBase)
            )
        )
      )
    })
  )
