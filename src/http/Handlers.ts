/** Handlers of the HTTP API groups defined in `Api.ts`. */
import { HttpApiBuilder, HttpApp, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Clock, Effect, Either, Option } from "effect"
import { Clients, canRead, type IssueKey, type Principal } from "../clients/Clients.js"
import { dayOf } from "../clients/Quotas.js"
import type { MessageId } from "../domain/Ids.js"
import { e164Problem, maskNumber } from "../domain/PhoneNumber.js"
import { executePhone, loadPhone } from "../messages/PhoneRepository.js"
import { getPhoneNumber, neverDeactivated, phoneViewOf } from "../projections/PhoneNumbers.js"
import { readHistory, readStatus } from "../messages/ReadMessage.js"
import { acceptSend, prepareSend } from "../messages/SendMessage.js"
import { CONTENT_TYPE, renderSnapshot } from "../observability/Prometheus.js"
import { collect } from "./Collect.js"
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
import { requireScope } from "./Auth.js"
import * as DeliveryReportWebhook from "./DeliveryReportWebhook.js"
import { checkReadiness, failingChecks } from "./Readiness.js"

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

/** The send use case (`messages/SendMessage.ts`), answered with this API's headers and errors. */
const sendMessage = (input: {
  readonly payload: Record<string, unknown>
  readonly headers: { readonly "idempotency-key": string; readonly "x-tracking-id"?: string | undefined }
}) =>
  Effect.gen(function* () {
    const principal = yield* requireScope("client", "admin")
    const request = yield* HttpServerRequest.HttpServerRequest
    const prepared = prepareSend({
      clientId: principal.clientId,
      fields: input.payload,
      idempotencyKey: input.headers["idempotency-key"],
      trackingId: input.headers["x-tracking-id"],
      traceparent: request.headers.traceparent
    })
    if (Either.isLeft(prepared)) return yield* InvalidRequest.of(prepared.left.field, prepared.left.reason)
    const { command, messageId, trackingId } = prepared.right
    yield* Effect.annotateLogsScoped({ messageId, trackingId, clientId: command.clientId })
    yield* setHeaders({ "x-tracking-id": trackingId })
    const reply = yield* acceptSend(prepared.right, "http").pipe(
      Effect.catchTags({
        QuotaUsedUp: (refused) =>
          Effect.zipRight(
            setHeaders({ "retry-after": String(refused.retryAfterSeconds) }),
            Effect.fail(
              new QuotaExceeded({
                message: refused.message,
                clientId: refused.clientId,
                limit: refused.limit,
                retryAfterSeconds: refused.retryAfterSeconds
              })
            )
          ),
        StoreUnavailable: (error) => unavailable(error.store)(error.cause)
      })
    )
    yield* setHeaders({ location: `/v1/messages/${reply.messageId}` })
    return reply
  }).pipe(Effect.scoped)

export const MessagesLive = HttpApiBuilder.group(GatewayApi, "messages", (handlers) =>
  handlers
    .handle("send", ({ payload, headers }) => sendMessage({ payload: { ...payload }, headers }))
    .handle("getMessage", ({ path, urlParams }) =>
      Effect.gen(function* () {
        const principal = yield* CurrentClient
        return yield* readStatus(principal, path.id, urlParams.asOf).pipe(
          Effect.catchTags({
            UnknownMessage: () => Effect.fail(notFound(path.id)),
            NotYetRecorded: (error) =>
              Effect.fail(
                new MessageNotFound({
                  messageId: path.id,
                  message: error.message,
                  firstRecordedAt: error.firstRecordedAt
                })
              ),
            StoreUnavailable: (error) => unavailable(error.store)(error.cause)
          })
        )
      })
    )
    .handle("getMessageEvents", ({ path }) =>
      Effect.gen(function* () {
        const principal = yield* CurrentClient
        const events = yield* readHistory(principal, path.id).pipe(
          Effect.catchTags({
            UnknownMessage: () => Effect.fail(notFound(path.id)),
            StoreUnavailable: (error) => unavailable(error.store)(error.cause)
          })
        )
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
        return yield* reactivatePhoneNumber({ number, by: principal.clientId, reason: payload.reason }).pipe(
          Effect.catchTag("PhoneAlreadyActive", (e) =>
            Effect.fail(new PhoneNumberActive({ number, message: e.message }))
          ),
          Effect.catchTags({
            EventStoreError: unavailable("the event store"),
            WrongExpectedRevision: unavailable("the event store")
          })
        )
      })
    )
)

/**
 * An operator reactivates a number (`PhoneReactivated`, naming who and why), logged with who: the
 * one path of the API and the console. Answers the number as a `GET` will show it.
 */
export const reactivatePhoneNumber = (input: {
  readonly number: string
  readonly by: string
  readonly reason: string
}) =>
  Effect.gen(function* () {
    const { number, by, reason } = input
    const at = new Date(yield* Clock.currentTimeMillis)
    yield* executePhone(number, { _tag: "Reactivate", number, by, reason, at })
    yield* Effect.logInfo("phone number reactivated").pipe(
      Effect.annotateLogs({ to: maskNumber(number), by })
    )
    // the read model follows shortly; answer from the stream, which is already current, folded
    // as the read model folds it (so this answer is what a GET will show)
    const { events, recorded } = yield* loadPhone(number)
    return phoneViewOf(
      number,
      events.map((event, i) => ({ event, position: recorded[i]?.position ?? 0 }))
    )
  })

/** An admin issues a key (the client is created if needed), logged with who: the API's and the console's path. */
export const issueKeyAs = (admin: Principal, input: IssueKey) =>
  Effect.gen(function* () {
    const issued = yield* (yield* Clients).issueKey(input)
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

/** An admin revokes a key, logged with who; false when there is no such key. The API's and the console's path. */
export const revokeKeyAs = (admin: Principal, keyId: string) =>
  Effect.gen(function* () {
    const found = yield* (yield* Clients).revoke(keyId)
    if (found) {
      yield* Effect.logInfo("API key revoked").pipe(Effect.annotateLogs({ by: admin.clientId, keyId }))
    }
    return found
  })

/** An admin sets (a number) or removes (`null`: unlimited) a client's daily quota, logged with who: the console's and the CLI's registry call. */
export const setQuotaAs = (admin: Principal, clientId: string, dailyQuota: number | null) =>
  Effect.gen(function* () {
    const stored = yield* (yield* Clients).setQuota(clientId, dailyQuota)
    yield* Effect.logInfo("client quota changed").pipe(
      Effect.annotateLogs({ by: admin.clientId, clientId, dailyQuota: dailyQuota ?? "unlimited" })
    )
    return stored
  })

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
        return yield* issueKeyAs(admin, payload).pipe(
          Effect.catchTags({
            InvalidClient: (error) => InvalidRequest.of(error.field, error.reason),
            NatsError: unavailable("the client registry")
          })
        )
      })
    )
    .handle("revoke", ({ path }) =>
      Effect.gen(function* () {
        const admin = yield* requireScope("admin")
        const found = yield* revokeKeyAs(admin, path.keyId).pipe(
          Effect.catchAll(unavailable("the client registry"))
        )
        if (!found) return yield* new KeyNotFound({ keyId: path.keyId, message: `no key ${path.keyId}` })
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
        const failing = failingChecks(checks)
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
