/**
 * What this process knows of each provider's health, and the gate every provider call passes:
 * the circuit breaker, a provider-wide pause after a 429 (`Retry-After`), and the
 * messages-per-second token bucket. A paused or rate-limited call waits with its work item in hand;
 * once `max_ack_pending` items are held, JetStream stops delivering: consumption pauses as a whole.
 */
import { Clock, Context, Duration, Effect, Layer, Random } from "effect"
import { Providers } from "../providers/Providers.js"
import * as Metrics from "../observability/Metrics.js"
import * as Breaker from "./CircuitBreaker.js"

interface Bucket {
  readonly perSecond: number
  tokens: number
  refilledAt: number
}

interface State {
  breaker: Breaker.BreakerState
  pausedUntil: number
  readonly bucket: Bucket | undefined
}

export interface ProviderSnapshot {
  readonly provider: string
  readonly breaker: Breaker.BreakerState["_tag"]
  readonly pausedForMs: number
}

export interface ProviderHealthService {
  readonly isHealthy: (provider: string) => Effect.Effect<boolean>
  /** true: the call may go out (possibly as the half-open probe); false: the circuit is open */
  readonly admit: (provider: string) => Effect.Effect<boolean>
  /** when an open circuit lets a probe through */
  readonly reopensAt: (provider: string) => Effect.Effect<number>
  readonly succeeded: (provider: string) => Effect.Effect<void>
  readonly failed: (provider: string) => Effect.Effect<void>
  /** stop calling the provider for `pause` (a 429's Retry-After) */
  readonly throttle: (provider: string, pause: Duration.Duration) => Effect.Effect<void>
  /** waits out a pause and the rate limit; `keepAlive` runs every 10 s of waiting */
  readonly acquire: (provider: string, keepAlive: Effect.Effect<void>) => Effect.Effect<void>
  /**
   * `acquire` and `admit` at once, without waiting: true when the provider is not paused, a token
   * is there now and the breaker lets the call through (plain: a batch asks it per message)
   */
  readonly admitNow: (provider: string) => boolean
  /** `succeeded` or `failed`, and `throttle` when `pause` is given, at once */
  readonly answeredNow: (provider: string, answered: boolean, pause?: Duration.Duration) => void
  readonly snapshot: Effect.Effect<ReadonlyArray<ProviderSnapshot>>
  /** uniform in [0, 1), for weighted routing */
  readonly random: Effect.Effect<number>
}

const KEEP_ALIVE_EVERY = 10_000

/** Reserves a token (the count may go negative: queued reservations) and says how long to wait. */
const reserve = (bucket: Bucket, now: number): number => {
  const capacity = Math.max(1, bucket.perSecond)
  bucket.tokens = Math.min(capacity, bucket.tokens + ((now - bucket.refilledAt) * bucket.perSecond) / 1000)
  bucket.refilledAt = now
  bucket.tokens -= 1
  return bucket.tokens >= 0 ? 0 : (-bucket.tokens / bucket.perSecond) * 1000
}

export class ProviderHealth extends Context.Tag("sms-gateway/ProviderHealth")<
  ProviderHealth,
  ProviderHealthService
