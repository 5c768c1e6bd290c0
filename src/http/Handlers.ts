/** Handlers of the HTTP API groups defined in `Api.ts`. */
import { HttpApiBuilder, HttpApp, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Clock, Effect, Either, Option } from "effect"
import { storeDeliveryReport } from "../actors/DeliveryReports.js"
import { storeCommand } from "../actors/SendService.js"
import { Clients } from "../clients/Clients.js"
import { dayOf } from "../clients/Quotas.js"
import { messageIdFor, type MessageId } from "../domain/Ids.js"
import { maskNumber } from "../domain/PhoneNumber.js"
import { parseSendSms } from "../domain/SendSms.js"
import { messageStream } from "../domain/StreamName.js"
import { EventStore } from "../eventstore/EventStore.js"
import { deliveryReport, messageAccepted, quotaRejections } from "../observability/Metrics.js"
import { CONTENT_TYPE, renderSnapshot } from "../observability/Prometheus.js"
import { collect } from "../observability/Collect.js"
import { getStatus } from "../projections/MessageStatus.js"
import { Providers } from "../providers/Providers.js"
import {
  CurrentClient,
  GatewayApi,
  InvalidRequest,
  InvalidSignature,
  KeyNotFound,
  MalformedDeliveryReport,
  MessageNotFound,
  NotReady,
  QuotaExceeded,
  ServiceUnavailable,
  UnknownProvider
} from "./Api.js"
import { canRead, requireScope } from "./Auth.js"
import { PublicUrl } from "./PublicUrl.js"
import { checkReadiness } from "./Readiness.js"

const unavailable = (what: string) => (error: unknown) =>
  Effect.zipRight(
    Effect.logError(`${what} is unavailable`, error),
    Effect.fail(new ServiceUnavailable({ message: `${what} is unavailable, retry later` }))
  )
const notFound = (id: MessageId) => new MessageNotFound({ messageId: id, message: `no message ${id}` })

const setHeaders = (headers: Record<string, string>) =>
  HttpApp.appendPreResponseHandler((_, response) =>
    Effect.succeed(HttpServerResponse.setHeaders(response, headers))
  )

/** Builds the command exactly as a NATS producer would publish it, so both paths share one validator. */
const sendMessage = (input: {
  readonly payload: Record<string, unknown>
  readonly headers: { readonly "idempotency-key": string; readonly "x-tracking-id"?: string | undefined }
}) =>
  Effect.gen(function* () {
    const principal = yield* requireScope("client", "admin")
    const clients = yield* Clients
    const raw = new TextEncoder().encode(
      JSON.stringify({
        ...input.payload,
        trackingId: input.headers["x-tracking-id"] ?? input.payload.trackingId,
        clientId: principal.clientId,
        idempotencyKey: input.headers["idempotency-key"]
      })
    )
    const parsed = parseSendSms(raw)
    if (Either.isLeft(parsed)) return yield* InvalidRequest.of(parsed.left.field, parsed.left.reason)
    const command = parsed.right
    const messageId = messageIdFor(command.clientId, command.idempotencyKey)
    const trackingId = command.trackingId ?? messageId
    yield* Effect.annotateLogsScoped({ messageId, trackingId, clientId: command.clientId })
    yield* setHeaders({ "x-tracking-id": trackingId })

    const charge = yield* clients
      .charge(command.clientId, messageId)
      .pipe(Effect.catchAll(unavailable("the quota store")))
    if (charge._tag === "Exhausted") {
      yield* quotaRejections(command.clientId, "http")
      yield* Effect.logWarning("message refused: daily quota exceeded").pipe(
        Effect.annotateLogs({ to: maskNumber(command.to), limit: charge.limit })
      )
      yield* setHeaders({ "retry-after": String(charge.retryAfterSeconds) })
      return yield* new QuotaExceeded({
        message: `the daily quota of ${charge.limit} messages is used up; it resets at 00:00 UTC`,
        clientId: command.clientId,
        limit: charge.limit,
        retryAfterSeconds: charge.retryAfterSeconds
      })
    }
    // answered only once JetStream holds the command (its PubAck): the intake does the rest
    const reply = yield* storeCommand(command, raw).pipe(Effect.catchAll(unavailable("the command store")))
    yield* messageAccepted("http", reply.duplicate)
    yield* Effect.logInfo(reply.duplicate ? "duplicate message request" : "message accepted").pipe(
      Effect.annotateLogs({ to: maskNumber(command.to), duplicate: reply.duplicate })
    )
    yield* setHeaders({ location: `/v1/messages/${reply.messageId}` })
    return { messageId: reply.messageId, duplicate: reply.duplicate }
  }).pipe(Effect.scoped)

export const MessagesLive = HttpApiBuilder.group(GatewayApi, "messages", (handlers) =>
  handlers
    .handle("send", ({ payload, headers }) => sendMessage({ payload: { ...payload }, headers }))
    .handle("getMessage", ({ path }) =>
      Effect.gen(function* () {
        const principal = yield* CurrentClient
        const status = yield* getStatus(path.id).pipe(Effect.catchAll(unavailable("the status store")))
        // another client's message is answered exactly like an unknown one
        if (Option.isNone(status) || !canRead(principal, status.value.clientId))
          return yield* notFound(path.id)
        return status.value
      })
    )
    .handle("getMessageEvents", ({ path }) =>
      Effect.gen(function* () {
        const principal = yield* CurrentClient
        const store = yield* EventStore
        const events = yield* store
          .read(messageStream(path.id))
          .pipe(Effect.catchAll(unavailable("the event store")))
        const first = events[0]?.data
        const owner =
          typeof first === "object" && first !== null && "clientId" in first
            ? String(first.clientId)
            : undefined
        if (events.length === 0 || owner === undefined || !canRead(principal, owner))
          return yield* notFound(path.id)
        return {
          messageId: path.id,
          events: events.map((e) => ({
            position: e.position,
            revision: e.revision,
            type: e.type,
            recordedAt: e.recordedAt.toISOString(),
            eventId: e.id,
            data: e.data
          }))
        }
      })
    )
)

