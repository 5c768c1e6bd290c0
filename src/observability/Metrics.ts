/**
 * The gateway's metrics, as Effect `Metric`s in the process's registry; `/metrics` renders them in
 * the Prometheus text format (`Prometheus.ts`) together with gauges computed at scrape time
 * (consumer backlogs, projection lag, circuit breakers, recorded event totals: `http/Collect.ts`).
 *
 * Each helper returns an Effect to run where the thing happens; names follow Prometheus
 * conventions (`_total` counters, `_seconds` histograms, base units).
 */
import { Effect, Metric, MetricBoundaries, MetricLabel } from "effect"

/**
 * Tagged metrics are kept: building one (labels, key, hash) cost about 3 µs per update, and every
 * message updates a dozen. Tag values are bounded (routes, providers, outcomes, clients).
 */
const tagged = new WeakMap<object, Map<string, unknown>>()

const withTags = <Type, In, Out>(
  metric: Metric.Metric<Type, In, Out>,
  tags: Readonly<Record<string, string>>
): Metric.Metric<Type, In, Out> => {
  const entries = Object.entries(tags)
  const id = entries.map(([key, value]) => `${key}=${value}`).join("\u0000")
  let byTags = tagged.get(metric)
  if (byTags === undefined) {
    byTags = new Map()
    tagged.set(metric, byTags)
  }
  const known = byTags.get(id) as Metric.Metric<Type, In, Out> | undefined
  if (known !== undefined) return known
  const made = Metric.taggedWithLabels(
    metric,
    entries.map(([key, value]) => MetricLabel.make(key, value))
  )
  byTags.set(id, made)
  return made
}

// ---------------------------------------------------------------------------------------------
// HTTP (incremented by the HTTP role itself)

export const httpRequestsTotal = Metric.counter("sms_http_requests_total", {
  description: "HTTP requests answered, by method, route and status code"
})

export const httpRequestDuration = Metric.histogram(
  "sms_http_request_duration_seconds",
  MetricBoundaries.fromIterable([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]),
  "Time to answer an HTTP request, by method and route"
)

export const httpRequest = (method: string, route: string, status: number, seconds: number) =>
  Effect.zipRight(
    Metric.increment(withTags(httpRequestsTotal, { method: method, route: route, status: String(status) })),
    Metric.update(withTags(httpRequestDuration, { method: method, route: route }), seconds)
  )

// ---------------------------------------------------------------------------------------------
// Ingress and quotas (incremented by the HTTP ingress and the intake's quota gate)

export const messagesAcceptedTotal = Metric.counter("sms_messages_accepted_total", {
  description: "SendSms commands stored by an ingress (source: http, grpc or nats), by duplicate or new"
})

export const messageAccepted = (source: "http" | "nats" | "grpc", duplicate: boolean) =>
  Metric.increment(withTags(messagesAcceptedTotal, { source: source, duplicate: String(duplicate) }))

export const quotaRejectionsTotal = Metric.counter("sms_quota_rejections_total", {
  description: "Messages refused because their client's daily quota was used up, by client and source"
})

export const quotaRejections = (clientId: string, source: "http" | "nats" | "grpc" | "outbox") =>
  Metric.increment(withTags(quotaRejectionsTotal, { client: clientId, source: source }))

export const authFailuresTotal = Metric.counter("sms_http_auth_failures_total", {
  description: "HTTP requests refused for a missing, unknown or revoked API key (401) or a scope (403)"
})

export const authFailure = (status: 401 | 403) =>
  Metric.increment(withTags(authFailuresTotal, { status: String(status) }))

// ---------------------------------------------------------------------------------------------
// Messages by status and provider: incremented where message events are appended (actors)

export const messagesTotal = Metric.counter("sms_messages_total", {
  description:
    "Message events appended by this process, by status (requested, dispatched, retrying, delivered, failed, resubmitted, unknown) and provider"
})

const statusOfEvent: Record<string, string> = {
  SmsRequested: "requested",
  SmsDispatched: "dispatched",
  SmsRetried: "retrying",
  SmsDelivered: "delivered",
  SmsFailed: "failed",
  SmsResubmitted: "resubmitted",
  SmsStatusUnknown: "unknown"
}

/**
 * Counts appended message events: call right after a successful append with the events appended
 * (not for a duplicate append). `provider` is the event's, or `none`.
 */
