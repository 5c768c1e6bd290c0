/**
 * The HTTP API, as definitions only (handlers live in `Handlers.ts`). Every error is a JSON object
 * with `_tag` and `message`; its HTTP status is an annotation on the error class.
 */
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"
import { MessageId } from "../domain/Ids.js"
import { MessageStatusView } from "../projections/MessageStatus.js"

export class MessageNotFound extends Schema.TaggedError<MessageNotFound>()(
  "MessageNotFound",
  { messageId: Schema.String, message: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}

export class UnknownProvider extends Schema.TaggedError<UnknownProvider>()(
  "UnknownProvider",
  { provider: Schema.String, message: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}

export class InvalidSignature extends Schema.TaggedError<InvalidSignature>()(
  "InvalidSignature",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 401 })
) {}

export class MalformedDeliveryReport extends Schema.TaggedError<MalformedDeliveryReport>()(
  "MalformedDeliveryReport",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 400 })
) {}

export class ServiceUnavailable extends Schema.TaggedError<ServiceUnavailable>()(
  "ServiceUnavailable",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 503 })
) {}

export const StoredEventView = Schema.Struct({
  position: Schema.Number,
  revision: Schema.Number,
  type: Schema.String,
  recordedAt: Schema.String,
  eventId: Schema.String,
  data: Schema.Unknown
})

const MessagePath = Schema.Struct({ id: MessageId })

export class MessagesGroup extends HttpApiGroup.make("messages")
  .add(
    HttpApiEndpoint.get("getMessage", "/v1/messages/:id")
      .setPath(MessagePath)
      .addSuccess(MessageStatusView)
      .addError(MessageNotFound)
      .addError(ServiceUnavailable)
  )
  .add(
    HttpApiEndpoint.get("getMessageEvents", "/v1/messages/:id/events")
      .setPath(MessagePath)
      .addSuccess(Schema.Struct({ messageId: Schema.String, events: Schema.Array(StoredEventView) }))
      .addError(MessageNotFound)
      .addError(ServiceUnavailable)
  ) {}

export class DeliveryReportsGroup extends HttpApiGroup.make("deliveryReports").add(
  // the body is read raw: signatures are computed over the exact bytes the provider sent
  HttpApiEndpoint.post("receiveDeliveryReport", "/v1/providers/:provider/delivery-reports")
    .setPath(Schema.Struct({ provider: Schema.String }))
    .addSuccess(Schema.Struct({ stored: Schema.Boolean }))
    .addError(UnknownProvider)
    .addError(InvalidSignature)
    .addError(MalformedDeliveryReport)
    .addError(ServiceUnavailable)
) {}

export class HealthGroup extends HttpApiGroup.make("health").add(
  HttpApiEndpoint.get("health", "/health").addSuccess(Schema.Struct({ status: Schema.Literal("ok") }))
) {}

export class GatewayApi extends HttpApi.make("sms-gateway")
  .add(MessagesGroup)
  .add(DeliveryReportsGroup)
  .add(HealthGroup) {}
