/**
 * Delivery reports as stored on `sms.dlr.<provider>`: the report the webhook verified and parsed,
 * plus the raw body for the audit trail. The webhook answers the provider only after JetStream
 * has this record, so a report is never lost between the two.
 *
 * Wire format (JSON, a contract between gateway versions): `{ provider, receivedAt: ISO, report:
 * { providerMessageId, reference?, outcome, failureReason?, code?, rawStatus }, raw }`. Read and
 * written with plain functions: every report passes here, and a Schema decode cost more than the rest.
 */
import { Clock, Effect } from "effect"
import { type FailureReason, FailureReason as FailureReasons } from "../domain/Message.js"
import { jsonObject } from "../domain/PlainChecks.js"
import { Nats, NatsError } from "../nats/Nats.js"
import { Subjects } from "../nats/Topology.js"
import { startSpan } from "../observability/Tracing.js"
import type { DeliveryReport } from "../providers/ProviderAdapter.js"

export interface StoredDeliveryReport {
  readonly provider: string
  readonly receivedAt: Date
  readonly report: DeliveryReport
  readonly raw: string
}

const failureReasons: ReadonlySet<string> = new Set(FailureReasons.literals)
const outcomes: ReadonlySet<string> = new Set(["delivered", "failed", "pending"])

const optionalString = (value: unknown): value is string | undefined =>
  value === undefined || typeof value === "string"

/** The report of a stored record, or undefined when it is not one. */
const reportOf = (value: unknown): DeliveryReport | undefined => {
  if (typeof value !== "object" || value === null) return undefined
  const { providerMessageId, reference, outcome, failureReason, code, rawStatus } = value as Record<
    string,
    unknown
  >
  if (typeof providerMessageId !== "string" || typeof rawStatus !== "string") return undefined
  if (typeof outcome !== "string" || !outcomes.has(outcome)) return undefined
  if (!optionalString(reference) || !optionalString(code)) return undefined
  if (
    failureReason !== undefined &&
    (typeof failureReason !== "string" || !failureReasons.has(failureReason))
  ) {
    return undefined
  }
  return {
    providerMessageId,
    outcome: outcome as DeliveryReport["outcome"],
    rawStatus,
    ...(reference === undefined ? {} : { reference }),
    ...(failureReason === undefined ? {} : { failureReason: failureReason as FailureReason }),
    ...(code === undefined ? {} : { code })
  }
}

export const decodeStoredDeliveryReport = (text: string): StoredDeliveryReport | undefined => {
  const json = jsonObject(text)
  if (json === undefined) return undefined
  const { provider, receivedAt, report, raw } = json
  if (typeof provider !== "string" || typeof raw !== "string" || typeof receivedAt !== "string")
    return undefined
  const at = new Date(receivedAt)
  const parsed = reportOf(report)
  return Number.isNaN(at.getTime()) || parsed === undefined
    ? undefined
    : { provider, receivedAt: at, report: parsed, raw }
}

export const encodeStoredDeliveryReport = (record: StoredDeliveryReport): string =>
  JSON.stringify({
    provider: record.provider,
    receivedAt: record.receivedAt.toISOString(),
    report: record.report,
    raw: record.raw
  })

export const storeDeliveryReport = Effect.fnUntraced(function* (
  provider: string,
  report: DeliveryReport,
  raw: string
) {
  const { publish } = yield* Nats
  const receivedAt = new Date(yield* Clock.currentTimeMillis)
  const payload = encodeStoredDeliveryReport({ provider, receivedAt, report, raw })
  // while traces are recorded: the report's own trace, which the report actor links to
  const span = startSpan({
    name: "sms.delivery_report",
    kind: "internal",
    attributes: { "sms.provider": provider, "sms.provider_message_id": report.providerMessageId }
  })
  yield* Effect.tryPromise({
    try: () => publish(Subjects.dlr(provider), payload, span && { traceparent: span.traceparent }),
    catch: (cause) =>
      new NatsError({ reason: "RequestFailed", message: "cannot store delivery report", cause })
  }).pipe(Effect.ensuring(Effect.sync(() => span?.end())))
})
