/**
 * Providers: for each configured provider, its circuit and 429 pause (this process's
 * `ProviderHealth`, meaningful where the providers role runs), calls in flight and backlog (its
 * JetStream work consumer, cluster-wide), and its error rate and latency over the last minutes
 * (the search store's buckets, every process's events).
 */
import { Clock, Effect } from "effect"
import { Providers } from "../providers/Providers.js"
import { type ConsoleRequest, htmlResponse } from "./ConsoleRequest.js"
import { html } from "./Html.js"
import { badge, duration, page } from "./Layout.js"
import { errorRate, latency, metricsNow, ratesByStatus } from "./Figures.js"
import { SearchStore } from "./SearchStore.js"

const BREAKER = ["closed", "half-open", "open"] as const

const ms = (value: number | undefined) => (value === undefined ? "—" : duration(value))
const perSecond = (value: number | undefined) => (value === undefined ? "0" : value.toFixed(2))

export const list = (request: ConsoleRequest) =>
  Effect.gen(function* () {
    const store = yield* SearchStore
    const providers = (yield* Providers).all.map((p) => p.config.id)
    const metrics = yield* metricsNow
    const now = yield* Clock.currentTimeMillis
    const rows = providers.map((id) => {
      const breaker = metrics.one("sms_circuit_breaker_state", { provider: id })
      const paused = metrics.one("sms_provider_paused_seconds", { provider: id }) ?? 0
      const consumer = { stream: "SMS_WORK", consumer: `provider-${id}` }
      const rates = ratesByStatus(store, now, 5 * 60_000, id)
      const rate = errorRate(rates)
      const toDispatch = latency(store, "dispatch", now, 5 * 60_000, id)
      const toDelivery = latency(store, "delivery", now, 5 * 60_000, id)
      return html`<tr data-provider="${id}">
  <td>${id}</td>
  <td>${breaker === undefined ? html`<span class="muted">not in this process</span>` : badge(BREAKER[breaker] ?? "unknown")}</td>
  <td>${paused > 0 ? badge("paused") : ""} ${paused > 0 ? `${paused.toFixed(1)} s` : "—"}</td>
  <td class="num">${metrics.one("sms_consumer_ack_pending_messages", consumer) ?? "—"}</td>
  <td class="num">${metrics.one("sms_consumer_pending_messages", consumer) ?? "—"}</td>
  <td class="num">${perSecond(rates.get("dispatched"))}</td>
  <td class="num">${rate === undefined ? "—" : `${(rate * 100).toFixed(1)} %`}</td>
  <td class="num">${ms(toDispatch.p50)} / ${ms(toDispatch.p99)}</td>
  <td class="num">${ms(toDelivery.p50)} / ${ms(toDelivery.p99)}</td>
</tr>`
    })
    const body = html`<p class="muted">Rates, error rate and latency over the last 5 minutes (every gateway process);
circuit and pause as this process sees them; in flight and backlog from the provider's work queue.</p>
<table id="providers">
<thead><tr><th>Provider</th><th>Circuit</th><th>429 pause</th><th class="num">In flight</th><th class="num">Backlog</th>
<th class="num">Dispatched /s</th><th class="num">Error rate</th><th class="num">To dispatch p50 / p99</th><th class="num">To delivery p50 / p99</th></tr></thead>
<tbody>${rows}</tbody>
</table>`
    return htmlResponse(
      page({ title: "Providers", session: request.session, section: "/console/providers", body })
    )
  })
