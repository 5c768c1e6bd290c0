/**
 * `/ready` and graceful shutdown.
 *
 * Ready means: the NATS connection answers a ping, the event store answers a read, every projection
 * is within `READY_MAX_PROJECTION_LAG` appends of the head (default 10000; embedded JetStream store
 * only), and the server is not shutting down. A process running the SQL outbox role also shows whether
 * its database answers (`outbox`; absent elsewhere), without letting it decide: the business
 * database being down must not take the API out of its load balancer, and the outbox role backs off
 * and retries by itself (its alert is `SmsOutboxDatabaseDown`).
 *
 * Shutdown (`HttpLifecycle.drain`, run by the HTTP role's finalizer before the server closes): `/ready`
 * turns 503 at once (and stays so for `HTTP_SHUTDOWN_DELAY_MS`, default 0, for load balancers to
 * notice), new requests other than health, readiness and metrics are answered 503, and requests in
 * flight are given up to `HTTP_DRAIN_MS` (default 10 s) to finish. A `POST /v1/messages` cut short is
 * safe to retry with the same Idempotency-Key.
 */
import { Clock, Context, Duration, Effect, Layer, Option } from "effect"
import { EventStore } from "../eventstore/EventStore.js"
import { Nats } from "../nats/Nats.js"
import { projectionLags } from "./Collect.js"
import { describe as describeOutbox, OutboxHealth } from "../outbox/Health.js"

export interface HttpLifecycleService {
  readonly isDraining: () => boolean
  readonly started: () => void
  readonly finished: () => void
  readonly inFlight: () => number
  /**
   * refuse new work, keep answering `/ready` 503 for at least `delay` (so load balancers notice), and
   * wait (up to `within`) for the requests in flight
   */
  readonly drain: (within: Duration.DurationInput, delay?: Duration.DurationInput) => Effect.Effect<void>
}

export class HttpLifecycle extends Context.Tag("sms-gateway/HttpLifecycle")<
  HttpLifecycle,
  HttpLifecycleService
>() {
  static make = Effect.sync((): HttpLifecycleService => {
    let draining = false
    let active = 0
    const waitIdle: Effect.Effect<void> = Effect.suspend(() =>
      active === 0 ? Effect.void : Effect.zipRight(Effect.sleep("20 millis"), waitIdle)
    )
    return {
      isDraining: () => draining,
      started: () => {
        active++
      },
      finished: () => {
        active = Math.max(0, active - 1)
      },
      inFlight: () => active,
      drain: (within, delay = 0) =>
        Effect.gen(function* () {
          draining = true
          yield* Effect.all([Effect.sleep(delay), waitIdle.pipe(Effect.timeout(within), Effect.ignore)], {
            concurrency: 2,
            discard: true
          })
        })
    }
  })

  static layer = Layer.effect(HttpLifecycle, HttpLifecycle.make)
}

export const drainWindow = () => Duration.millis(Number(process.env.HTTP_DRAIN_MS ?? 10_000))

/** How long `/ready` answers 503 before the server closes (`HTTP_SHUTDOWN_DELAY_MS`, default 0). */
export const shutdownDelay = () => Duration.millis(Number(process.env.HTTP_SHUTDOWN_DELAY_MS ?? 0))

const maxProjectionLag = () => Number(process.env.READY_MAX_PROJECTION_LAG ?? 10_000)

const CHECK_TIMEOUT = Duration.seconds(2)

interface Check {
  readonly ok: boolean
  readonly detail?: string
}

const timed = <E, R>(effect: Effect.Effect<Check, E, R>): Effect.Effect<Check, never, R> =>
  effect.pipe(
    Effect.timeoutFail({ duration: CHECK_TIMEOUT, onTimeout: () => "timed out" as const }),
    Effect.catchAll((error) =>
      Effect.succeed<Check>({
        ok: false,
        detail: error === "timed out" ? "timed out" : error instanceof Error ? error.message : String(error)
      })
    )
  )

const natsCheck = Effect.gen(function* () {
  const { nc } = yield* Nats
  if (nc.isClosed()) return { ok: false, detail: "connection closed" }
  const rtt = yield* Effect.tryPromise(() => nc.rtt())
  return { ok: true, detail: `rtt ${rtt} ms` }
})

const eventStoreCheck = Effect.gen(function* () {
  const store = yield* EventStore
  yield* store.read("sms-00000000-0000-0000-0000-000000000000")
  return { ok: true }
})

const projectionsCheck = Effect.gen(function* () {
  const lags = yield* projectionLags
  if (lags.size === 0) return { ok: true, detail: "not measured" }
  const limit = maxProjectionLag()
  const behind = [...lags].filter(([, lag]) => lag > limit)
  const worst = Math.max(...lags.values())
  return behind.length === 0
    ? { ok: true, detail: `max lag ${worst}` }
    : { ok: false, detail: behind.map(([name, lag]) => `${name} ${lag} behind`).join(", ") }
})

/** The checks that fail readiness, named with their detail: every one but `outbox` (shown only). */
export const failingChecks = (
  checks: Readonly<Record<string, { readonly ok: boolean; readonly detail?: string }>>
) =>
  Object.entries(checks)
    .filter(([name, check]) => name !== "outbox" && !check.ok)
    .map(([name, check]) => `${name}${check.detail ? ` (${check.detail})` : ""}`)

export const checkReadiness = Effect.gen(function* () {
  const lifecycle = yield* Effect.serviceOption(HttpLifecycle)
  const draining = Option.isSome(lifecycle) && lifecycle.value.isDraining()
  const [nats, eventStore, projections] = yield* Effect.all(
    [timed(natsCheck), timed(eventStoreCheck), timed(projectionsCheck)],
    { concurrency: "unbounded" }
  )
  const outboxes = OutboxHealth.snapshot()
  return {
    nats,
    eventStore,
    projections,
    accepting: draining ? { ok: false, detail: "shutting down" } : { ok: true },
    ...(outboxes.length === 0 ? {} : { outbox: describeOutbox(outboxes, yield* Clock.currentTimeMillis) })
  }
})
