/**
 * The calls of `sms.v1.SmsGateway`, each an Effect (a Stream for `WatchMessage`) over the use cases
 * the HTTP API runs too (`messages/`): the same validation, quotas, scopes and keys, answered with
 * gRPC statuses (`Errors.ts`).
 */
import type * as grpc from "@grpc/grpc-js"
import { Effect, Either, Stream } from "effect"
import { isMessageId, type MessageId } from "../domain/Ids.js"
import { readHistory, readStatus } from "../messages/ReadMessage.js"
import { acceptSend, prepareSend } from "../messages/SendMessage.js"
import { authenticate, requireScope } from "./Auth.js"
import { fromUseCase, invalidArgument } from "./Errors.js"
import { dateOf, toEvent, toMessage, toTimestamp } from "./Messages.js"
import type {
  GetHistoryRequest,
  GetHistoryResponse,
  GetMessageRequest,
  Message,
  MessageUpdate,
  SendSmsRequest,
  SendSmsResponse,
  Timestamp,
  WatchMessageRequest
} from "./Proto.js"
import { watchMessage as watch } from "./Watch.js"

const messageIdOf = (raw: string | undefined) =>
  raw !== undefined && isMessageId(raw)
    ? Effect.succeed<MessageId>(raw)
    : Effect.fail(invalidArgument("message_id", "must be a message id, a UUID as SendSms answers it"))

const dateIn = (field: string, timestamp: Timestamp | undefined) => {
  if (timestamp === undefined) return Effect.succeed(undefined)
  const date = dateOf(timestamp)
  return date === undefined
    ? Effect.fail(invalidArgument(field, "must be a time from year 1 to 9999, nanos from 0 to 999999999"))
    : Effect.succeed(date)
}

export const sendSms = (request: SendSmsRequest, metadata: grpc.Metadata) =>
  Effect.gen(function* () {
    const principal = yield* requireScope(yield* authenticate(metadata), "client", "admin")
    const validUntil = yield* dateIn("valid_until", request.validUntil)
    // the HTTP API's body, field for field: the one validator names what is wrong
    const prepared = prepareSend({
      clientId: principal.clientId,
      idempotencyKey: request.idempotencyKey,
      fields: {
        to: request.to,
        body: request.body,
        from: request.from,
        providers: request.providers,
        validUntil: validUntil?.toISOString(),
        metadata: request.metadata,
        trackingId: request.trackingId
      },
      traceparent: metadata.get("traceparent")[0]
    })
    if (Either.isLeft(prepared)) return yield* fromUseCase(prepared.left)
    const { command, messageId, trackingId } = prepared.right
    yield* Effect.annotateLogsScoped({ messageId, trackingId, clientId: command.clientId })
    const reply = yield* acceptSend(prepared.right, "grpc").pipe(Effect.catchAll(fromUseCase))
    return { messageId: reply.messageId, duplicate: reply.duplicate, trackingId } satisfies SendSmsResponse
  }).pipe(Effect.scoped)

export const getMessage = (request: GetMessageRequest, metadata: grpc.Metadata) =>
  Effect.gen(function* () {
    const principal = yield* authenticate(metadata)
    const messageId = yield* messageIdOf(request.messageId)
    const asOf = yield* dateIn("as_of", request.asOf)
    const view = yield* readStatus(principal, messageId, asOf).pipe(Effect.catchAll(fromUseCase))
    return toMessage(view) satisfies Message
  })

export const getHistory = (request: GetHistoryRequest, metadata: grpc.Metadata) =>
  Effect.gen(function* () {
    const principal = yield* authenticate(metadata)
    const messageId = yield* messageIdOf(request.messageId)
    const events = yield* readHistory(principal, messageId).pipe(Effect.catchAll(fromUseCase))
    return { messageId, events: events.map(toEvent) } satisfies GetHistoryResponse
  })

export const watchMessage = (request: WatchMessageRequest, metadata: grpc.Metadata) =>
  Stream.unwrap(
    Effect.gen(function* () {
      const principal = yield* authenticate(metadata)
      const messageId = yield* messageIdOf(request.messageId)
      const after = request.afterRevision
      // -1: before the first event, so the whole history comes first
      if (after !== undefined && (!Number.isInteger(after) || after < -1))
        return yield* invalidArgument("after_revision", "must be a revision received (0 or more), or -1")
      return watch(principal, messageId, after).pipe(
        Stream.catchAll((error) =>
          error._tag === "GrpcError" ? Stream.fail(error) : Stream.fromEffect(fromUseCase(error))
        ),
        Stream.map(
          (update): MessageUpdate => ({
            revision: update.revision,
            eventType: update.eventType,
            recordedAt: toTimestamp(update.recordedAt),
            message: toMessage(update.view),
            final: update.final
          })
        )
      )
    })
  )
