/**
 * `Quotas.chargeMany` (a batch's one compare-and-set) against a real nats-server: the remainder of
 * the quota is charged in the batch's order and the rest refused, a message is charged once, and two
 * processes charging batches at once never pass the limit together.
 */
import { randomUUID } from "node:crypto"
import { describe, expect, layer } from "@effect/vitest"
import { Kvm } from "@nats-io/kv"
import { Context, Effect, Layer } from "effect"
import {
  type Charge,
  chargeMany,
  charge as chargeOne,
  type QuotaStores,
  secondsToNextUtcMidnight,
  usage
} from "../../src/clients/Quotas.js"
import { kvDocumentStore } from "../../src/nats/KvDocumentStore.js"
import { Nats } from "../../src/nats/Nats.js"
import { NatsTest, TestNatsServer } from "../support/nats.js"

/** Fresh counter and marker buckets for one test, opened (created) on this process's connection. */
const freshStores = Effect.gen(function* () {
  const { js } = yield* Nats
  const suffix = randomUUID().slice(0, 8)
  const names = { counters: `test_quotas_${suffix}`, charges: `test_quota_charges_${suffix}` }
  const stores = yield* Effect.promise(
    async (): Promise<QuotaStores> => ({
      counters: kvDocumentStore(await new Kvm(js).create(names.counters, { history: 1 })),
      charges: kvDocumentStore(await new Kvm(js).create(names.charges, { history: 1 }))
    })
  )
  return { stores, names }
})

/** The same buckets opened on a second connection, as another gateway process would. */
const otherProcess = (names: { readonly counters: string; readonly charges: string }) =>
  Effect.gen(function* () {
    const server = yield* TestNatsServer
    const context = yield* Layer.build(Nats.layer(server.url, "other-process"))
    const { js } = Context.get(context, Nats)
    return yield* Effect.promise(
      async (): Promise<QuotaStores> => ({
        counters: kvDocumentStore(await new Kvm(js).open(names.counters)),
        charges: kvDocumentStore(await new Kvm(js).open(names.charges))
      })
    )
  })

const ids = (n: number) => Array.from({ length: n }, () => randomUUID())
const tags = (charges: ReadonlyArray<Charge>) => charges.map((c) => c._tag)
const isCharged = (c: Charge): c is Extract<Charge, { _tag: "Charged" }> => c._tag === "Charged"

const hasMarker = (stores: QuotaStores, messageId: string) =>
  Effect.promise(async () => (await stores.charges.get(messageId)) !== undefined)

