/** Handlers of the HTTP API groups defined in `Api.ts`. */
import { messageLimits } from "../actors/MessageLimits.js"
import { HttpApiBuilder, HttpApp, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Clock, Effect, Either, Option } from "effect"
import { storeCommand } from "../actors/SendService.js"
import { Clients } from "../clients/Clients.js"
import { dayOf } from "../clients/Quotas.js"
import { messageIdFor, type MessageId } from "../domain/Ids.js"
import { e164Problem, maskNumber } from "../domain/PhoneNumber.js"
import { executePhone, loadPhone } from "../actors/PhoneRepository.js"
import { statusAsOf } from "../projections/AsOf.js"
import { getPhoneNumber, neverDeactivated, phoneViewOf } from "../projections/PhoneNumbers.js"
import { parseSendSms } from "../domain/SendSms.js"
import { messageStream } from "../domain/StreamName.js"
import { EventStore } from "../eventstore/EventStore.js"
import { messageAccepted, quotaRejections } from "../observability/Metrics.js"
import { CONTENT_TYPE, renderSnapshot } from "../observability/Prometheus.js"
import { collect } from "../observability/Collect.js"
import { getStatus, type MessageStatusView } from "../projections/MessageStatus.js"
import {
  CurrentClient,
  GatewayApi,
  InvalidRequest,
  KeyNotFound,
  MessageNotFound,
  NotReady,
  PhoneNumberActive,
  QuotaExceeded,
  ServiceUnavailable
} from "./Api.js"
import { canRead, requireScope } from "./Auth.js"
import * as DeliveryReportWebhook from "./DeliveryReportWebhook.js"
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
    const parsed = parseSendSms(raw, messageLimits)
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
    .handle("getMessage", ({ path, urlParams }) =>
      Effect.gen(function* () {
        const principal = yield* CurrentClient
        const asOf = urlParams.asOf
        if (asOf === undefined) {
          const status: Option.Option<MessageStatusView> = yield* getStatus(path.id).pipe(
            Effect.catchAll(unavailable("the status store"))
          )
          // another client's message is answered exactly like an unknown one
          if (Option.isNone(status) || !canRead(principal, status.value.clientId))
            return yield* notFound(path.id)
          return status.value
        }
        const { view, first } = yield* statusAsOf(path.id, asOf).pipe(
          Effect.catchAll(unavailable("the event store"))
        )
        // the same rule: whether (and since when) another client's message exists is not told
        if (first === undefined || !canRead(principal, first.clientId)) return yield* notFound(path.id)
        if (view === undefined) {
          // not "no such message": it did not exist yet, an auditor's likeliest slip (a wrong date)
          const since = first.recordedAt.toISOString()
          return yield* new MessageNotFound({
            messageId: path.id,
            message: `message ${path.id} did not exist yet at ${asOf.toISOString()}: it was first recorded at ${since}`,
            firstRecordedAt: since
          })
        }
        return view
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

/** A path's number as E.164 (`+` optional in the URL), or a 400 naming the path parameter. */
const phoneNumberOf = (raw: string) => {
  const number = raw.startsWith("+") ? raw : `+${raw}`
  const problem = e164Problem(number)
  return problem === undefined
    ? Effect.succeed(number)
    : Effect.fail(new InvalidRequest({ message: `number ${problem}`, field: "number", reason: problem }))
}

/** A number never deactivated is active; its view says so with an empty history (no `since`, `reason`). */
const phoneView = (number: string) =>
  getPhoneNumber(number).pipe(
    Effect.map(Option.getOrElse(() => neverDeactivated(number))),
    Effect.catchAll(unavailable("the phone numbers read model"))
  )

export const PhoneNumbersLive = HttpApiBuilder.group(GatewayApi, "phoneNumbers", (handlers) =>
  handlers
    .handle("getPhoneNumber", ({ path }) =>
      Effect.gen(function* () {
        yield* requireScope("auditor", "admin")
        return yield* phoneView(yield* phoneNumberOf(path.number))
      })
    )
    .handle("reactivate", ({ path, payload }) =>
      Effect.gen(function* () {
        const principal = yield* requireScope("admin")
        const number = yield* phoneNumberOf(path.number)
        const at = new Date(yield* Clock.currentTimeMillis)
        yield* executePhone(number, {
          _tag: "Reactivate",
          number,
          by: principal.clientId,
          reason: payload.reason,
          at
        }).pipe(
          Effect.catchTag("PhoneAlreadyActive", (e) =>
            Effect.fail(new PhoneNumberActive({ number, message: e.message }))
          ),
          Effect.catchTags({
            EventStoreError: unavailable("the event store"),
            WrongExpectedRevision: unavailable("the event store")
          })
        )
        yield* Effect.logInfo("phone number reactivated").pipe(
          Effect.annotateLogs({ to: maskNumber(number), by: principal.clientId })
        )
        // the read model follows shortly; answer from the stream, which is already current, folded
        // as the read model folds it (so this answer is what a GET will show)
        const { events, recorded } = yield* loadPhone(number).pipe(
          Effect.catchAll(unavailable("the event store"))
        )
        return phoneViewOf(
          number,
          events.map((event, i) => ({ event, position: recorded[i]?.position ?? 0 }))
        )
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
      const request = yield* HttpServerRequest.HttpServerRequest
      const body = yield* request.text.pipe(
        Effect.mapError(() => DeliveryReportWebhook.malformed("cannot read the request body"))
      )
      return yield* DeliveryReportWebhook.receive(path.provider, {
        headers: request.headers,
        body,
        url: request.url
      })
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
