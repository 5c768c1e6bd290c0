/**
 * `sms.requests.send`: a NATS service (discoverable with `$SRV.*`, with stats) for producers that
 * want the message id back. It validates, stores the command in `SMS_COMMANDS` exactly as a
 * JetStream producer would, and answers `{messageId, duplicate}`, or `{error: {field, reason}}`
 * with the command stored on `sms.rejects`.
 */
import { Clients } from "../clients/Clients.js"
import { QUOTA_EXCEEDED_REASON } from "../clients/Quotas.js"
import { quotaRejections } from "../observability/Metrics.js"
import { traceparentOf } from "../observability/Tracing.js"
import { messageLimits } from "./MessageLimits.js"
import { Svcm } from "@nats-io/services"
import { Effect, Either, Layer, Option, Runtime } from "effect"
import { messageIdFor } from "../domain/Ids.js"
import { parseSendSms, type SendSms } from "../domain/SendSms.js"
import { messageStream } from "../domain/StreamName.js"
import { EventStore, type EventStoreError } from "../eventstore/EventStore.js"
import { Nats, NatsError } from "../nats/Nats.js"
import { Subjects } from "../nats/Topology.js"
import { publishReject } from "./Rejects.js"

/** JetStream's dedupe id for a command: the same for every retry of one idempotency key. */
export const commandMsgId = (command: Pick<SendSms, "clientId" | "idempotencyKey">) =>
  `${command.clientId}:${command.idempotencyKey}`

/**
 * Stores a validated command in `SMS_COMMANDS` (also the HTTP ingress's path) and answers its id;
 * `traceparent`, the caller's trace context, goes in the command's header as a producer's would.
 */
export const storeCommand = Effect.fn("SendService.storeCommand")(function* (
  command: SendSms,
  raw: Uint8Array,
  traceparent?: string
) {
  const { publishThisTurn } = yield* Nats
  const store = yield* EventStore
  const messageId = messageIdFor(command.clientId, command.idempotencyKey)
  // checked before publishing: afterwards the intake may already have created the stream
  const seenBefore = (yield* store.read(messageStream(messageId))).length > 0
  const ack = yield* Effect.tryPromise({
    // one command per request: this turn's leave in one socket write
    try: () => publishThisTurn(Subjects.send, raw, { msgID: commandMsgId(command), traceparent }),
    catch: (cause) => new NatsError({ reason: "RequestFailed", message: "cannot store the command", cause })
  })
  return { messageId, duplicate: seenBefore || ack.duplicate }
})

export type SendReply =
  | { readonly messageId: string; readonly duplicate: boolean }
  | { readonly error: { readonly field: string; readonly reason: string } }

export const answer = (
  raw: Uint8Array,
  traceparent?: string
): Effect.Effect<SendReply, NatsError | EventStoreError, Nats | EventStore> =>
  Either.match(parseSendSms(raw, messageLimits), {
    onLeft: (invalid) =>
      publishReject({
        source: Subjects.sendRequest,
        field: invalid.field,
        reason: invalid.reason,
        payload: raw
      }).pipe(Effect.as({ error: { field: invalid.field, reason: invalid.reason } })),
    onRight: (command) =>
      Effect.gen(function* () {
        // charged here, as on HTTP, so a requester over its quota gets no id for a message that will not exist
        const registry = yield* Effect.serviceOption(Clients)
        if (Option.isSome(registry)) {
          const charge = yield* registry.value.charge(
            command.clientId,
            messageIdFor(command.clientId, command.idempotencyKey)
          )
          if (charge._tag === "Exhausted") {
            yield* quotaRejections(command.clientId, "nats")
            return { error: { field: "clientId", reason: QUOTA_EXCEEDED_REASON } } satisfies SendReply
          }
        }
        return yield* storeCommand(command, raw, traceparent)
      })
  })

export const layer = Layer.scopedDiscard(
  Effect.gen(function* () {
    const { nc } = yield* Nats
    const runtime = yield* Effect.runtime<Nats | EventStore>()
    const service = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () =>
          // the services package is typed against an older nats-core; the connection is the same protocol
          new Svcm(nc as unknown as ConstructorParameters<typeof Svcm>[0]).add({
            name: "sms-gateway",
            version: "0.1.0",
            description: "Send SMS: validates, stores the command, answers the message id",
            queue: "sms-gateway"
          }),
        catch: (cause) =>
          new NatsError({ reason: "RequestFailed", message: "cannot start the send service", cause })
      }),
      (service) =>
        Effect.promise(() =>
          service.stop().then(
            () => undefined,
            () => undefined
          )
        )
    )
    service.addEndpoint("send", {
      subject: Subjects.sendRequest,
      handler: (error, msg) => {
        if (error) return
        Runtime.runFork(runtime)(
          answer(msg.data, traceparentOf(msg)).pipe(
            Effect.map((reply) => msg.respond(JSON.stringify(reply))),
            Effect.catchAllCause((cause) =>
              Effect.logError("send request failed", cause).pipe(
                Effect.map(() => msg.respondError(503, "the gateway could not store the command, retry"))
              )
            )
          )
        )
      }
    })
  })
)
