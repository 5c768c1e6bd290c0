/**
 * The gateway's metrics, kept by `prom-client` (the maintained Prometheus client for Node) in this
 * process's `registry`; `/metrics` renders it (`Prometheus.ts`) together with gauges computed at
 * scrape time (consumer backlogs, projection lag, circuit breakers, recorded event totals:
 * `http/Collect.ts`).
 *
 * Each helper returns an Effect to run where the thing happens (`unsafe` holds the same updates
 * for code outside an Effect); names follow Prometheus conventions (`_total` counters, `_seconds`
 * histograms, base units). Label values are bounded (routes, providers, outcomes, clients).
 */
import { Effect } from "effect"
import { Counter, Gauge, Histogram, Registry } from "prom-client"

/** This process's metrics; a registry of its own, so nothing a dependency registers leaks in. */
export const registry = new Registry()

const counter = <Label extends string>(name: string, help: string, labelNames: ReadonlyArray<Label>) =>
  new Counter<Label>({ name, help, labelNames, registers: [registry] })

const gauge = <Label extends string>(name: string, help: string, labelNames: ReadonlyArray<Label>) =>
  new Gauge<Label>({ name, help, labelNames, registers: [registry] })

const histogram = <Label extends string>(
  name: string,
  help: string,
  labelNames: ReadonlyArray<Label>,
  buckets: Array<number>
) => new Histogram<Label>({ name, help, labelNames, buckets, registers: [registry] })

// ---------------------------------------------------------------------------------------------
// HTTP (incremented by the HTTP role itself)

export const httpRequestsTotal = counter(
  "sms_http_requests_total",
  "HTTP requests answered, by method, route and status code",
  ["method", "route", "status"]
)

export const httpRequestDuration = histogram(
  "sms_http_request_duration_seconds",
  "Time to answer an HTTP request, by method and route",
  ["method", "route"],
  [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
)

export const httpRequest = (method: string, route: string, status: number, seconds: number) =>
  Effect.sync(() => unsafe.httpRequest(method, route, status, seconds))

// ---------------------------------------------------------------------------------------------
// Ingress and quotas (incremented by the HTTP ingress and the intake's quota gate)

export const messagesAcceptedTotal = counter(
  "sms_messages_accepted_total",
  "SendSms commands stored by an ingress (source: http, grpc or nats), by duplicate or new",
  ["source", "duplicate"]
)

export const messageAccepted = (source: "http" | "nats" | "grpc", duplicate: boolean) =>
  Effect.sync(() => messagesAcceptedTotal.inc({ source, duplicate: String(duplicate) }))

export const quotaRejectionsTotal = counter(
  "sms_quota_rejections_total",
  "Messages refused because their client's daily quota was used up, by client and source",
  ["client", "source"]
)

export const quotaRejections = (clientId: string, source: "http" | "nats" | "grpc" | "outbox") =>
  Effect.sync(() => quotaRejectionsTotal.inc({ client: clientId, source }))

export const authFailuresTotal = counter(
  "sms_http_auth_failures_total",
  "HTTP requests refused for a missing, unknown or revoked API key (401) or a scope (403)",
  ["status"]
)

export const authFailure = (status: 401 | 403) =>
  Effect.sync(() => authFailuresTotal.inc({ status: String(status) }))

// ---------------------------------------------------------------------------------------------
// Messages by status and provider: incremented where message events are appended (actors)

export const messagesTotal = counter(
  "sms_messages_total",
  "Message events appended by this process, by status (requested, dispatched, retrying, delivered, failed, resubmitted, unknown) and provider",
  ["status", "provider"]
)

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
    messagesTotal.inc({ status, provider }, n)
  }
}

// ---------------------------------------------------------------------------------------------
// Provider calls (incremented by the provider actor)