export const ClientsLive = HttpApiBuilder.group(GatewayApi, "clients", (handlers) =>
  handlers
    .handle("list", () =>
      Effect.gen(function* () {
        yield* requireScope("admin")
        const keys = yield* (yield* Clients).list.pipe(Effect.catchAll(unavailable("the client registry")))
        return { keys }
      })
    )
    .handle("add", ({ payload }) =>
      Effect.gen(function* () {
        const admin = yield* requireScope("admin")
        const issued = yield* (yield* Clients).issueKey(payload).pipe(
          Effect.catchTags({
            InvalidClient: (error) => InvalidRequest.of(error.field, error.reason),
            NatsError: unavailable("the client registry")
          })
        )
        yield* Effect.logInfo("API key issued").pipe(
          Effect.annotateLogs({
            by: admin.clientId,
            clientId: issued.key.clientId,
            keyId: issued.key.keyId,
            scope: issued.key.scope
          })
        )
        return issued
      })
    )
    .handle("revoke", ({ path }) =>
      Effect.gen(function* () {
        const admin = yield* requireScope("admin")
        const found = yield* (yield* Clients)
          .revoke(path.keyId)
          .pipe(Effect.catchAll(unavailable("the client registry")))
        if (!found) return yield* new KeyNotFound({ keyId: path.keyId, message: `no key ${path.keyId}` })
        yield* Effect.logInfo("API key revoked").pipe(
          Effect.annotateLogs({ by: admin.clientId, keyId: path.keyId })
        )
        return { keyId: path.keyId, revoked: true }
      })
    )
    .handle("usage", ({ path }) =>
      Effect.gen(function* () {
        const principal = yield* CurrentClient
        // a client key may read its own usage only
        if (!canRead(principal, path.clientId)) yield* requireScope("auditor", "admin")
        const clients = yield* Clients
        const owner = yield* clients
          .client(path.clientId)
          .pipe(Effect.catchAll(unavailable("the client registry")))
        const used = yield* clients.usage(path.clientId).pipe(Effect.catchAll(unavailable("the quota store")))
        return {
          clientId: path.clientId,
          day: dayOf(yield* Clock.currentTimeMillis),
          used,
          dailyQuota: Option.getOrUndefined(owner)?.dailyQuota
        }
      })
    )
)

export const DeliveryReportsLive = HttpApiBuilder.group(GatewayApi, "deliveryReports", (handlers) =>
  handlers.handle("receiveDeliveryReport", ({ path }) =>
    Effect.gen(function* () {
      const provider = (yield* Providers).get(path.provider)
      if (provider === undefined) {
        return yield* new UnknownProvider({
          provider: path.provider,
          message: `no provider ${path.provider}`
        })
      }
      const request = yield* HttpServerRequest.HttpServerRequest
      const body = yield* request.text.pipe(
        Effect.mapError(
          () =>
            new MalformedDeliveryReport({
              message: "$: cannot read the request body",
              field: "$",
              reason: "cannot read the request body"
            })
        )
      )
      const publicUrl = yield* PublicUrl
      const parsed = provider.adapter.parseDeliveryReport({
        headers: request.headers,
        body,
        url: `${publicUrl}${request.url}`
      })
      if (Either.isLeft(parsed)) {
        yield* Effect.logWarning("delivery report refused").pipe(
          Effect.annotateLogs({ provider: path.provider, reason: parsed.left.reason })
        )
        if (parsed.left.reason === "BadSignature") {
          yield* deliveryReport(path.provider, "bad_signature")
          return yield* new InvalidSignature({ message: parsed.left.message })
        }
        yield* deliveryReport(path.provider, "malformed")
        return yield* new MalformedDeliveryReport({
          message: `$: ${parsed.left.message}`,
          field: "$",
          reason: parsed.left.message
        })
      }
      // answer 200 only once JetStream holds the report: the provider retries otherwise
      yield* storeDeliveryReport(path.provider, parsed.right, body).pipe(
        Effect.catchAll(unavailable("the delivery report queue"))
      )
      yield* deliveryReport(path.provider, "stored")
      return { stored: true }
    })
  )
)

export const HealthLive = HttpApiBuilder.group(GatewayApi, "health", (handlers) =>
  handlers
    .handle("health", () => Effect.succeed({ status: "ok" as const }))
    .handle("ready", () =>
      Effect.gen(function* () {
        const checks = yield* checkReadiness
        const failing = Object.entries(checks)
          .filter(([, check]) => !check.ok)
          .map(([name, check]) => `${name}${check.detail ? ` (${check.detail})` : ""}`)
        if (failing.length > 0)
          return yield* new NotReady({ message: `not ready: ${failing.join(", ")}`, checks })
        return { status: "ready" as const, checks }
      })
    )
)

export const MetricsLive = HttpApiBuilder.group(GatewayApi, "metrics", (handlers) =>
  handlers.handleRaw("metrics", () =>
    Effect.gen(function* () {
      const samples = yield* collect
      const text = yield* renderSnapshot(samples)
      return HttpServerResponse.text(text, { contentType: CONTENT_TYPE })
    })
  )
)
