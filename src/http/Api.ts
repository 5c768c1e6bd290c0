/**
 * The HTTP API, as definitions only (handlers live in `Handlers.ts`, the key check in `Auth.ts`).
 *
 * One error shape everywhere: a JSON object with `_tag` and `message`; every 400 also names the
 * `field` and the `reason` (request decoding errors included, see `Server.ts`). The HTTP status is an
 * annotation on the error class.
 *
 * Its size (over 400 lines) is every endpoint and error as one declaration, from which the OpenAPI
 * document is made.
 */
import { createRequire } from "node:module"
import {
  HttpApi,
  HttpApiEndpoint,
  HttpApiGroup,
  HttpApiMiddleware,
  HttpApiSchema,
  HttpApiSecurity,
  OpenApi
} from "@effect/platform"
import { Context, Schema, Struct } from "effect"
import { ClientId, DailyQuota, type Principal, Scope } from "../clients/Clients.js"
import { MessageId } from "../domain/Ids.js"
import { SendSms } from "../domain/SendSms.js"
import { MessageStatusView } from "../projections/MessageStatus.js"
import { PhoneNumberView } from "../projections/PhoneNumbers.js"

// ---------------------------------------------------------------------------------------------
// errors

const INVALID_REQUEST_DESCRIPTION = "The request is malformed: `field` says where, `reason` why"

export class InvalidRequest extends Schema.TaggedError<InvalidRequest>()(
  "InvalidRequest",
  {
    message: Schema.String,
    /** the offending field: a body path (`to`, `metadata.order`), a path parameter, a header; `$` = the whole body */
    field: Schema.String,
    reason: Schema.String
  },
  HttpApiSchema.annotations({ status: 400, description: INVALID_REQUEST_DESCRIPTION })
) {
  static of(field: string, reason: string) {
    return new InvalidRequest({ field, reason, message: `${field}: ${reason}` })
  }
}

export class UnsupportedMediaType extends Schema.TaggedError<UnsupportedMediaType>()(
  "UnsupportedMediaType",
  { message: Schema.String },
  HttpApiSchema.annotations({
    status: 415,
    description: "The body was not sent as `Content-Type: application/json` (curl's `-d` sends a form)"
  })
) {}

export class Unauthorized extends Schema.TaggedError<Unauthorized>()(
  "Unauthorized",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 401, description: "No API key, or an unknown or revoked one" })
) {}

export class Forbidden extends Schema.TaggedError<Forbidden>()(
  "Forbidden",
  { message: Schema.String, scope: Schema.String },
  HttpApiSchema.annotations({ status: 403, description: "The key's scope does not allow this" })
) {}

export class MessageNotFound extends Schema.TaggedError<MessageNotFound>()(
  "MessageNotFound",
  {
    messageId: Schema.String,
    message: Schema.String,
    /** with `asOf` before the message existed: when its first event was recorded (only to who may read it) */
    firstRecordedAt: Schema.optional(Schema.String)
  },
  HttpApiSchema.annotations({
    status: 404,
    description:
      "No such message (or another client's); with `asOf` before it existed, `firstRecordedAt` says when it did"
  })
) {}

export class KeyNotFound extends Schema.TaggedError<KeyNotFound>()(
  "KeyNotFound",
  { keyId: Schema.String, message: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}

export class UnknownProvider extends Schema.TaggedError<UnknownProvider>()(
  "UnknownProvider",
  { provider: Schema.String, message: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}

export class QuotaExceeded extends Schema.TaggedError<QuotaExceeded>()(
  "QuotaExceeded",
  {
    message: Schema.String,
    clientId: Schema.String,
    limit: Schema.Number,
    /** also the `Retry-After` header: seconds to the next UTC midnight */
    retryAfterSeconds: Schema.Number
  },
  HttpApiSchema.annotations({
    status: 429,
    description: "The client's daily quota is used up; `Retry-After` says when it resets (UTC midnight)"
  })
) {}

export class InvalidSignature extends Schema.TaggedError<InvalidSignature>()(
  "InvalidSignature",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 401 })
) {}

