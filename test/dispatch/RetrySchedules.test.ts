import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Option, Random, TestClock } from "effect"
import { delayBeforeRetry, providerDefault } from "../../src/dispatch/RetrySchedules.js"

const seeds = Array.from({ length: 20 }, (_, i) => i + 1)
const tenMinutes = 10 * 60_000

/** the delay before `retry` in milliseconds, failing the test when the schedule has none */
const delayMillis = (retry: number) =>
  Effect.map(delayBeforeRetry(providerDefault, retry), (delay) =>
    Duration.toMillis(Option.getOrElse(delay, () => expect.fail(`no delay before retry ${retry}`)))
  )

/** the delays before retries 1..11 with the random generator seeded by `seed` */
const allDelays = (seed: number) =>
  Effect.forEach(
    Array.from({ length: 11 }, (_, i) => i + 1),
    delayMillis
  ).pipe(Effect.withRandom(Random.make(seed)))

describe("RetrySchedules.providerDefault", () => {
  it.effect("waits about 5 s before the first retry (4 s to 6 s with jitter)", () =>
    Effect.gen(function* () {
      for (const seed of seeds) {
        const first = yield* delayMillis(1).pipe(Effect.withRandom(Random.make(seed)))
        expect(first).toBeGreaterThanOrEqual(4_000)
        expect(first).toBeLessThanOrEqual(6_000)
      }
    })
  )

  it.effect("roughly doubles each delay: retry n is 5 s x 2^(n-1), +/-20 %, until the cap", () =>
    Effect.gen(function* () {
      for (const seed of seeds) {
        const delays = yield* allDelays(seed)
        delays.forEach((delay, index) => {
          const nominal = 5_000 * 2 ** index
          expect(delay).toBeGreaterThanOrEqual(Math.min(nominal * 0.8, tenMinutes))
          expect(delay).toBeLessThanOrEqual(Math.min(nominal * 1.2, tenMinutes))
        })
        for (let i = 1; i < 7; i++) {
          const ratio = (delays[i] ?? 0) / (delays[i - 1] ?? 1)
          expect(ratio).toBeGreaterThanOrEqual((2 * 0.8) / 1.2)
          expect(ratio).toBeLessThanOrEqual((2 * 1.2) / 0.8)
        }
      }
    })
  )

  it.effect("caps every delay at 10 minutes, and the late retries wait exactly that", () =>
    Effect.gen(function* () {
      for (const seed of seeds) {
        const delays = yield* allDelays(seed)
        for (const delay of delays) expect(delay).toBeLessThanOrEqual(tenMinutes)
        // retries 9 to 11 are nominally 1280 s and more: even -20 % is above the cap
        expect(delays.slice(8)).toEqual([tenMinutes, tenMinutes, tenMinutes])
      }
    })
  )

  it.effect("has an 11th retry", () =>
    Effect.gen(function* () {
      const eleventh = yield* delayBeforeRetry(providerDefault, 11)
      expect(Option.map(eleventh, Duration.toMillis)).toEqual(Option.some(tenMinutes))
    })
  )

  it.effect("allows exactly 11 retries: there is no 12th", () =>
    Effect.gen(function* () {
      expect(Option.isNone(yield* delayBeforeRetry(providerDefault, 12))).toBe(true)
    })
  )

  it.effect("jitters: the same retry waits differently under different random seeds", () =>
    Effect.gen(function* () {
      const firsts = yield* Effect.forEach(seeds, (seed) =>
        delayMillis(1).pipe(Effect.withRandom(Random.make(seed)))
      )
      expect(new Set(firsts).size).toBeGreaterThan(seeds.length / 2)
    })
  )

  it.effect("has no delay well past the end of the schedule", () =>
    Effect.gen(function* () {
      expect(Option.isNone(yield* delayBeforeRetry(providerDefault, 13))).toBe(true)
      expect(Option.isNone(yield* delayBeforeRetry(providerDefault, 50))).toBe(true)
    })
  )

  it.effect("is the same for the same random seed, and computes without waiting", () =>
    Effect.gen(function* () {
      const first = yield* allDelays(42)
      const again = yield* allDelays(42)
      expect(again).toEqual(first)
      // the delays are waited out by JetStream, not here: the test clock never moved
      expect(yield* TestClock.currentTimeMillis).toBe(0)
    })
  )
})
