/**
 * Sending a message for an authenticated client: the one path of the HTTP and gRPC APIs.
 *
 * The command is built exactly as a NATS producer would publish it (so every ingress shares one
 * validator, `parseSendSms`), charged to the client's daily quota, then stored in `SMS_COMMANDS`
 * (`storeCommand`): answered only once JetStream holds it, and the intake does the rest. Split in two
 * so a transport can act between the steps (the HTTP API sets `X-Tracking-Id` on every answer after
 * the validation, refusals included).
 */
import { Effect, Either } from "effect"
import { messageLimits } from "../intake/MessageLimits.js"
import { storeCommand } from "../intake/SendService.js"
import { Clients } from "../clients/Clients.js"
import { messageIdFor, type MessageId } from "../domain/Ids.js"
import { maskNumber } from "../domain/PhoneNumber.js"
import { type InvalidSendSms, parseSendSms, type SendSms } from "../domain/SendSms.js"
import { messageAccepted, quotaRejections } from "../observability/Metrics.js"
import { tracing, validTraceparent } from "../observability/Tracing.js"
import { QuotaUsedUp, unavailable } from "./Errors.js"

export interface SendRequest {
  /** the sending client: the key's, never one the request names */
  readonly clientId: string
  /** `to`, `body`, and optionally `from`, `providers`, `validUntil`, `metadata`, `trackingId` (JSON values) */
  readonly fields: Readonly<Record<string, unknown>>
  readonly idempotencyKey: string | undefined
  /** wins over `fields.trackingId` (the HTTP API's `X-Tracking-Id` header) */
  readonly trackingId?: string | undefined
  /** the caller's W3C trace context (a `traceparent` header or metadata), carried with the command */
  readonly traceparent?: unknown
}

export interface PreparedSend {
  readonly command: SendSms
  /** the command's JSON, stored as it is */
  readonly raw: Uint8Array
  readonly messageId: MessageId
  /** the command's tracking id, else the message id */
  readonly trackingId: string
  /** the caller's trace context, when valid and traces are recorded */
  readonly traceparent?: string | undefined
}

const utf8 = new TextEncoder()

/** The validated command, or the first field wrong (`InvalidSendSms` names it in the NATS contract's terms). */
export const prepareSend = (request: SendRequest): Either.Either<PreparedSend, InvalidSendSms> => {
  const raw = utf8.encode(
    JSON.stringify({
      ...request.fields,
      trackingId: request.trackingId ?? request.fields.trackingId,
      clientId: request.clientId,
      idempotencyKey: request.idempotencyKey
    })
  )
  return Either.map(parseSendSms(raw, messageLimits), (command) => {
    const messageId = messageIdFor(command.clientId, command.idempotencyKey)
    return {
      command,
      raw,
      messageId,
      trackingId: command.trackingId ?? messageId,
      ...(tracing() ? { traceparent: validTraceparent(request.traceparent) } : {})
    }
  })
}

/** The metrics' name for where a message came in. */
type Source = Parameters<typeof messageAccepted>[0]

/**
 * Charges the quota, then stores the command; a duplicate (the same idempotency key again) is
 * charged once and answered with the first one's id.
 */
export const acceptSend = (prepared: PreparedSend, source: Source) =>
  Effect.gen(function* () {
    const { command } = prepared
    const charge = yield* (yield* Clients)
      .charge(command.clientId, prepared.messageId)
      .pipe(Effect.mapError(unavailable("the quota store")))
    if (charge._tag === "Exhausted") {
      yield* quotaRejections(command.clientId, source)
      yield* Effect.logWarning("message refused: daily quota exceeded").pipe(
        Effect.annotateLogs({ to: maskNumber(command.to), limit: charge.limit })
      )
      return yield* new QuotaUsedUp({
        clientId: command.clientId,
        limit: charge.limit,
        retryAfterSeconds: charge.retryAfterSeconds
      })
    }
    // answered only once JetStream holds the command (its PubAck): the intake does the rest
    const reply = yield* storeCommand(command, prepared.raw, prepared.traceparent).pipe(
      Effect.mapError(unavailable("the command store"))
    )
    yield* messageAccepted(source, reply.duplicate)
    yield* Effect.logInfo(reply.duplicate ? "duplicate message request" : "message accepted").pipe(
      Effect.annotateLogs({ to: maskNumber(command.to), duplicate: reply.duplicate })
    )
    return { messageId: reply.messageId, duplicate: reply.duplicate }
  })