export class MalformedDeliveryReport extends Schema.TaggedError<MalformedDeliveryReport>()(
  "MalformedDeliveryReport",
  { message: Schema.String, field: Schema.String, reason: Schema.String },
  HttpApiSchema.annotations({ status: 400 })
) {}

export class ServiceUnavailable extends Schema.TaggedError<ServiceUnavailable>()(
  "ServiceUnavailable",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 503 })
) {}

export const ReadinessCheck = Schema.Struct({ ok: Schema.Boolean, detail: Schema.optional(Schema.String) })

export const Readiness = Schema.Struct({
  nats: ReadinessCheck,
  eventStore: ReadinessCheck,
  projections: ReadinessCheck,
  accepting: ReadinessCheck,
  /** only in a process running the SQL outbox role (`src/outbox/`) */
  outbox: Schema.optional(ReadinessCheck)
})

export class NotReady extends Schema.TaggedError<NotReady>()(
  "NotReady",
  { message: Schema.String, checks: Readiness },
  HttpApiSchema.annotations({ status: 503 })
) {}

// ---------------------------------------------------------------------------------------------
// authentication

/** The authenticated caller, provided to the handlers of the groups that require a key. */
export class CurrentClient extends Context.Tag("sms-gateway/CurrentClient")<CurrentClient, Principal>() {}

/**
 * API key in `X-API-Key` (or `Authorization: Bearer <key>`): 401 without a valid one, 503 when the
 * registry cannot be read. Implemented in `Auth.ts`.
 */
export class Authentication extends HttpApiMiddleware.Tag<Authentication>()("sms-gateway/Authentication", {
  failure: Schema.Union(Unauthorized, ServiceUnavailable),
  provides: CurrentClient,
  security: {
    apiKey: HttpApiSecurity.apiKey({ in: "header", key: "X-API-Key" }).pipe(
      HttpApiSecurity.annotate(
        OpenApi.Description,
        "An API key from `sms-gateway clients add` (or `Authorization: Bearer <key>`)"
      )
    )
  }
}) {}

// ---------------------------------------------------------------------------------------------
// messages

export const StoredEventView = Schema.Struct({
  position: Schema.Number,
  revision: Schema.Number,
  type: Schema.String,
  recordedAt: Schema.String,
  eventId: Schema.String,
  data: Schema.Unknown
})

const MessagePath = Schema.Struct({ id: MessageId })

/** `POST /v1/messages`: the `SendSms` fields but the client (from the key) and the idempotency key (header). */
export const SendMessageBody = Schema.Struct(
  Struct.omit(SendSms.fields, "clientId", "idempotencyKey")
).annotations({
  identifier: "SendMessageBody",
  description:
    "to (E.164), body, and optionally from, providers (exclusive, in order), validUntil, metadata, trackingId"
})

export const SendMessageHeaders = Schema.Struct({
  "idempotency-key": SendSms.fields.idempotencyKey.annotations({
    description: "the client's id for this message: a retry with the same key answers the same message id"
  }),
  /** carried into every log line of the message (default: the message id) */
  "x-tracking-id": SendSms.fields.trackingId
})

export const SendMessageAccepted = Schema.Struct({
  messageId: Schema.String,
  /** true when this idempotency key was seen before: nothing new was sent */
  duplicate: Schema.Boolean
}).annotations({ identifier: "SendMessageAccepted" })

