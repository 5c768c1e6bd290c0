/**
 * Gauges computed when `/metrics` is scraped, from the state they describe (so they are never
 * stale and cost nothing between scrapes):
 *
 * - `sms_consumer_pending_messages`, `sms_consumer_ack_pending_messages`,
 *   `sms_consumer_redelivered_messages` `{stream, consumer}`: JetStream consumer info (cluster-wide);
 * - `sms_stream_messages{stream}`: messages held per stream (dead letters, rejects, backlog);
 * - `sms_projection_lag_appends{projection}`: event-store appends not yet applied by a projection
 *   (checkpoint vs the head of `SMS_EVENTS`; embedded JetStream store only);
 * - `sms_circuit_breaker_state{provider}` (0 closed, 1 half-open, 2 open) and
 *   `sms_provider_paused_seconds{provider}`: this process's `ProviderHealth`;
 * - `sms_recorded_events_total{type, provider, reason}`: the stats projection's totals (cluster-wide);
 * - `sms_parked_reports`: delivery reports parked in KV `sms_parked_dlrs` (cluster-wide);
 * - `process_heap_used_bytes`, `process_uptime_seconds` (`prom-client`'s collectors add the rest of
 *   the process's figures, `process_resident_memory_bytes` among them: `observability/Prometheus.ts`).
 *
 * A source that cannot be read is left out of that scrape (and logged at debug level).
 */
import { Effect, Option } from "effect"
import { ProviderHealth } from "../dispatch/ProviderHealth.js"
import { EventStore } from "../eventstore/EventStore.js"
import { EVENTS_STREAM } from "../eventstore/JetStreamEventStore.js"
import { Nats, natsRequest } from "../nats/Nats.js"
import { Streams } from "../nats/Topology.js"
import { ReadModels } from "../projections/ReadModels.js"
import { reactors, readModels } from "../projections/Registry.js"
import { getStats } from "../projections/Stats.js"
import type { Sample } from "../observability/Prometheus.js"

const CONSUMER_STREAMS = [Streams.commands, Streams.work, Streams.dlr] as const
const COUNTED_STREAMS = [...Object.values(Streams), EVENTS_STREAM]

const gauge = (name: string, help: string, labels: Record<string, string>, value: number): Sample => ({
  name,
  help,
  type: "gauge",
  labels,
  value
})

const bestEffort = <E, R>(what: string, effect: Effect.Effect<ReadonlyArray<Sample>, E, R>) =>
  effect.pipe(
    Effect.timeoutFail({ duration: "2 seconds", onTimeout: () => `timed out collecting ${what}` }),
    Effect.catchAllCause((cause) =>
      Effect.logDebug(`metrics: cannot collect ${what}`, cause).pipe(Effect.as<ReadonlyArray<Sample>>([]))
    )
  )

export const consumerSamples = Effect.gen(function* () {
  const { jsm } = yield* Nats
  const samples: Array<Sample> = []
  for (const stream of CONSUMER_STREAMS) {
    const consumers = yield* natsRequest(`cannot list consumers of ${stream}`, async () => {
      const found = await jsm.streams.info(stream).catch(() => undefined)
      return found === undefined ? [] : await jsm.consumers.list(stream).next()
    })
    for (const info of consumers) {
      const labels = { stream, consumer: info.name }
      samples.push(
        gauge(
          "sms_consumer_pending_messages",
          "Messages not yet delivered to the consumer",
          labels,
          info.num_pending
        ),
        gauge(
          "sms_consumer_ack_pending_messages",
          "Messages delivered and not yet acknowledged (in flight or waiting for a retry)",
          labels,
          info.num_ack_pending
        ),
        gauge(
          "sms_consumer_redelivered_messages",
          "Messages delivered more than once, unacknowledged",
          labels,
          info.num_redelivered
        )
      )
    }
  }
  return samples
})

export const streamSamples = Effect.gen(function* () {
  const { jsm } = yield* Nats
  const samples: Array<Sample> = []
  for (const stream of COUNTED_STREAMS) {
    const info = yield* natsRequest(`cannot read stream ${stream}`, () => jsm.streams.info(stream)).pipe(
      Effect.option
    )
    if (Option.isSome(info)) {
      samples.push(
        gauge(
          "sms_stream_messages",
          "Messages held by a JetStream stream",
          { stream },
          info.value.state.messages
        )
      )
    }
  }
  return samples
})

/** Lag figures stop counting here: past it a projection is simply far behind. */
const LAG_CAP = 100_000

