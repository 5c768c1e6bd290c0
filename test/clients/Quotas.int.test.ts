/**
 * Quotas against a real nats-server: two registries on two connections (as two gateway processes)
 * charge the same client's counter at once, and the counter stops exactly at the limit.
 */
import { randomUUID } from "node:crypto"
import { Kvm } from "@nats-io/kv"
import { describe, expect, it, layer } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { parseApiKey, verifySecret } from "../../src/clients/ApiKeys.js"
import { Clients } from "../../src/clients/Clients.js"
import { dayOf, secondsToNextUtcMidnight } from "../../src/clients/Quotas.js"
import { Nats } from "../../src/nats/Nats.js"
import { NatsServerLive, TestNatsServer } from "../support/nats.js"

/** A second registry on its own connection, as another gateway process would have. */
const otherProcess = Effect.gen(function* () {
  const server = yield* TestNatsServer
  const context = yield* Layer.build(
    Clients.layer.pipe(Layer.provide(Nats.layer(server.url, "other-process")))
  )
  return Context.get(context, Clients)
})

const Registry = Clients.layer.pipe(
  Layer.provideMerge(
    Layer.unwrapEffect(Effect.map(TestNatsServer, (server) => Nats.layer(server.url, "one-process")))
  ),
  Layer.provideMerge(NatsServerLive)
)

describe("daily quotas", () => {
  layer(Registry, { excludeTestServices: true })("NATS KV", (it) => {
    it.scoped("120 concurrent charges from two processes against a quota of 37: exactly 37 pass", () =>
      Effect.gen(function* () {
        const one = yield* Clients
        const two = yield* otherProcess
        yield* one.issueKey({ clientId: "busy", scope: "client", dailyQuota: 37 })
        const results = yield* Effect.forEach(
          Array.from({ length: 120 }, (_, i) => i),
          (i) => (i % 2 === 0 ? one : two).charge("busy", randomUUID()),
          { concurrency: "unbounded" }
        )
        const tags = results.map((r) => r._tag)
        expect(tags.filter((t) => t === "Charged")).toHaveLength(37)
        expect(tags.filter((t) => t === "Exhausted")).toHaveLength(83)
        expect(yield* one.usage("busy")).toBe(37)
        expect(yield* two.usage("busy")).toBe(37)
      })
    )

    it.scoped(
      "a message is charged once, whoever asks again (retry, redelivery, the intake after HTTP)",
      () =>
        Effect.gen(function* () {
          const one = yield* Clients
          const two = yield* otherProcess
          yield* one.issueKey({ clientId: "once", scope: "client", dailyQuota: 2 })
          const id = randomUUID()
          expect((yield* one.charge("once", id))._tag).toBe("Charged")
          expect((yield* two.charge("once", id))._tag).toBe("AlreadyCharged")
          expect((yield* one.charge("once", id))._tag).toBe("AlreadyCharged")
          expect(yield* one.usage("once")).toBe(1)
          expect((yield* one.charge("once", randomUUID()))._tag).toBe("Charged")
          const over = yield* one.charge("once", randomUUID())
          expect(over).toMatchObject({ _tag: "Exhausted", used: 2, limit: 2 })
          // a message charged before the quota ran out still passes: it is a retry, not a new message
          expect((yield* one.charge("once", id))._tag).toBe("AlreadyCharged")
        })
    )

    it.effect("no quota, or an unregistered client: unlimited and nothing is counted", () =>
      Effect.gen(function* () {
        const clients = yield* Clients
        yield* clients.issueKey({ clientId: "free", scope: "client" })
        expect((yield* clients.charge("free", randomUUID()))._tag).toBe("Unlimited")
        expect((yield* clients.charge("never-registered", randomUUID()))._tag).toBe("Unlimited")
        expect((yield* clients.charge("not a kv key!", randomUUID()))._tag).toBe("Unlimited")
        expect(yield* clients.usage("free")).toBe(0)
      })
    )

    it.effect("keys are stored hashed and salted; a revoked key no longer authenticates", () =>
      Effect.gen(function* () {
        const clients = yield* Clients
        const { apiKey, key } = yield* clients.issueKey({ clientId: "hashed", scope: "auditor" })
        const parsed = parseApiKey(apiKey)
        expect(parsed?.keyId).toBe(key.keyId)
        const { js } = yield* Nats
        const stored = yield* Effect.promise(async () =>
          (await new Kvm(js).open("sms_clients")).get(`keys.${key.keyId}`)
        )
        const text = stored?.string() ?? ""
        expect(text).not.toContain(parsed?.secret ?? "missing")
        const record = JSON.parse(text) as { salt: string; hash: string }
        expect(verifySecret(parsed?.secret ?? "", record)).toBe(true)
        const principal = yield* clients.authenticate(apiKey)
        expect(principal._tag === "Some" && principal.value).toEqual({
          keyId: key.keyId,
          clientId: "hashed",
          scope: "auditor"
        })
        expect((yield* clients.authenticate(`${apiKey.slice(0, -1)}x`))._tag).toBe("None")
        expect(yield* clients.revoke(key.keyId)).toBe(true)
        expect((yield* clients.authenticate(apiKey))._tag).toBe("None")
        expect(yield* clients.revoke("0000000000000000")).toBe(false)
      })
    )
  })

  describe("days", () => {
    it("the counter's day is the UTC day; Retry-After runs to the next UTC midnight", () => {
      const at = Date.parse("2026-11-22T23:59:30.500Z")
      expect(dayOf(at)).toBe("2026-11-22")
      expect(secondsToNextUtcMidnight(at)).toBe(30)
      expect(secondsToNextUtcMidnight(Date.parse("2026-11-22T00:00:00Z"))).toBe(86_400)
    })
  })
})