export class MessagesGroup extends HttpApiGroup.make("messages")
  .annotate(
    OpenApi.Description,
    "Sending SMS and following them: status, status as of a time, events. API key."
  )
  .add(
    HttpApiEndpoint.post("send", "/v1/messages")
      .annotate(OpenApi.Summary, "Send an SMS")
      .setPayload(SendMessageBody)
      .setHeaders(SendMessageHeaders)
      .addSuccess(SendMessageAccepted, { status: 202 })
      .addError(UnsupportedMediaType)
      .addError(Forbidden)
      .addError(QuotaExceeded)
      .addError(ServiceUnavailable)
      .annotate(
        OpenApi.Description,
        "Stores a SendSms for the key's client; 202 only once JetStream holds it. Scopes: client, admin."
      )
  )
  .add(
    HttpApiEndpoint.get("getMessage", "/v1/messages/:id")
      .annotate(OpenApi.Summary, "A message's status, now or as of a time")
      .setPath(MessagePath)
      // `asOf`: the status as it was known then (an auditor's question), from the event history
      .setUrlParams(Schema.Struct({ asOf: Schema.optional(Schema.Date) }))
      .addSuccess(MessageStatusView)
      .addError(MessageNotFound)
      .addError(ServiceUnavailable)
      .annotate(
        OpenApi.Description,
        "A message's status, or with `?asOf=<ISO time>` the status as known then. A `client` key sees only its own messages (404 otherwise)."
      )
  )
  .add(
    HttpApiEndpoint.get("getMessageEvents", "/v1/messages/:id/events")
      .annotate(OpenApi.Summary, "A message's events")
      .setPath(MessagePath)
      .addSuccess(Schema.Struct({ messageId: Schema.String, events: Schema.Array(StoredEventView) }))
      .addError(MessageNotFound)
      .addError(ServiceUnavailable)
      .annotate(OpenApi.Description, "Every event of a message, in order. A `client` key sees only its own.")
  )
  .middleware(Authentication) {}

// ---------------------------------------------------------------------------------------------
// phone numbers (auditor, admin)

export class PhoneNumberActive extends Schema.TaggedError<PhoneNumberActive>()(
  "PhoneNumberActive",
  { number: Schema.String, message: Schema.String },
  HttpApiSchema.annotations({ status: 409, description: "Only an inactive number can be reactivated" })
) {}

const PhonePath = Schema.Struct({ number: Schema.String })

export class PhoneNumbersGroup extends HttpApiGroup.make("phoneNumbers")
  .annotate(
    OpenApi.Description,
    "Numbers a provider called invalid are refused until an operator reactivates them. API key: auditor, admin."
  )
  .add(
    HttpApiEndpoint.get("getPhoneNumber", "/v1/phone-numbers/:number")
      .annotate(OpenApi.Summary, "Whether a number is sent to")
      .setPath(PhonePath)
      .addSuccess(PhoneNumberView)
      .addError(Forbidden)
      .addError(ServiceUnavailable)
      .annotate(
        OpenApi.Description,
        "Whether messages to this E.164 number are sent (active) or refused (inactive), since when, why, and the history. Scopes: auditor, admin."
      )
  )
  .add(
    HttpApiEndpoint.post("reactivate", "/v1/phone-numbers/:number/reactivate")
      .annotate(OpenApi.Summary, "Reactivate a number")
      .setPath(PhonePath)
      .setPayload(Schema.Struct({ reason: Schema.NonEmptyTrimmedString }))
      .addSuccess(PhoneNumberView)
      .addError(UnsupportedMediaType)
      .addError(PhoneNumberActive)
      .addError(Forbidden)
      .addError(ServiceUnavailable)
      .annotate(OpenApi.Description, "Records who reactivated the number and why. Scope: admin.")
  )
  .middleware(Authentication) {}

// ---------------------------------------------------------------------------------------------
// clients (admin)

export const ClientKeyView = Schema.Struct({
  keyId: Schema.String,
  clientId: Schema.String,
  scope: Scope,
  dailyQuota: Schema.optional(Schema.Number),
  createdAt: Schema.String,
  revokedAt: Schema.optional(Schema.String)
}).annotations({ identifier: "ClientKey" })

export const AddClientBody = Schema.Struct({
  clientId: ClientId,
  scope: Scope,
  /** messages per UTC day; absent keeps the client's quota (none: unlimited), null removes it */
  dailyQuota: Schema.optional(Schema.NullOr(DailyQuota))
}).annotations({ identifier: "AddClient" })