/**
 * Appends of the event store each projection has not applied yet (its checkpoint to the head), the
 * same way on every store (`EventStore.appendsAfter`).
 */
export const projectionLags = Effect.gen(function* () {
  const store = yield* EventStore
  const { checkpoints } = yield* ReadModels
  // the projector's projections (listing the bucket's keys instead can stall while checkpoints move)
  const names = [...(yield* readModels).map((model) => model.projection.name), ...reactors.map((r) => r.name)]
  const checkpointed: Array<readonly [string, number]> = []
  for (const name of names) {
    const entry = yield* natsRequest(`cannot read checkpoint ${name}`, () => checkpoints.get(name))
    if (entry === null || entry.operation !== "PUT") continue
    const position = Number(entry.string())
    if (Number.isFinite(position)) checkpointed.push([name, position])
  }
  const lags = yield* Effect.option(
    store.appendsAfter(
      checkpointed.map(([, position]) => position),
      LAG_CAP
    )
  )
  return new Map(
    Option.match(lags, {
      onNone: () => [],
      onSome: (behind) => checkpointed.map(([name], i) => [name, behind[i] ?? 0] as const)
    })
  )
})

export const projectionSamples = Effect.map(projectionLags, (lags) =>
  [...lags].map(([projection, lag]) =>
    gauge(
      "sms_projection_lag_appends",
      "Event-store appends a projection has not applied yet (from its checkpoint to the store's head, counted up to 100,000)",
      { projection },
      lag
    )
  )
)

const BREAKER_VALUE: Record<string, number> = { Closed: 0, HalfOpen: 1, Open: 2 }

export const breakerSamples = Effect.gen(function* () {
  const health = yield* Effect.serviceOption(ProviderHealth)
  if (Option.isNone(health)) return []
  const snapshot = yield* health.value.snapshot
  return snapshot.flatMap((provider) => [
    gauge(
      "sms_circuit_breaker_state",
      "Circuit breaker of a provider in this process: 0 closed, 1 half-open, 2 open",
      { provider: provider.provider },
      BREAKER_VALUE[provider.breaker] ?? -1
    ),
    gauge(
      "sms_provider_paused_seconds",
      "Seconds left of a provider-wide pause after a 429 (Retry-After), in this process",
      { provider: provider.provider },
      provider.pausedForMs / 1000
    )
  ])
})

export const recordedEventSamples = Effect.map(getStats, (stats) =>
  Object.entries(stats.counts).map(([key, count]): Sample => {
    const [type = key, second, third] = key.split(".")
    // `SmsFailed.<provider>.<reason>`, `SmsFailed.<reason>` when no provider was involved
    const failedWithoutProvider = third === undefined && (type === "SmsFailed" || type === "SmsRetried")
    return {
      name: "sms_recorded_events_total",
      help: "Message events recorded in the event store (stats projection, every gateway process), by type, provider and reason",
      type: "counter",
      labels: {
        type,
        provider: failedWithoutProvider ? "none" : (second ?? "none"),
        reason: failedWithoutProvider ? (second ?? "") : (third ?? "")
      },
      value: count
    }
  })
)

/** Reports parked now: the bucket's value count (cleared reports leave no delete marker behind). */
export const parkedReportSamples = Effect.gen(function* () {
  const { parkedReports } = yield* ReadModels
  const status = yield* natsRequest("cannot read parked reports", () => parkedReports.status())
  return [
    gauge(
      "sms_parked_reports",
      "Delivery reports parked in KV sms_parked_dlrs, waiting for their dispatch to be recorded (every gateway process)",
      {},
      status.values
    )
  ]
})

export const processSamples = Effect.sync((): ReadonlyArray<Sample> => {
  const memory = process.memoryUsage()
  return [
    gauge("process_heap_used_bytes", "V8 heap in use", {}, memory.heapUsed),
    gauge("process_uptime_seconds", "Seconds since this process started", {}, process.uptime())
  ]
})

/** Every scrape-time sample; sources that fail are skipped. */
export const collect = Effect.all(
  [
    bestEffort("consumers", consumerSamples),
    bestEffort("streams", streamSamples),
    bestEffort("projection lag", projectionSamples),
    bestEffort("circuit breakers", breakerSamples),
    bestEffort("recorded events", recordedEventSamples),
    bestEffort("parked reports", parkedReportSamples),
    processSamples
  ],
  { concurrency: "unbounded" }
).pipe(Effect.map((groups) => groups.flat()))