export const providerRequestDuration = histogram(
  "sms_provider_request_duration_seconds",
  "Duration of provider submit calls, by provider and outcome (accepted, transient, permanent, throttled)",
  ["provider", "outcome"],
  [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
)

export const providerErrorsTotal = counter(
  "sms_provider_errors_total",
  "Failed provider calls, by provider and kind (timeout, http_5xx, throttled, network, invalid_number, rejected, ...)",
  ["provider", "kind"]
)

export const retriesTotal = counter(
  "sms_retries_total",
  "Retries scheduled (SmsRetried), by provider and reason",
  ["provider", "reason"]
)

export const deadLettersTotal = counter(
  "sms_dead_letters_total",
  "Messages given up on (dead letters published), by provider and cause",
  ["provider", "cause"]
)

export const deadLettered = (provider: string, cause: string) =>
  Effect.sync(() => deadLettersTotal.inc({ provider, cause }))

export const circuitTransitionsTotal = counter(
  "sms_circuit_breaker_transitions_total",
  "Circuit breaker state changes, by provider and new state (Closed, Open, HalfOpen)",
  ["provider", "state"]
)

export const circuitTransition = (provider: string, state: string) =>
  Effect.sync(() => unsafe.circuitTransition(provider, state))

export const deliveryReportsTotal = counter(
  "sms_delivery_reports_total",
  "Delivery reports taken in, by provider and outcome (recorded on the message at once, stored for the report actor, bad_signature, malformed)",
  ["provider", "outcome"]
)

export const deliveryReport = (
  provider: string,
  outcome: "recorded" | "stored" | "bad_signature" | "malformed"
) => Effect.sync(() => unsafe.deliveryReport(provider, outcome))

// ---------------------------------------------------------------------------------------------
// Parked delivery reports (by the delivery-report actor; the number held is a scrape-time gauge,
// `sms_parked_reports`, in http/Collect.ts). Providers are the configured ones: a report of an unknown
// provider is terminated before it could be parked.

export const reportsParkedTotal = counter(
  "sms_reports_parked_total",
  "Delivery reports parked in KV sms_parked_dlrs (matched no dispatch for the whole retry window), by provider",
  ["provider"]
)

export const reportParked = (provider: string) => Effect.sync(() => reportsParkedTotal.inc({ provider }))

export const parkedReportsDroppedTotal = counter(
  "sms_parked_reports_dropped_total",
  "Delivery reports that should have been parked and were dropped, by provider and reason (full: the bucket is at its bound)",
  ["provider", "reason"]
)

export const parkedReportDropped = (provider: string, reason: "full") =>
  Effect.sync(() => parkedReportsDroppedTotal.inc({ provider, reason }))

// ---------------------------------------------------------------------------------------------
// Report deadlines (by the report-deadline worker, in the dlr role)

export const statusUnknownTotal = counter(
  "sms_status_unknown_total",
  "Messages recorded unknown (SmsStatusUnknown): no final delivery report within their provider's reportDeadlineMs, by provider",
  ["provider"]
)

export const statusUnknown = (provider: string, n = 1) =>
  Effect.sync(() => statusUnknownTotal.inc({ provider }, n))

export const reportStatusQueriesTotal = counter(
  "sms_report_status_queries_total",
  "Status queries to a provider at a message's report deadline (twilio, vonage), by provider and outcome: delivered, failed (a final answer, recorded as its report), pending (not final: recorded unknown), error (no usable answer: recorded unknown)",
  ["provider", "outcome"]
)

export const reportStatusQueries = (
  provider: string,
  outcome: "delivered" | "failed" | "pending" | "error",
  n = 1
) => Effect.sync(() => reportStatusQueriesTotal.inc({ provider, outcome }, n))

// ---------------------------------------------------------------------------------------------
// SQL outbox intake (the outbox role, `src/outbox/`), by table: per process

export const outboxRowsTotal = counter(
  "sms_outbox_rows_total",
  "Outbox rows claimed, by table and outcome (queued: stored as a SendSms; rejected)",
  ["table", "outcome"]
)

export const outboxClaimDuration = histogram(
  "sms_outbox_claim_duration_seconds",
  "Time of one claim transaction that took rows (select, store in JetStream, mark, commit), by table",
  ["table"],
  [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10]
)

export const outboxErrorsTotal = counter(
  "sms_outbox_errors_total",
  "Outbox failures, by table and kind (unavailable, timeout, schema, query: the database; nats: storing the commands)",
  ["table", "kind"]
)

export const outboxRowsPending = gauge(
  "sms_outbox_rows_pending",
  "Rows waiting in the outbox table (status pending), counted every few seconds, by table",
  ["table"]
)

export const outboxDatabaseUp = gauge(
  "sms_outbox_database_up",
  "1 while the outbox role reaches its database and table, 0 while it backs off, by table",
  ["table"]
)

export const outboxStatusWritesTotal = counter(
  "sms_outbox_status_writes_total",
  "Outbox rows updated with a message's status (dispatched, delivered, failed...), by table",
  ["table"]
)

export const outboxClaimed = (table: string, queued: number, rejected: number, seconds: number) =>
  Effect.sync(() => {
    if (queued > 0) outboxRowsTotal.inc({ table, outcome: "queued" }, queued)
    if (rejected > 0) outboxRowsTotal.inc({ table, outcome: "rejected" }, rejected)
    outboxClaimDuration.observe({ table }, seconds)
  })

export const outboxError = (table: string, kind: string) =>
  Effect.sync(() => outboxErrorsTotal.inc({ table, kind }))

export const outboxPending = (table: string, rows: number) =>
  Effect.sync(() => outboxRowsPending.set({ table }, rows))

export const outboxUp = (table: string, up: boolean) =>
  Effect.sync(() => outboxDatabaseUp.set({ table }, up ? 1 : 0))

export const outboxStatusWrites = (table: string, rows: number) =>
  Effect.sync(() => outboxStatusWritesTotal.inc({ table }, rows))

/**
 * The same updates, made at once outside any Effect: for the webhook's fast path, which answers a
 * report without running an Effect (one per report cost more than the rest of the request).
 */
export const unsafe = {
  circuitTransition: (provider: string, state: string) => circuitTransitionsTotal.inc({ provider, state }),
  /** a provider call's duration by outcome, its error kind, and a retry when it was transient */
  providerCall: (
    provider: string,
    outcome: "accepted" | "transient" | "permanent" | "throttled",
    seconds: number,
    error?: { readonly kind: string; readonly retried: boolean }
  ) => {
    providerRequestDuration.observe({ provider, outcome }, seconds)
    if (error === undefined) return
    providerErrorsTotal.inc({ provider, kind: error.kind })
    if (error.retried) retriesTotal.inc({ provider, reason: error.kind })
  },
  httpRequest: (method: string, route: string, status: number, seconds: number) => {
    httpRequestsTotal.inc({ method, route, status: String(status) })
    httpRequestDuration.observe({ method, route }, seconds)
  },
  deliveryReport: (provider: string, outcome: "recorded" | "stored" | "bad_signature" | "malformed") =>
    deliveryReportsTotal.inc({ provider, outcome })
}