export class ClientsGroup extends HttpApiGroup.make("clients")
  .annotate(
    OpenApi.Description,
    "API keys and daily quotas. API key: admin (a client may read its own usage)."
  )
  .add(
    HttpApiEndpoint.get("list", "/v1/clients")
      .annotate(OpenApi.Summary, "List API keys")
      .addSuccess(Schema.Struct({ keys: Schema.Array(ClientKeyView) }))
      .addError(Forbidden)
      .addError(ServiceUnavailable)
      .annotate(OpenApi.Description, "Every API key (never the key itself). Scope: admin.")
  )
  .add(
    HttpApiEndpoint.post("add", "/v1/clients")
      .annotate(OpenApi.Summary, "Issue an API key")
      .setPayload(AddClientBody)
      .addSuccess(Schema.Struct({ apiKey: Schema.String, key: ClientKeyView }), { status: 201 })
      .addError(UnsupportedMediaType)
      .addError(Forbidden)
      .addError(ServiceUnavailable)
      .annotate(
        OpenApi.Description,
        "Creates the client if needed (or sets its quota) and issues a key for it: `apiKey` is shown only here. Scope: admin."
      )
  )
  .add(
    HttpApiEndpoint.del("revoke", "/v1/clients/keys/:keyId")
      .annotate(OpenApi.Summary, "Revoke an API key")
      .setPath(Schema.Struct({ keyId: Schema.String }))
      .addSuccess(Schema.Struct({ keyId: Schema.String, revoked: Schema.Boolean }))
      .addError(KeyNotFound)
      .addError(Forbidden)
      .addError(ServiceUnavailable)
      .annotate(OpenApi.Description, "Revokes a key (within 5 s on every gateway process). Scope: admin.")
  )
  .add(
    HttpApiEndpoint.get("usage", "/v1/clients/:clientId/usage")
      .annotate(OpenApi.Summary, "A client's usage today")
      .setPath(Schema.Struct({ clientId: ClientId }))
      .addSuccess(
        Schema.Struct({
          clientId: Schema.String,
          day: Schema.String,
          used: Schema.Number,
          dailyQuota: Schema.optional(Schema.Number)
        })
      )
      .addError(Forbidden)
      .addError(ServiceUnavailable)
      .annotate(OpenApi.Description, "Messages charged today (UTC). A `client` key may read only its own.")
  )
  .middleware(Authentication) {}

// ---------------------------------------------------------------------------------------------
// provider webhooks (signed, no key)

export class DeliveryReportsGroup extends HttpApiGroup.make("deliveryReports")
  .annotate(OpenApi.Description, "Providers' delivery reports, verified by their signatures; no API key.")
  .add(
    // the body is read raw: signatures are computed over the exact bytes the provider sent
    HttpApiEndpoint.post("receiveDeliveryReport", "/v1/providers/:provider/delivery-reports")
      .annotate(OpenApi.Summary, "Receive a provider's delivery report")
      .setPath(Schema.Struct({ provider: Schema.String }))
      .addSuccess(Schema.Struct({ stored: Schema.Boolean }))
      .addError(UnknownProvider)
      .addError(InvalidSignature)
      .addError(MalformedDeliveryReport)
      .addError(ServiceUnavailable)
      .annotate(OpenApi.Description, "A provider's delivery report, verified by its signature (no API key).")
  ) {}

// ---------------------------------------------------------------------------------------------
// operations (no key: for load balancers and Prometheus)

export class HealthGroup extends HttpApiGroup.make("health")
  .annotate(OpenApi.Description, "Liveness and readiness, for load balancers; no API key.")
  .add(
    HttpApiEndpoint.get("health", "/health")
      .annotate(OpenApi.Summary, "Liveness")
      .addSuccess(Schema.Struct({ status: Schema.Literal("ok") }))
      .annotate(OpenApi.Description, "The process is alive.")
  )
  .add(
    HttpApiEndpoint.get("ready", "/ready")
      .annotate(OpenApi.Summary, "Readiness")
      .addSuccess(Schema.Struct({ status: Schema.Literal("ready"), checks: Readiness }))
      .addError(NotReady)
      .annotate(
        OpenApi.Description,
        "NATS connected, event store reachable, projections within lag, not shutting down (503 otherwise)."
      )
  ) {}