>() {
  static layer = Layer.effect(
    ProviderHealth,
    Effect.gen(function* () {
      const providers = yield* Providers
      const states = new Map<string, State>(
        providers.all.map(({ config }) => [
          config.id,
          {
            breaker: Breaker.closed,
            pausedUntil: 0,
            bucket:
              config.messagesPerSecond === undefined
                ? undefined
                : {
                    perSecond: config.messagesPerSecond,
                    tokens: Math.max(1, config.messagesPerSecond),
                    refilledAt: 0
                  }
          }
        ])
      )
      const policyOf = (provider: string) => providers.get(provider)?.config.circuitBreaker
      /** sets the breaker, counting a change of state for /metrics */
      const setBreaker = (provider: string, state: State, next: Breaker.BreakerState) => {
        if (next._tag !== state.breaker._tag) Metrics.unsafe.circuitTransition(provider, next._tag)
        state.breaker = next
      }
      // each rule once, as a plain function of the state and the time; the Effect methods and the
      // batch path's plain calls (admitNow, answeredNow) both go through them
      const breakerAdmits = (provider: string, state: State, at: number): boolean => {
        const { allowed, next } = Breaker.tryCall(state.breaker, at)
        setBreaker(provider, state, next)
        return allowed
      }
      const recordAnswer = (provider: string, state: State, answered: boolean, at: number): void => {
        const policy = policyOf(provider)
        if (answered) setBreaker(provider, state, Breaker.onSuccess(state.breaker))
        else if (policy) setBreaker(provider, state, Breaker.onTransientFailure(state.breaker, at, policy))
      }
      const pauseFor = (state: State, pause: Duration.Duration, at: number): void => {
        state.pausedUntil = Math.max(state.pausedUntil, at + Duration.toMillis(pause))
      }
      const clock = yield* Effect.clock
      const now = () => clock.unsafeCurrentTimeMillis()
      const admitNow = (provider: string): boolean => {
        const state = states.get(provider)
        if (state === undefined) return false
        const at = now()
        if (state.pausedUntil > at) return false
        // a token is taken only for a call the breaker lets through
        if (state.bucket !== undefined && reserve(state.bucket, at) > 0) {
          state.bucket.tokens += 1
          return false
        }
        const allowed = breakerAdmits(provider, state, at)
        if (!allowed && state.bucket !== undefined) state.bucket.tokens += 1
        return allowed
      }
      const answeredNow = (provider: string, answered: boolean, pause?: Duration.Duration): void => {
        const state = states.get(provider)
        if (state === undefined) return
        const at = now()
        recordAnswer(provider, state, answered, at)
        if (pause !== undefined) pauseFor(state, pause, at)
      }
      const sleepWithKeepAlive = (ms: number, keepAlive: Effect.Effect<void>): Effect.Effect<void> =>
        ms <= KEEP_ALIVE_EVERY
          ? Effect.sleep(Duration.millis(ms))
          : Effect.sleep(Duration.millis(KEEP_ALIVE_EVERY)).pipe(
              Effect.zipRight(keepAlive),
              Effect.zipRight(Effect.suspend(() => sleepWithKeepAlive(ms - KEEP_ALIVE_EVERY, keepAlive)))
            )
      const withState = <A>(provider: string, f: (state: State, now: number) => A, fallback: A) =>
        Effect.map(Clock.currentTimeMillis, (now) => {
          const state = states.get(provider)
          return state === undefined ? fallback : f(state, now)
        })

      const acquire = (provider: string, keepAlive: Effect.Effect<void>): Effect.Effect<void> =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          const state = states.get(provider)
          if (state === undefined) return
          if (state.pausedUntil > now) {
            yield* sleepWithKeepAlive(state.pausedUntil - now, keepAlive)
            return yield* acquire(provider, keepAlive)
          }
          const wait = state.bucket === undefined ? 0 : reserve(state.bucket, now)
          if (wait > 0) yield* sleepWithKeepAlive(Math.ceil(wait), keepAlive)
        })

      return ProviderHealth.of({
        isHealthy: (provider) => withState(provider, (s, now) => Breaker.isAvailable(s.breaker, now), false),
        admit: (provider) => withState(provider, (s, now) => breakerAdmits(provider, s, now), false),
        reopensAt: (provider) => withState(provider, (s, now) => Breaker.reopensAt(s.breaker, now), 0),
        succeeded: (provider) =>
          withState(provider, (s, now) => recordAnswer(provider, s, true, now), undefined),
        failed: (provider) =>
          withState(provider, (s, now) => recordAnswer(provider, s, false, now), undefined),
        throttle: (provider, pause) => withState(provider, (s, now) => pauseFor(s, pause, now), undefined),
        acquire,
        admitNow,
        answeredNow,
        snapshot: Effect.map(Clock.currentTimeMillis, (now) =>
          [...states].map(([provider, s]) => ({
            provider,
            breaker: s.breaker._tag,
            pausedForMs: Math.max(0, s.pausedUntil - now)
          }))
        ),
        random: Random.next
      })
    })
  )
}
