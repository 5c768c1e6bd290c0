/**
 * The overview (`/console`): messages per second by status, p50/p99 to dispatch and to delivery,
 * backlogs and projection lag, kept up to date by server-sent events (htmx's sse extension swaps
 * the figures in every `SSE_EVERY`), and a link to the Grafana dashboard (`deploy/`).
 */
import { HttpServerResponse } from "@effect/platform"
import { Clock, Duration, Effect, Schedule, Stream } from "effect"
import { projectionLags } from "../http/Collect.js"
import { type ConsoleRequest, htmlResponse, isAdmin, seeOther } from "./ConsoleRequest.js"
import { type Html, html } from "./Html.js"
import { csrfField, duration, notice, page } from "./Layout.js"
import { latency, type MetricsNow, metricsNow, ratesByStatus, searchLag } from "./Figures.js"
import { SearchProjector } from "./SearchProjector.js"
import { SearchStore } from "./SearchStore.js"

export const SSE_EVERY = Duration.seconds(2)

const STATUSES = [
  "requested",
  "dispatched",
  "delivered",
  "retrying",
  "rerouted",
  "refused",
  "failed",
  "unknown",
  "resubmitted"
]

const card = (label: string, value: string | number, id?: string) =>
  html`<div class="card"${id ? html` id="${id}"` : ""}><div class="value">${value}</div><div class="label">${label}</div></div>`

const ms = (value: number | undefined) => (value === undefined ? "—" : duration(value))

const sumOf = (metrics: MetricsNow, name: string, stream: string) =>
  metrics
    .all(name)
    .filter((s) => s.labels.stream === stream)
    .reduce((sum, s) => sum + s.value, 0)

/** The live part of the page: what one server-sent event replaces. */
export const figures = Effect.gen(function* () {
  const store = yield* SearchStore
  const now = yield* Clock.currentTimeMillis
  const rates = ratesByStatus(store, now)
  const toDispatch = latency(store, "dispatch", now)
  const toDelivery = latency(store, "delivery", now)
  const metrics = yield* metricsNow
  const lags = yield* Effect.orElseSucceed(projectionLags, () => new Map<string, number>())
  const search = yield* Effect.orElseSucceed(searchLag(store), () => undefined)
  const worstLag = Math.max(0, ...lags.values())
  return html`<h2>Messages per second (last minute)</h2>
<div class="cards">${STATUSES.map((s) => card(s, (rates.get(s) ?? 0).toFixed(2), `rate-${s}`))}</div>
<h2>Latency (last 5 minutes)</h2>
<div class="cards">
  ${card("to dispatch p50 / p99", `${ms(toDispatch.p50)} / ${ms(toDispatch.p99)}`)}
  ${card("to delivery p50 / p99", `${ms(toDelivery.p50)} / ${ms(toDelivery.p99)}`)}
  ${card("dispatches measured", toDispatch.count)}
  ${card("deliveries measured", toDelivery.count)}
</div>
<h2>Backlogs and lag</h2>
<div class="cards">
  ${card("commands waiting (intake)", sumOf(metrics, "sms_consumer_pending_messages", "SMS_COMMANDS"))}
  ${card("work waiting (all providers)", sumOf(metrics, "sms_consumer_pending_messages", "SMS_WORK"))}
  ${card("provider calls in flight", sumOf(metrics, "sms_consumer_ack_pending_messages", "SMS_WORK"))}
  ${card("delivery reports waiting", sumOf(metrics, "sms_consumer_pending_messages", "SMS_DLR"))}
  ${card("dead letters kept", metrics.one("sms_stream_messages", { stream: "SMS_DEAD" }) ?? 0)}
  ${card("parked delivery reports", metrics.one("sms_parked_reports", {}) ?? 0)}
  ${card("projection lag (appends, worst)", lags.size === 0 ? "—" : worstLag)}
  ${card("console search lag (appends)", search ?? "—", "search-lag")}
</div>
<p class="muted small">Updated ${new Date(now).toISOString()}</p>`
})

export const show = (request: ConsoleRequest) =>
  Effect.gen(function* () {
    const live: Html = yield* figures
    const grafana = process.env.GRAFANA_URL
    const rebuilt = request.query.get("rebuilt")
    const body = html`${rebuilt ? notice("ok", "the console's search store is rebuilding from the first event") : ""}
<p>Dashboards and alerts: ${
      grafana
        ? html`<a href="${grafana}" rel="noopener">the Grafana dashboard</a>`
        : html`import <code>deploy/grafana-dashboard.json</code> into Grafana (set <code>GRAFANA_URL</code> to link it here)`
    }.</p>
<div hx-ext="sse" sse-connect="/console/overview/stream">
  <div id="figures" sse-swap="figures">${live}</div>
</div>
${
  isAdmin(request)
    ? html`<h2>Search store</h2><form class="action" method="post" action="/console/search/rebuild">${csrfField(request.session)}
<button type="submit" class="secondary">Rebuild this process's search store</button></form>`
    : ""
}`
    return htmlResponse(page({ title: "Overview", session: request.session, section: "/console", body }))
  })

/** One server-sent event: every line of the fragment as a `data:` line. */
export const sseEvent = (name: string, fragment: Html) =>
  `event: ${name}\n${fragment.text
    .split("\n")
    .map((line) => `data: ${line}`)
    .join("\n")}\n\n`

/** The figures every `SSE_EVERY` while `open()` holds (the HTTP role stops it when draining). */
export const stream = (open: () => boolean) =>
  Effect.gen(function* () {
    const context = yield* Effect.context<Effect.Effect.Context<typeof figures>>()
    const encoder = new TextEncoder()
    const events = Stream.repeatEffectWithSchedule(
      Effect.provide(figures, context).pipe(
        Effect.map((fragment) => encoder.encode(sseEvent("figures", fragment)))
      ),
      Schedule.spaced(SSE_EVERY)
    ).pipe(
      Stream.takeWhile(() => open()),
      // the browser reconnects by itself; an error ends this stream, not the process
      Stream.catchAllCause(() => Stream.empty)
    )
    return HttpServerResponse.stream(events, {
      contentType: "text/event-stream",
      headers: { "cache-control": "no-store", "x-accel-buffering": "no" }
    })
  })

export const rebuild = (request: ConsoleRequest) =>
  Effect.gen(function* () {
    yield* (yield* SearchProjector).rebuild
    yield* Effect.logInfo("console search store rebuild").pipe(
      Effect.annotateLogs({ by: request.session.clientId })
    )
    return seeOther("/console?rebuilt=1")
  })