describe("Quotas.chargeMany", () => {
  layer(NatsTest, { excludeTestServices: true })("NATS KV", (it) => {
    it.effect(
      "a batch larger than the remaining quota: the remainder is charged in order, the rest refused",
      () =>
        Effect.gen(function* () {
          const { stores } = yield* freshStores
          const now = Date.now()
          const clientId = "batchy"
          // 2 of 5 used before the batch
          yield* chargeMany(stores, { clientId, messageIds: ids(2), limit: 5, now })
          const batch = ids(6)
          const answers = yield* chargeMany(stores, { clientId, messageIds: batch, limit: 5, now })
          const refused = {
            _tag: "Exhausted",
            used: 5,
            limit: 5,
            retryAfterSeconds: secondsToNextUtcMidnight(now)
          }
          expect(answers).toMatchObject([
            { _tag: "Charged", used: 3, limit: 5 },
            { _tag: "Charged", used: 4, limit: 5 },
            { _tag: "Charged", used: 5, limit: 5 },
            refused,
            refused,
            refused
          ])
          expect(yield* usage(stores, clientId, now)).toBe(5)
          // only what was charged is remembered as charged
          for (const [i, id] of batch.entries()) expect(yield* hasMarker(stores, id)).toBe(i < 3)
          // asked again: the charged ones pass as already charged, the refused ones are still refused
          const again = yield* chargeMany(stores, { clientId, messageIds: batch, limit: 5, now })
          expect(tags(again)).toEqual([
            "AlreadyCharged",
            "AlreadyCharged",
            "AlreadyCharged",
            "Exhausted",
            "Exhausted",
            "Exhausted"
          ])
          expect(yield* usage(stores, clientId, now)).toBe(5)
        })
    )

    it.effect("a batch that fits is charged whole, numbered in order from the counter", () =>
      Effect.gen(function* () {
        const { stores } = yield* freshStores
        const now = Date.now()
        const answers = yield* chargeMany(stores, { clientId: "fits", messageIds: ids(4), limit: 10, now })
        expect(answers).toMatchObject([1, 2, 3, 4].map((used) => ({ _tag: "Charged", used, limit: 10 })))
        expect(yield* usage(stores, "fits", now)).toBe(4)
      })
    )

    it.effect("a quota of zero refuses every message and counts nothing", () =>
      Effect.gen(function* () {
        const { stores } = yield* freshStores
        const now = Date.now()
        const answers = yield* chargeMany(stores, { clientId: "none", messageIds: ids(3), limit: 0, now })
        expect(tags(answers)).toEqual(["Exhausted", "Exhausted", "Exhausted"])
        expect(answers[0]).toMatchObject({ used: 0, limit: 0 })
        expect(yield* usage(stores, "none", now)).toBe(0)
      })
    )

    it.effect("an empty batch answers nothing and counts nothing", () =>
      Effect.gen(function* () {
        const { stores } = yield* freshStores
        const now = Date.now()
        expect(yield* chargeMany(stores, { clientId: "empty", messageIds: [], limit: 3, now })).toEqual([])
        expect(yield* usage(stores, "empty", now)).toBe(0)
      })
    )

    it.effect("messages charged before answer AlreadyCharged and are not counted again", () =>
      Effect.gen(function* () {
        const { stores } = yield* freshStores
        const now = Date.now()
        const clientId = "returning"
        const [old1, old2] = ids(2)
        const [new1, new2] = ids(2)
        if (!old1 || !old2 || !new1 || !new2) return expect.fail("ids")
        // one charged by the single-message path (HTTP ingress), one by an earlier batch
        expect((yield* chargeOne(stores, { clientId, messageId: old1, limit: 10, now }))._tag).toBe("Charged")
        yield* chargeMany(stores, { clientId, messageIds: [old2], limit: 10, now })
        const answers = yield* chargeMany(stores, {
          clientId,
          messageIds: [old1, new1, old2, new2],
          limit: 10,
          now
        })
        expect(answers).toMatchObject([
          { _tag: "AlreadyCharged" },
          { _tag: "Charged", used: 3 },
          { _tag: "AlreadyCharged" },
          { _tag: "Charged", used: 4 }
        ])
        expect(yield* usage(stores, clientId, now)).toBe(4)
        // and the single-message path sees the batch's charges
        expect((yield* chargeOne(stores, { clientId, messageId: new2, limit: 10, now }))._tag).toBe(
          "AlreadyCharged"
        )
      })
    )

    it.effect("messages charged before still pass once the quota is used up", () =>
      Effect.gen(function* () {
        const { stores } = yield* freshStores
        const now = Date.now()
        const clientId = "full"
        const charged = ids(2)
        yield* chargeMany(stores, { clientId, messageIds: charged, limit: 2, now })
        const answers = yield* chargeMany(stores, {
          clientId,
          messageIds: [charged[0] ?? "", randomUUID(), charged[1] ?? ""],
          limit: 2,
          now
        })
        expect(tags(answers)).toEqual(["AlreadyCharged", "Exhausted", "AlreadyCharged"])
        expect(yield* usage(stores, clientId, now)).toBe(2)
      })
    )

    it.effect("the same message twice in one batch is charged once", () =>
      Effect.gen(function* () {
        const { stores } = yield* freshStores
        const now = Date.now()
        const [x, y] = ids(2)
        if (!x || !y) return expect.fail("ids")
        const answers = yield* chargeMany(stores, {
          clientId: "twice",
          messageIds: [x, y, x, x],
          limit: 10,
          now
        })
        expect(answers).toMatchObject([
          { _tag: "Charged", used: 1 },
          { _tag: "Charged", used: 2 },
          { _tag: "AlreadyCharged" },
          { _tag: "AlreadyCharged" }
        ])
        expect(yield* usage(stores, "twice", now)).toBe(2)
      })
    )

    it.effect("the same message twice in one batch, over the quota: refused both times, as one by one", () =>
      Effect.gen(function* () {
        const { stores } = yield* freshStores
        const now = Date.now()
        const [a, b] = ids(2)
        if (!a || !b) return expect.fail("ids")
        const answers = yield* chargeMany(stores, { clientId: "over", messageIds: [a, b, b], limit: 1, now })
        // b was never charged: its repeat must not pass as AlreadyCharged (the intake would queue it)
        expect(tags(answers)).toEqual(["Charged", "Exhausted", "Exhausted"])
        expect(yield* hasMarker(stores, b)).toBe(false)
        expect(yield* usage(stores, "over", now)).toBe(1)
      })
    )

    it.scoped(
      "batches from two processes at once against a limit of 25: exactly 25 pass, numbered 1..25",
      () =>
        Effect.gen(function* () {
          const { stores, names } = yield* freshStores
          const other = yield* otherProcess(names)
          const now = Date.now()
          const clientId = "contended"
          const limit = 25
          const batches = Array.from({ length: 10 }, () => ids(6))
          const answers = yield* Effect.forEach(
            batches,
            (messageIds, i) => chargeMany(i % 2 === 0 ? stores : other, { clientId, messageIds, limit, now }),
            { concurrency: "unbounded" }
          )
          const all = answers.flat()
          const charged = all.filter(isCharged)
          expect(charged).toHaveLength(limit)
          expect(all.filter((c) => c._tag === "Exhausted")).toHaveLength(60 - limit)
          // every unit of the quota went to exactly one message
          expect(charged.map((c) => c.used).sort((p, q) => p - q)).toEqual(
            Array.from({ length: limit }, (_, i) => i + 1)
          )
          for (const c of all) if (c._tag === "Exhausted") expect(c.used).toBe(limit)
          expect(yield* usage(stores, clientId, now)).toBe(limit)
          expect(yield* usage(other, clientId, now)).toBe(limit)
          // the charged messages, and only they, are remembered
          const chargedIds = batches.flatMap((batch, b) =>
            batch.filter((_, i) => answers[b]?.[i]?._tag === "Charged")
          )
          expect(chargedIds).toHaveLength(limit)
          for (const id of batches.flat()) expect(yield* hasMarker(stores, id)).toBe(chargedIds.includes(id))
        })
    )
  })
})
