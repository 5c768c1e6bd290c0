/**
 * The HTTP API, as definitions only (handlers live in `Handlers.ts`, the key check in `Auth.ts`).
 *
 * One error shape everywhere: a JSON object with `_tag` and `message`; every 400 also names the
 * `field` and the `reason` (request decoding errors included, see `Server.ts`). The HTTP status is an
 * annotation on the error class.
 */
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

export class InvalidRequest extends Schema.TaggedError<InvalidRequest>()(
  "InvalidRequest",
  {
    message: Schema.String,
    /** the offending field: a body path (`to`, `metadata.order`), a path parameter, a header; `$` = the whole body */
    field: Schema.String,
    reason: Schema.String
  },
  HttpApiSchema.annotations({
    status: 400,
    description: "The request is malformed: `field` says where, `reason` why"
  })
) {
  static of(field: string, reason: string) {
    return new InvalidRequest({ field, reason, message: `${field}: ${reason}` })
  }
}

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
  { messageId: Schema.String, message: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
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
  accepting: ReadinessCheck
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
  .add(
    HttpApiEndpoint.post("send", "/v1/messages")
      .setPayload(SendMessageBody)
      .setHeaders(SendMessageHeaders)
      .addSuccess(SendMessageAccepted, { status: 202 })
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
  .add(
    HttpApiEndpoint.get("getPhoneNumber", "/v1/phone-numbers/:number")
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
      .setPath(PhonePath)
      .setPayload(Schema.Struct({ reason: Schema.NonEmptyTrimmedString }))
      .addSuccess(PhoneNumberView)
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
  .add(
    HttpApiEndpoint.get("list", "/v1/clients")
      .addSuccess(Schema.Struct({ keys: Schema.Array(ClientKeyView) }))
      .addError(Forbidden)
      .addError(ServiceUnavailable)
      .annotate(OpenApi.Description, "Every API key (never the key itself). Scope: admin.")
  )
  .add(
    HttpApiEndpoint.post("add", "/v1/clients")
      .setPayload(AddClientBody)
      .addSuccess(Schema.Struct({ apiKey: Schema.String, key: ClientKeyView }), { status: 201 })
      .addError(Forbidden)
      .addError(ServiceUnavailable)
      .annotate(
        OpenApi.Description,
        "Creates the client if needed (or sets its quota) and issues a key for it: `apiKey` is shown only here. Scope: admin."
      )
  )
  .add(
    HttpApiEndpoint.del("revoke", "/v1/clients/keys/:keyId")
      .setPath(Schema.Struct({ keyId: Schema.String }))
      .addSuccess(Schema.Struct({ keyId: Schema.String, revoked: Schema.Boolean }))
      .addError(KeyNotFound)
      .addError(Forbidden)
      .addError(ServiceUnavailable)
      .annotate(OpenApi.Description, "Revokes a key (within 5 s on every gateway process). Scope: admin.")
  )
  .add(
    HttpApiEndpoint.get("usage", "/v1/clients/:clientId/usage")
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

export class DeliveryReportsGroup extends HttpApiGroup.make("deliveryReports").add(
  // the body is read raw: signatures are computed over the exact bytes the provider sent
  HttpApiEndpoint.post("receiveDeliveryReport", "/v1/providers/:provider/delivery-reports")
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
  .add(
    HttpApiEndpoint.get("health", "/health")
      .addSuccess(Schema.Struct({ status: Schema.Literal("ok") }))
      .annotate(OpenApi.Description, "The process is alive.")
  )
  .add(
    HttpApiEndpoint.get("ready", "/ready")
      .addSuccess(Schema.Struct({ status: Schema.Literal("ready"), checks: Readiness }))
      .addError(NotReady)
      .annotate(
        OpenApi.Description,
        "NATS connected, event store reachable, projections within lag, not shutting down (503 otherwise)."
      )
  ) {}

export class MetricsGroup extends HttpApiGroup.make("metrics").add(
  HttpApiEndpoint.get("metrics", "/metrics")
    .addSuccess(HttpApiSchema.Text({ contentType: "text/plain; version=0.0.4; charset=utf-8" }))
    .annotate(OpenApi.Description, "Prometheus text format.")
) {}

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
  .annotate(
    OpenApi.Description,
    "Send SMS and follow them. Every error is `{_tag, message}`; a 400 also has `field` and `reason`."
  ) {}