export const recordMessageEvents = (events: ReadonlyArray<CountedEvent>) =>
  Effect.sync(() => countMessageEvents(events))

interface CountedEvent {
  readonly _tag: string
  readonly provider?: string | undefined
  /** set on a report that contradicts a final status: counted as `contradicted`, not a second outcome */
  readonly contradicts?: string | undefined
}

/** The same count, made at once: one update per status and provider of a batch, not per event. */
const countMessageEvents = (events: ReadonlyArray<CountedEvent>) => {
  if (events.length === 0) return
  const counts = new Map<string, { status: string; provider: string; n: number }>()
  for (const event of events) {
    const status =
      event.contradicts !== undefined ? "contradicted" : (statusOfEvent[event._tag] ?? event._tag)
    const provider = event.provider ?? "none"
    const key = `${status}\u0000${provider}`
    const known = counts.get(key)
    if (known === undefined) counts.set(key, { status, provider, n: 1 })
    else known.n++
  }
  for (const { status, provider, n } of counts.values()) {
    withTags(messagesTotal, { status, provider }).unsafeUpdate(n, [])
  }
}

// ---------------------------------------------------------------------------------------------
// Provider calls (incremented by the provider actor)

export const providerRequestDuration = Metric.histogram(
  "sms_provider_request_duration_seconds",
  MetricBoundaries.fromIterable([0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]),
  "Duration of provider submit calls, by provider and outcome (accepted, transient, permanent, throttled)"
)

export const providerErrorsTotal = Metric.counter("sms_provider_errors_total", {
  description:
    "Failed provider calls, by provider and kind (timeout, http_5xx, throttled, network, invalid_number, rejected, ...)"
})

export const retriesTotal = Metric.counter("sms_retries_total", {
  description: "Retries scheduled (SmsRetried), by provider and reason"
})

export const deadLettersTotal = Metric.counter("sms_dead_letters_total", {
  description: "Messages given up on (dead letters published), by provider and cause"
})

export const deadLettered = (provider: string, cause: string) =>
  Metric.increment(withTags(deadLettersTotal, { provider: provider, cause: cause }))

export const circuitTransitionsTotal = Metric.counter("sms_circuit_breaker_transitions_total", {
  description: "Circuit breaker state changes, by provider and new state (Closed, Open, HalfOpen)"
})

export const circuitTransition = (provider: string, state: string) =>
  Metric.increment(withTags(circuitTransitionsTotal, { provider: provider, state: state }))

export const deliveryReportsTotal = Metric.counter("sms_delivery_reports_total", {
  description: "Delivery reports taken in, by provider and outcome (stored, bad_signature, malformed)"
})

export const deliveryReport = (provider: string, outcome: "stored" | "bad_signature" | "malformed") =>
  Metric.increment(withTags(deliveryReportsTotal, { provider: provider, outcome: outcome }))

// ---------------------------------------------------------------------------------------------
// Parked delivery reports (by the delivery-report actor; the number held is a scrape-time gauge,
// `sms_parked_reports`, in http/Collect.ts). Providers are the configured ones: a report of an unknown
// provider is terminated before it could be parked.

export const reportsParkedTotal = Metric.counter("sms_reports_parked_total", {
  description:
    "Delivery reports parked in KV sms_parked_dlrs (matched no dispatch for the whole retry window), by provider"
})

export const reportParked = (provider: string) =>
  Metric.increment(withTags(reportsParkedTotal, { provider: provider }))

export const parkedReportsDroppedTotal = Metric.counter("sms_parked_reports_dropped_total", {
  description:
    "Delivery reports that should have been parked and were dropped, by provider and reason (full: the bucket is at its bound)"
})

export const parkedReportDropped = (provider: string, reason: "full") =>
  Metric.increment(withTags(parkedReportsDroppedTotal, { provider: provider, reason: reason }))

// ---------------------------------------------------------------------------------------------
// Report deadlines (by the report-deadline worker, in the dlr role)

export const statusUnknownTotal = Metric.counter("sms_status_unknown_total", {
  description:
    "Messages recorded unknown (SmsStatusUnknown): no final delivery report within their provider's reportDeadlineMs, by provider"
})

export const statusUnknown = (provider: string, n = 1) =>
  Metric.incrementBy(withTags(statusUnknownTotal, { provider: provider }), n)

