/**
 * Provider actors against real simulators and a real nats-server: routing, failover, throttling,
 * outages, permanent failures, dead letters. Every count comes from the simulators' own logs.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Scope } from "effect"
import { listDeadLetters, resubmit } from "../../src/dispatch/DeadLetters.js"
import type { MessageId } from "../../src/domain/Ids.js"
import type { Submission } from "../../src/providers/Simulator.js"
import { awaitFinal, providerEntry, simulator, startGateway } from "../support/inProcessGateway.js"
import { eventually, freePort } from "../support/gateway.js"

const sendMany = (
  send: (o?: Record<string, unknown>) => Effect.Effect<MessageId>,
  n: number,
  overrides = {}
) => Effect.forEach(Array.from({ length: n }), () => send(overrides), { concurrency: 50 })

/** Accepted submissions per message reference: a value above 1 is a duplicate send. */
const acceptedPerMessage = (...logs: ReadonlyArray<ReadonlyArray<Submission>>) => {
  const counts = new Map<string, number>()
  for (const log of logs) {
    for (const s of log)
      if (s.outcome === "accepted" && s.reference) counts.set(s.reference, (counts.get(s.reference) ?? 0) + 1)
  }
  return counts
}

const options = { timeout: 60_000 }

describe("provider routing and failover", () => {
  it.live(
    "splits 1,000 messages by weight within tolerance, with no duplicate submission",
    () =>
      Effect.gen(function* () {
        const a = yield* simulator()
        const b = yield* simulator()
        const gw = yield* startGateway([
          providerEntry("a", a.url, { weight: 3 }),
          providerEntry("b", b.url, { weight: 1 })
        ])
        const ids = yield* sendMany(gw.send, 1000)
        const final = yield* awaitFinal(gw, ids, "60 seconds")
        expect(final.every((l) => l.state.status === "delivered")).toBe(true)
        const twice = [...acceptedPerMessage(a.submissions(), b.submissions())].filter(([, n]) => n > 1)
        // on failure, show each duplicate's history: only a timed-out first answer may explain one
        const histories = twice.map(([id]) =>
          final
            .find((l) => l.state.status !== "none" && l.state.request.messageId === id)
            ?.events.map((e) => e._tag)
        )
        expect({ duplicates: twice.length, histories }).toEqual({ duplicates: 0, histories: [] })
        const atA = a.submissions().length
        const atB = b.submissions().length
        expect(atA + atB).toBe(1000)
        // binomial(1000, 0.75): sd ~ 13.7; five sd either way
        expect(atA).toBeGreaterThan(750 - 70)
        expect(atA).toBeLessThan(750 + 70)
      }).pipe(Effect.scoped),
    options
  )

  it.live(
    "honours an explicit provider list exclusively and in order",
    () =>
      Effect.gen(function* () {
        const a = yield* simulator()
        const b = yield* simulator()
        const gw = yield* startGateway([
          providerEntry("a", a.url, { priority: 0 }),
          providerEntry("b", b.url, { priority: 9 })
        ])
        const onlyB = yield* sendMany(gw.send, 20, { providers: ["b"] })
        const unknownThenB = yield* sendMany(gw.send, 10, { providers: ["nope", "b", "a"] })
        yield* awaitFinal(gw, [...onlyB, ...unknownThenB])
        expect(a.submissions()).toHaveLength(0)
        expect(b.submissions()).toHaveLength(30)
      }).pipe(Effect.scoped),
    options
  )

  it.live(
    "fails over from a provider answering 5xx, recording each hop, with no duplicates",
    () =>
      Effect.gen(function* () {
        const broken = yield* simulator({ errorRate: 1 })
        const healthy = yield* simulator()
        const gw = yield* startGateway([
          // few calls in flight, so the breaker sees failures before every message has tried
          providerEntry("broken", broken.url, { priority: 0, concurrency: 2 }),
          providerEntry("healthy", healthy.url, { priority: 1 })
        ])
        const ids = yield* sendMany(gw.send, 40)
        const final = yield* awaitFinal(gw, ids)
        expect(final.every((l) => l.state.status === "delivered" && l.state.provider === "healthy")).toBe(
          true
        )
        expect(healthy.submissions()).toHaveLength(40)
        expect([...acceptedPerMessage(healthy.submissions()).values()].every((n) => n === 1)).toBe(true)
        // the ones that tried the broken provider first have their hop on record
        const hopped = final.filter((l) => l.events.some((e) => e._tag === "SmsRetried"))
        expect(hopped.length).toBe(broken.submissions().length)
        for (const l of hopped) {
          const retried = l.events.find((e) => e._tag === "SmsRetried")
          expect(retried).toMatchObject({ provider: "broken", nextProvider: "healthy", reason: "http_5xx" })
        }
        // the breaker opened: the broken provider was not called for every message
        expect(broken.submissions().length).toBeLessThan(40)
      }).pipe(Effect.scoped),
    options
  )

  it.live(
    "a 429 storm pauses the provider; when it ends every message is delivered once",
    () =>
      Effect.gen(function* () {
        const port = yield* freePort
        const storm = yield* Scope.make()
        const throttling = yield* simulator({ port, throttleRate: 1 }).pipe(Scope.extend(storm))
        // fewer calls in flight than messages, so the pause (not the first wave) is what is measured
        const gw = yield* startGateway([providerEntry("p", throttling.url, { concurrency: 4 })])
        const ids = yield* sendMany(gw.send, 30)
        yield* eventually(
          Effect.suspend(() => (throttling.stats().throttled >= 3 ? Effect.void : Effect.fail("no 429 yet")))
        )
        const throttled = throttling.stats().throttled
        yield* Scope.close(storm, Exit.void)
        const calm = yield* simulator({ port })
        const final = yield* awaitFinal(gw, ids)
        expect(final.every((l) => l.state.status === "delivered")).toBe(true)
        expect(calm.submissions()).toHaveLength(30)
        // paused as a whole: far fewer 429s than one per message per retry
        expect(throttled).toBeLessThan(30)
        expect([...acceptedPerMessage(calm.submissions()).values()].every((n) => n === 1)).toBe(true)
      }).pipe(Effect.scoped),
    options
  )

  it.live(
    "a provider that is down, then back: every message is delivered after recovery",
    () =>
      Effect.gen(function* () {
        const port = yield* freePort
        const gw = yield* startGateway([
          providerEntry("only", `http://127.0.0.1:${port}`, {
            retry: { initialDelayMs: 100, maxRetries: 8, maxDelayMs: 400 }
          })
        ])
        const ids = yield* sendMany(gw.send, 25)
        yield* eventually(
          Effect.flatMap(gw.load(ids[0] as MessageId), (l) =>
            l.state.status === "retrying" ? Effect.void : Effect.fail(l)
          )
        )
        const back = yield* simulator({ port })
        const final = yield* awaitFinal(gw, ids)
        expect(final.every((l) => l.state.status === "delivered")).toBe(true)
        expect(back.submissions()).toHaveLength(25)
        expect([...acceptedPerMessage(back.submissions()).values()].every((n) => n === 1)).toBe(true)
        // called while down: a network retry on record; held by the open circuit: no call, no attempt.
        // Either way the dispatch's attempt number counts exactly the calls made (no phantom attempts).
        for (const l of final) {
          const retries = l.events.filter((e) => e._tag === "SmsRetried")
          const dispatched = l.events.find((e) => e._tag === "SmsDispatched")
          expect(retries.every((e) => e.reason === "network")).toBe(true)
          expect(dispatched?.attempt).toBe(retries.length + 1)
        }
        expect(final.some((l) => l.events.some((e) => e._tag === "SmsRetried"))).toBe(true)
      }).pipe(Effect.scoped),
    options
  )

  it.live(
    "an invalid number fails at once with the provider's code, with one submission and no retry",
    () =>
      Effect.gen(function* () {
        const sim = yield* simulator({ invalidPrefixes: ["+4479111"] })
        const gw = yield* startGateway([providerEntry("p", sim.url)])
        const [id] = yield* sendMany(gw.send, 1)
        const [final] = yield* awaitFinal(gw, [id as MessageId])
        expect(final?.events.map((e) => e._tag)).toEqual(["SmsRequested", "SmsFailed"])
        expect(final?.events[1]).toMatchObject({
          reason: "invalid_number",
          permanent: true,
          code: "invalid_number"
        })
        expect(sim.submissions()).toHaveLength(1)
      }).pipe(Effect.scoped),
    options
  )

  it.live(
    "retries exhausted -> failed and dead-lettered -> resubmitted -> delivered, sent once when it worked",
    () =>
      Effect.gen(function* () {
        const port = yield* freePort
        const outage = yield* Scope.make()
        const failing = yield* simulator({ port, errorRate: 1 }).pipe(Scope.extend(outage))
        const gw = yield* startGateway([
          providerEntry("p", failing.url, { retry: { initialDelayMs: 20, maxRetries: 2, maxDelayMs: 50 } })
        ])
        const [id] = yield* sendMany(gw.send, 1)
        const messageId = id as MessageId
        const [failed] = yield* awaitFinal(gw, [messageId])
        expect(failed?.state.status).toBe("failed")
        expect(failed?.events.at(-1)).toMatchObject({ _tag: "SmsFailed", reason: "retries_exhausted" })
        expect(failing.submissions()).toHaveLength(3)
        const letters = yield* gw.provide(listDeadLetters)
        expect(letters.map((l) => [l.letter.messageId, l.letter.cause, l.letter.attempts])).toEqual([
          [messageId, "retries_exhausted", 3]
        ])

        yield* Scope.close(outage, Exit.void)
        const fixed = yield* simulator({ port })
        yield* gw.provide(resubmit({ messageId, by: "test", reason: "provider fixed", provider: "p" }))
        const delivered = yield* eventually(
          Effect.flatMap(gw.load(messageId), (l) =>
            l.state.status === "delivered" ? Effect.succeed(l) : Effect.fail(l)
          )
        )
        expect(delivered.events.map((e) => e._tag)).toEqual([
          "SmsRequested",
          "SmsRetried",
          "SmsRetried",
          "SmsFailed",
          "SmsResubmitted",
          "SmsDispatched",
          "SmsDelivered"
        ])
        expect(fixed.submissions()).toHaveLength(1)
      }).pipe(Effect.scoped),
    options
  )
})
