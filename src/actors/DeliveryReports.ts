/**
 * Delivery reports as stored on `sms.dlr.<provider>`: the report the webhook verified and parsed,
 * plus the raw body for the audit trail. The webhook answers the provider only after JetStream
 * has this record, so a report is never lost between the two.
 */
import { Clock, Effect, Schema } from "effect"
import { FailureReason } from "../domain/Message.js"
import { Nats, NatsError } from "../nats/Nats.js"
import { Subjects } from "../nats/Topology.js"
import type { DeliveryReport } from "../providers/ProviderAdapter.js"

export class StoredDeliveryReport extends Schema.Class<StoredDeliveryReport>("StoredDeliveryReport")({
  provider: Schema.String,
  receivedAt: Schema.Date,
  report: Schema.Struct({
    providerMessageId: Schema.String,
    reference: Schema.optional(Schema.String),
    outcome: Schema.Literal("delivered", "failed", "pending"),
    failureReason: Schema.optional(FailureReason),
    code: Schema.optional(Schema.String),
    rawStatus: Schema.String
  }),
  raw: Schema.String
}) {}

export const decodeStoredDeliveryReport = Schema.decodeUnknown(Schema.parseJson(StoredDeliveryReport))
const encode = Schema.encodeSync(Schema.parseJson(StoredDeliveryReport))

export const storeDeliveryReport = Effect.fnUntraced(function* (
  provider: string,
  report: DeliveryReport,
  raw: string
) {
  const { js } = yield* Nats
  const receivedAt = new Date(yield* Clock.currentTimeMillis)
  const record = new StoredDeliveryReport({ provider, receivedAt, report, raw })
  yield* Effect.tryPromise({
    try: () => js.publish(Subjects.dlr(provider), encode(record)),
    catch: (cause) =>
      new NatsError({ reason: "RequestFailed", message: "cannot store delivery report", cause })
  })
})
