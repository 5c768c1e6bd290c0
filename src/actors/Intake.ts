/**
 * The intake actor: turns each `SendSms` on `sms.commands.send` into a message stream and a work
 * item. The command is acked only once both are stored, so a crash in between redelivers it; the
 * deterministic message id makes that redelivery land on the same stream, never a second message.
 */
import { messageLimits } from "./MessageLimits.js"
import type { JsMsg } from "@nats-io/jetstream"
import { Clock, Effect, Either, Layer } from "effect"
import { withinQuota } from "../clients/IntakeQuota.js"
import { messageIdFor, type MessageId } from "../domain/Ids.js"
import {
  decide,
  evolve,
  type Fail,
  initialState,
  type MessageEvent,
  SmsRequested
} from "../domain/Message.js"
import { maskNumber } from "../domain/PhoneNumber.js"
import { segmentsOf } from "../domain/Segments.js"
import { parseSendSms, type SendSms } from "../domain/SendSms.js"
import { messageStream, phoneStream } from "../domain/StreamName.js"
import { EventStore, ExpectedRevision } from "../eventstore/EventStore.js"
import { toStoredFrom } from "../eventstore/MessageEvents.js"
import { Streams, Subjects } from "../nats/Topology.js"
import { ack, runWorker, Verdict } from "./JetStreamWorker.js"
import { load } from "./MessageRepository.js"
import { loadPhone } from "./PhoneRepository.js"
import { recordMessageEvents } from "../observability/Metrics.js"
import { publishReject } from "./Rejects.js"
import { routeFirst } from "./Router.js"
import { publishWork, WorkItem } from "./WorkItem.js"

export interface Accepted {
  readonly messageId: MessageId
  readonly duplicate: boolean
}

const requestedEvent = (command: SendSms, messageId: MessageId, now: Date) => {
  const { encoding, segments } = segmentsOf(command.body)
  return new SmsRequested(
    {
      messageId,
      clientId: command.clientId,
      idempotencyKey: command.idempotencyKey,
      to: command.to,
      from: command.from,
      body: command.body,
      encoding,
      segments,
      providers: command.providers,
      validUntil: command.validUntil,
      metadata: command.metadata,
      trackingId: command.trackingId,
      requestedAt: now
      // validated as a command already: re-validating the event cost as much as the whole decision
    },
    { disableValidation: true }
  )
}

/** The first hop of a requested message: its work item, or none when no provider of it is configured. */
const firstWorkItem = (requested: SmsRequested, priorAttempts = 0) =>
  Effect.map(routeFirst(requested.providers), (provider) =>
    provider === undefined
      ? undefined
      : new WorkItem({
          messageId: requested.messageId,
          provider,
          priorAttempts,
          trackingId: requested.trackingId
        })
  )

/**
 * Records a valid command and queues its first provider call. (Per-message paths use
 * `fnUntraced`: no tracer is exported, and a span per call cost ~30 µs of CPU each.) Idempotent: a command seen before
 * answers with the existing id and only re-queues the work if the first attempt never started.
 */
export const accept = Effect.fnUntraced(function* (command: SendSms) {
  const store = yield* EventStore
  const messageId = messageIdFor(command.clientId, command.idempotencyKey)
  const now = new Date(yield* Clock.currentTimeMillis)
  const requested = requestedEvent(command, messageId, now)
  const phone = yield* loadPhone(command.to)
  // an inactive number is refused on the record (the phone stream's revision proves why), unsent
  const refusal: Fail | undefined =
    phone.state.status === "inactive"
      ? {
          _tag: "Fail",
          reason: "recipient_inactive",
          permanent: true,
          detail: `${phoneStream(command.to)} inactive since ${phone.state.since.toISOString()} (revision ${phone.revision}): ${phone.state.because.reason}`,
          at: now
        }
      : undefined
  const work = refusal === undefined ? yield* firstWorkItem(requested) : undefined
  const noProvider: Fail = {
    _tag: "Fail",
    reason: "no_provider",
    permanent: true,
    detail: `none of the providers [${command.providers?.join(", ") ?? ""}] is configured`,
    at: now
  }

  const events: Array<MessageEvent> = [
    ...(yield* decide({ _tag: "Request", event: requested }, initialState))
  ]
  if (work === undefined) {
    events.push(...(yield* decide(refusal ?? noProvider, events.reduce(evolve, initialState))))
  }

  const appended = yield* store
    .append(messageStream(messageId), toStoredFrom(events, 0), ExpectedRevision.NoStream())
    .pipe(
      Effect.as(true),
      Effect.catchTag("WrongExpectedRevision", () => Effect.succeed(false))
    )
  if (appended) {
    yield* recordMessageEvents(events)
    if (work !== undefined) yield* publishWork(work, "intake")
    return { messageId, duplicate: false } satisfies Accepted
  }

  // Seen before. A crash may have come between its append and its work item: re-queue if untouched.
  const existing = yield* load(messageId)
  if (existing.state.status === "requested") {
    const retry = yield* firstWorkItem(existing.state.request)
    if (retry !== undefined) yield* publishWork(retry, "intake")
  }
  return { messageId, duplicate: true } satisfies Accepted
})

export const handleCommand = (msg: JsMsg) =>
  Either.match(parseSendSms(msg.data, messageLimits), {
    onLeft: (invalid) =>
      publishReject({
        source: Subjects.send,
        field: invalid.field,
        reason: invalid.reason,
        payload: msg.data,
        ref: `${Streams.commands}:${msg.seq}`
      }).pipe(Effect.as(Verdict.Term({ reason: `invalid SendSms: ${invalid.message}` }))),
    onRight: (command) =>
      // issue 7: charged to the client's daily quota first; over it: rejected (sms.rejects) and Term
      withinQuota(
        command,
        msg.data,
        `${Streams.commands}:${msg.seq}`,
        accept(command).pipe(
          Effect.tap(({ messageId, duplicate }) =>
            Effect.logInfo(duplicate ? "duplicate SendSms" : "message requested").pipe(
              Effect.annotateLogs({
                messageId,
                to: maskNumber(command.to),
                trackingId: command.trackingId ?? messageId
              })
            )
          ),
          Effect.as(ack)
        )
      )
  })

export interface IntakeOptions {
  readonly concurrency: number
}

export const layer = (options: IntakeOptions = { concurrency: 256 }) =>
  Layer.scopedDiscard(
    Effect.forkScoped(
      runWorker(
        {
          stream: Streams.commands,
          durable: "intake",
          filterSubject: Subjects.send,
          concurrency: options.concurrency
        },
        handleCommand
      )
    )
  )
