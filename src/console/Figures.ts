/**
 * The numbers of the overview and provider pages, from two sources:
 *
 * - the search store's `activity` and `latency` buckets (10 s each, every gateway process's events,
 *   since they come from the event store): rates by status, error rates, p50/p99 to dispatch and to
 *   delivery;
 * - the figures `/metrics` serves (`http/Collect.ts`), read the same way: JetStream backlogs
 *   and calls in flight, projection lag, and this process's circuit breakers and 429 pauses.
 */
import { Effect, Option } from "effect"
import { EVENTS_STREAM, positionOf } from "../eventstore/JetStreamEventStore.js"
import { Nats } from "../nats/Nats.js"
import { collect } from "../http/Collect.js"
import type { Sample } from "../observability/Prometheus.js"
import { BUCKET_MS, latencyBound } from "./SearchProjection.js"
import type { SearchStoreService } from "./SearchStore.js"

/** The first bucket of a window ending now, and the seconds the window really covers. */
const windowOf = (now: number, windowMs: number) => {
  const from = Math.floor((now - windowMs) / BUCKET_MS) * BUCKET_MS
  return { from, seconds: Math.max(1, (now - from) / 1000) }
}

/** Events per second by activity (`requested`, `dispatched`, `delivered`, `retrying`, …) over the window. */
export const ratesByStatus = (
  store: SearchStoreService,
  now: number,
  windowMs = 60_000,
  provider?: string
): ReadonlyMap<string, number> => {
  const { from, seconds } = windowOf(now, windowMs)
  const rows = store.rows<{ status: string; n: number }>({
    sql: `SELECT status, sum(n) AS n FROM activity WHERE bucket >= ?${provider === undefined ? "" : " AND provider = ?"} GROUP BY status`,
    params: provider === undefined ? [from] : [from, provider]
  })
  return new Map(rows.map((r) => [r.status, r.n / seconds]))
}

export interface Percentiles {
  readonly p50: number | undefined
  readonly p99: number | undefined
  readonly count: number
}

/** The `q` quantile of latency buckets (each counted at its upper bound: within 25 %). */
export const quantile = (buckets: ReadonlyArray<{ readonly le: number; readonly n: number }>, q: number) => {
  const total = buckets.reduce((sum, b) => sum + b.n, 0)
  if (total === 0) return undefined
  const rank = Math.ceil(q * total)
  let seen = 0
  for (const bucket of buckets) {
    seen += bucket.n
    if (seen >= rank) return latencyBound(bucket.le)
  }
  return undefined
}

/** p50 and p99 of the time from request to dispatch (`kind` = dispatch) or to delivery, over the window. */
export const latency = (
  store: SearchStoreService,
  kind: "dispatch" | "delivery",
  now: number,
  windowMs = 5 * 60_000,
  provider?: string
): Percentiles => {
  const { from } = windowOf(now, windowMs)
  const buckets = store.rows<{ le: number; n: number }>({
    sql: `SELECT le, sum(n) AS n FROM latency WHERE kind = ? AND bucket >= ?${provider === undefined ? "" : " AND provider = ?"} GROUP BY le ORDER BY le`,
    params: provider === undefined ? [kind, from] : [kind, from, provider]
  })
  return {
    p50: quantile(buckets, 0.5),
    p99: quantile(buckets, 0.99),
    count: buckets.reduce((sum, b) => sum + b.n, 0)
  }
}

/**
 * A provider's error rate over the window: calls that failed (a retry after an error, or a permanent
 * refusal) among all its calls (those plus dispatches). Reroutes made no call and do not count.
 */
export const errorRate = (rates: ReadonlyMap<string, number>): number | undefined => {
  const errors = (rates.get("retrying") ?? 0) + (rates.get("refused") ?? 0)
  const calls = errors + (rates.get("dispatched") ?? 0)
  return calls === 0 ? undefined : errors / calls
}

/** The samples `/metrics` would serve now, by name. */
export const metricsNow = Effect.map(collect, (samples) => {
  const byName = new Map<string, Array<Sample>>()
  for (const sample of samples) {
    const list = byName.get(sample.name) ?? []
    list.push(sample)
    byName.set(sample.name, list)
  }
  return {
    all: (name: string): ReadonlyArray<Sample> => byName.get(name) ?? [],
    one: (name: string, labels: Readonly<Record<string, string>>): number | undefined =>
      byName.get(name)?.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value
  }
})

export type MetricsNow = Effect.Effect.Success<typeof metricsNow>

/** Appends of the (JetStream) event store this process's search store has not applied yet; none for another store. */
export const searchLag = (store: SearchStoreService) =>
  Effect.gen(function* () {
    const { jsm } = yield* Nats
    const info = yield* Effect.option(Effect.tryPromise(() => jsm.streams.info(EVENTS_STREAM)))
    if (Option.isNone(info)) return undefined
    return Math.max(0, info.value.state.last_seq - Math.floor(store.position() / positionOf(1, 0)))
  })
