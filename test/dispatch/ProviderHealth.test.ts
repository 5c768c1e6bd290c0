import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber, Layer, Schema, TestClock } from "effect"
import { ProviderHealth } from "../../src/dispatch/ProviderHealth.js"
import { ProviderEntry } from "../../src/providers/ProviderConfig.js"
import { Providers } from "../../src/providers/Providers.js"

const config = Schema.decodeUnknownSync(ProviderEntry)({
  id: "p",
  type: "generic-http",
  baseUrl: "http://127.0.0.1:1",
  apiKeyEnv: "K",
  webhookSecretEnv: "S",
  messagesPerSecond: 10,
  circuitBreaker: { failureThreshold: 2, openForMs: 1000 }
})

const Health = ProviderHealth.layer.pipe(
  Layer.provide(
    Layer.succeed(
      Providers,
      Providers.of({
        all: [{ config, adapter: null as never }],
        get: () => ({ config, adapter: null as never })
      })
    )
  )
)

const noop = Effect.void

describe("ProviderHealth", () => {
  it.effect("lets a second's worth of calls through at once, then one per 1/rate", () =>
    Effect.gen(function* () {
      const health = yield* ProviderHealth
      for (let i = 0; i < 10; i++) yield* health.acquire("p", noop)
      const eleventh = yield* Effect.fork(health.acquire("p", noop))
      yield* TestClock.adjust(Duration.millis(99))
      expect(eleventh.unsafePoll()).toBeNull()
      yield* TestClock.adjust(Duration.millis(1))
      yield* Fiber.join(eleventh)
    }).pipe(Effect.provide(Health))
  )

  it.effect("a throttle pauses every call until it ends, keeping held work alive", () =>
    Effect.gen(function* () {
      const health = yield* ProviderHealth
      let keptAlive = 0
      yield* health.throttle("p", Duration.seconds(25))
      const waiting = yield* Effect.fork(
        health.acquire(
          "p",
          Effect.sync(() => void keptAlive++)
        )
      )
      yield* TestClock.adjust(Duration.seconds(24))
      expect(waiting.unsafePoll()).toBeNull()
      yield* TestClock.adjust(Duration.seconds(1))
      yield* Fiber.join(waiting)
      expect(keptAlive).toBe(2)
    }).pipe(Effect.provide(Health))
  )

  it.effect("the breaker opens after the threshold and admits one probe after openFor", () =>
    Effect.gen(function* () {
      const health = yield* ProviderHealth
      yield* health.failed("p")
      expect(yield* health.isHealthy("p")).toBe(true)
      yield* health.failed("p")
      expect(yield* health.admit("p")).toBe(false)
      yield* TestClock.adjust(Duration.seconds(1))
      expect(yield* health.admit("p")).toBe(true)
      expect(yield* health.admit("p")).toBe(false)
      yield* health.succeeded("p")
      expect(yield* health.admit("p")).toBe(true)
    }).pipe(Effect.provide(Health))
  )
})