export const reportStatusQueriesTotal = Metric.counter("sms_report_status_queries_total", {
  description:
    "Status queries to a provider at a message's report deadline (twilio, vonage), by provider and outcome: delivered, failed (a final answer, recorded as its report), pending (not final: recorded unknown), error (no usable answer: recorded unknown)"
})

export const reportStatusQueries = (
  provider: string,
  outcome: "delivered" | "failed" | "pending" | "error",
  n = 1
) => Metric.incrementBy(withTags(reportStatusQueriesTotal, { provider: provider, outcome: outcome }), n)

// ---------------------------------------------------------------------------------------------
// SQL outbox intake (the outbox role, `src/outbox/`), by table: per process

export const outboxRowsTotal = Metric.counter("sms_outbox_rows_total", {
  description: "Outbox rows claimed, by table and outcome (queued: stored as a SendSms; rejected)"
})

export const outboxClaimDuration = Metric.histogram(
  "sms_outbox_claim_duration_seconds",
  MetricBoundaries.fromIterable([0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10]),
  "Time of one claim transaction that took rows (select, store in JetStream, mark, commit), by table"
)

export const outboxErrorsTotal = Metric.counter("sms_outbox_errors_total", {
  description:
    "Outbox failures, by table and kind (unavailable, timeout, schema, query: the database; nats: storing the commands)"
})

export const outboxRowsPending = Metric.gauge("sms_outbox_rows_pending", {
  description: "Rows waiting in the outbox table (status pending), counted every few seconds, by table"
})

export const outboxDatabaseUp = Metric.gauge("sms_outbox_database_up", {
  description: "1 while the outbox role reaches its database and table, 0 while it backs off, by table"
})

export const outboxStatusWritesTotal = Metric.counter("sms_outbox_status_writes_total", {
  description: "Outbox rows updated with a message's status (dispatched, delivered, failed...), by table"
})

export const outboxClaimed = (table: string, queued: number, rejected: number, seconds: number) =>
  Effect.sync(() => {
    if (queued > 0) withTags(outboxRowsTotal, { table, outcome: "queued" }).unsafeUpdate(queued, [])
    if (rejected > 0) withTags(outboxRowsTotal, { table, outcome: "rejected" }).unsafeUpdate(rejected, [])
    withTags(outboxClaimDuration, { table }).unsafeUpdate(seconds, [])
  })

export const outboxError = (table: string, kind: string) =>
  Metric.increment(withTags(outboxErrorsTotal, { table, kind }))

export const outboxPending = (table: string, rows: number) =>
  Metric.set(withTags(outboxRowsPending, { table }), rows)

export const outboxUp = (table: string, up: boolean) =>
  Metric.set(withTags(outboxDatabaseUp, { table }), up ? 1 : 0)

export const outboxStatusWrites = (table: string, rows: number) =>
  Metric.incrementBy(withTags(outboxStatusWritesTotal, { table }), rows)

/**
 * The same updates, made at once outside any Effect: for the webhook's fast path, which answers a
 * report without running an Effect (one per report cost more than the rest of the request).
 */
export const unsafe = {
  circuitTransition: (provider: string, state: string) =>
    withTags(circuitTransitionsTotal, { provider: provider, state: state }).unsafeUpdate(1, []),
  /** a provider call's duration by outcome, its error kind, and a retry when it was transient */
  providerCall: (
    provider: string,
    outcome: "accepted" | "transient" | "permanent" | "throttled",
    seconds: number,
    error?: { readonly kind: string; readonly retried: boolean }
  ) => {
    withTags(providerRequestDuration, { provider: provider, outcome: outcome }).unsafeUpdate(seconds, [])
    if (error === undefined) return
    withTags(providerErrorsTotal, { provider: provider, kind: error.kind }).unsafeUpdate(1, [])
    if (error.retried) withTags(retriesTotal, { provider: provider, reason: error.kind }).unsafeUpdate(1, [])
  },
  httpRequest: (method: string, route: string, status: number, seconds: number) => {
    withTags(httpRequestsTotal, { method: method, route: route, status: String(status) }).unsafeUpdate(1, [])
    withTags(httpRequestDuration, { method: method, route: route }).unsafeUpdate(seconds, [])
  },
  deliveryReport: (provider: string, outcome: "stored" | "bad_signature" | "malformed") =>
    withTags(deliveryReportsTotal, { provider: provider, outcome: outcome }).unsafeUpdate(1, [])
}