export class MetricsGroup extends HttpApiGroup.make("metrics")
  .annotate(OpenApi.Description, "Prometheus metrics; no API key.")
  .add(
    HttpApiEndpoint.get("metrics", "/metrics")
      .annotate(OpenApi.Summary, "Prometheus metrics")
      .addSuccess(HttpApiSchema.Text({ contentType: "text/plain; version=0.0.4; charset=utf-8" }))
      .annotate(OpenApi.Description, "Prometheus text format.")
  ) {}

/** The package's version, for the OpenAPI document (`dist/http` and `src/http` both sit two levels down). */
const { version } = createRequire(import.meta.url)("../../package.json") as { readonly version: string }

/**
 * Schemas of the platform's own request decoding error. Every endpoint may fail with it, so the
 * platform lists it beside each 400; but `Server.ts` answers it as `InvalidRequest`, so a client never
 * sees it: the document drops it (and the two schemas only it uses) instead of promising a shape that
 * is never sent.
 */
const INTERNAL_SCHEMAS: ReadonlyArray<string> = ["HttpApiDecodeError", "Issue", "PropertyKey"]
const INTERNAL_REFS = new Set(INTERNAL_SCHEMAS.map((name) => `#/components/schemas/${name}`))

const isInternalRef = (value: unknown) =>
  typeof value === "object" && value !== null && "$ref" in value && INTERNAL_REFS.has(String(value.$ref))

/** The document without references to the internal schemas: a union left with one member becomes it. */
const withoutInternalRefs = (value: unknown): unknown => {
  if (Array.isArray(value)) return value.map(withoutInternalRefs)
  if (typeof value !== "object" || value === null) return value
  let out: Record<string, unknown> = {}
  for (const [key, member] of Object.entries(value)) {
    if (key === "anyOf" && Array.isArray(member)) {
      const kept = member.filter((schema) => !isInternalRef(schema)).map(withoutInternalRefs)
      if (kept.length === 1) out = { ...out, ...(kept[0] as Record<string, unknown>) }
      else out[key] = kept
    } else {
      out[key] = withoutInternalRefs(member)
    }
  }
  return out
}

/** The parts of the OpenAPI document `hideInternalSchemas` changes. */
interface Document {
  readonly components?: { readonly schemas?: Record<string, unknown> }
  readonly paths?: Record<
    string,
    Record<string, { readonly responses?: Record<string, { description?: string }> }>
  >
}

const hideInternalSchemas = (spec: Record<string, unknown>): Record<string, unknown> => {
  const cleaned = withoutInternalRefs(spec) as Record<string, unknown> & Document
  for (const name of INTERNAL_SCHEMAS) delete cleaned.components?.schemas?.[name]
  for (const operations of Object.values(cleaned.paths ?? {})) {
    for (const operation of Object.values(operations)) {
      // the platform's words for its decoding error; the 400 actually sent is `InvalidRequest`
      const badRequest = operation.responses?.["400"]
      if (badRequest !== undefined) badRequest.description = INVALID_REQUEST_DESCRIPTION
    }
  }
  return cleaned
}

export class GatewayApi extends HttpApi.make("sms-gateway")
  .add(MessagesGroup)
  .add(PhoneNumbersGroup)
  .add(ClientsGroup)
  .add(DeliveryReportsGroup)
  .add(HealthGroup)
  .add(MetricsGroup)
  .addError(InvalidRequest)
  .addError(ServiceUnavailable)
  .annotate(OpenApi.Title, "sms-gateway")
  .annotate(OpenApi.Version, version)
  .annotate(OpenApi.Transform, hideInternalSchemas)
  .annotate(
    OpenApi.Description,
    "Send SMS and follow them. Every error is `{_tag, message}`; a 400 also has `field` and `reason`."
  ) {}
