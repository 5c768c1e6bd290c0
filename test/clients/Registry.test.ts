/**
 * The client registry and its quotas over in-memory documents: no server. Two registries on one
 * store play two gateway processes; each caches for an hour here, so only the registry's watch can
 * make one see what the other changed.
 */
import { randomUUID } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Option } from "effect"
import { type ClientStores, Clients } from "../../src/clients/Clients.js"
import { memoryDocuments } from "../../src/platform/Documents.js"
import { eventually } from "../support/gateway.js"

const memoryStores = (): ClientStores => ({
  registry: memoryDocuments(),
  quotas: { counters: memoryDocuments(), charges: memoryDocuments() }
})

const HOUR_MS = 3_600_000

/** A registry over `stores`, as one process holds it, for the current scope. */
const processOn = (stores: ClientStores) =>
  Effect.map(Layer.build(Clients.fromStores(stores, HOUR_MS)), (context) => Context.get(context, Clients))

describe("client registry over the documents port", () => {
  it.scopedLive("issues a key that authenticates, lists it without its secret, and refuses a wrong one", () =>
    Effect.gen(function* () {
      const clients = yield* processOn(memoryStores())
      expect(yield* clients.isEmpty).toBe(true)
      const { apiKey, key } = yield* clients.issueKey({ clientId: "shop", scope: "client", dailyQuota: 5 })
      expect(yield* clients.authenticate(apiKey)).toEqual(
        Option.some({ keyId: key.keyId, clientId: "shop", scope: "client" })
      )
      expect(Option.isNone(yield* clients.authenticate(`${apiKey.slice(0, -1)}x`))).toBe(true)
      const listed = yield* clients.list
      expect(listed).toEqual([key])
      expect(JSON.stringify(listed)).not.toContain(apiKey.split(".")[1])
      expect(yield* clients.isEmpty).toBe(false)
    })
  )

  it.scopedLive(
    "a key revoked in one process is refused by another at once, though it was cached there",
    () =>
      Effect.gen(function* () {
        const stores = memoryStores()
        const first = yield* processOn(stores)
        const second = yield* processOn(stores)
        const { apiKey, key } = yield* first.issueKey({ clientId: "leaky", scope: "client" })
        // cached in the second process for an hour
        expect(Option.isSome(yield* second.authenticate(apiKey))).toBe(true)
        expect(yield* first.revoke(key.keyId)).toBe(true)
        yield* eventually(
          Effect.flatMap(second.authenticate(apiKey), (principal) =>
            Option.isNone(principal) ? Effect.void : Effect.fail("the revoked key still authenticates")
          ),
          "1 second"
        )
      })
  )

  it.scopedLive("a quota set in one process binds another at once, exactly, under concurrent charges", () =>
    Effect.gen(function* () {
      const stores = memoryStores()
      const first = yield* processOn(stores)
      const second = yield* processOn(stores)
      yield* first.setQuota("metered", 100)
      // the second process caches the client with its first quota
      expect((yield* second.charge("metered", randomUUID()))._tag).toBe("Charged")
      yield* first.setQuota("metered", 3)
      yield* eventually(
        Effect.flatMap(second.client("metered"), (client) =>
          Option.getOrUndefined(client)?.dailyQuota === 3 ? Effect.void : Effect.fail("old quota")
        ),
        "1 second"
      )
      const charges = yield* Effect.all(
        Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? first : second).charge("metered", randomUUID())),
        { concurrency: "unbounded" }
      )
      expect(charges.filter((charge) => charge._tag === "Charged")).toHaveLength(2)
      expect(charges.filter((charge) => charge._tag === "Exhausted")).toHaveLength(8)
      expect(yield* second.usage("metered")).toBe(3)
    })
  )

  it.scopedLive("a batch is charged with one compare-and-set and a message is never charged twice", () =>
    Effect.gen(function* () {
      const clients = yield* processOn(memoryStores())
      yield* clients.setQuota("batchy", 4)
      const ids = Array.from({ length: 3 }, () => randomUUID())
      const [repeated = ""] = ids
      const answers = yield* clients.chargeMany("batchy", [...ids, repeated, randomUUID(), randomUUID()])
      expect(answers.map((charge) => charge._tag)).toEqual([
        "Charged",
        "Charged",
        "Charged",
        "AlreadyCharged",
        "Charged",
        "Exhausted"
      ])
      expect((yield* clients.charge("batchy", repeated))._tag).toBe("AlreadyCharged")
      expect(yield* clients.usage("batchy")).toBe(4)
    })
  )
})
