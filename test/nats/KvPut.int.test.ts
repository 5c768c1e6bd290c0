/**
 * The lean KV writes against the client's own `create` and `update`, on a real nats-server: the same
 * revisions, the same refusals, and a create over a deleted or purged key, so a read model cannot
 * tell them apart.
 */
import { describe, expect, layer } from "@effect/vitest"
import { JetStreamApiError } from "@nats-io/jetstream"
import type { KV } from "@nats-io/kv"
import { Effect } from "effect"
import { clientKvPut, type KvPut, leanKvPut } from "../../src/nats/KvPut.js"
import { Nats } from "../../src/nats/Nats.js"
import { openBucket } from "../../src/nats/Topology.js"
import { NatsTest } from "../support/nats.js"

/** A revision, or the refusal's class and JetStream code. */
const outcome = (write: Promise<number>) =>
  Effect.promise(() =>
    write.then(
      (revision) => ({ revision }),
      (error: unknown) => ({
        error: error instanceof JetStreamApiError ? `JetStreamApiError ${error.code}` : String(error)
      })
    )
  )

/** The same story told to a fresh bucket through `put`: what each step answered, and what was stored. */
const story = (kv: KV, put: KvPut) =>
  Effect.gen(function* () {
    const answers = []
    answers.push(yield* outcome(put("a", "1", undefined)))
    answers.push(yield* outcome(put("a", "1 again", undefined)))
    answers.push(yield* outcome(put("a", "2", 1)))
    answers.push(yield* outcome(put("a", "stale", 1)))
    answers.push(yield* outcome(put("b", "on nothing", 7)))
    yield* Effect.promise(() => kv.create("c", "x"))
    yield* Effect.promise(() => kv.delete("c"))
    answers.push(yield* outcome(put("c", "over a delete", undefined)))
    yield* Effect.promise(() => kv.create("d", "x"))
    yield* Effect.promise(() => kv.purge("d"))
    answers.push(yield* outcome(put("d", "over a purge", undefined)))
    answers.push(yield* outcome(put("bad key!", "x", undefined)))
    const stored = yield* Effect.promise(() =>
      Promise.all(["a", "b", "c", "d"].map(async (key) => (await kv.get(key))?.string() ?? null))
    )
    return { answers, stored }
  })

let buckets = 0
const freshBucket = Effect.suspend(() => openBucket(`test_kvput_${++buckets}`))

describe("the lean KV writes", () => {
  layer(NatsTest, { excludeTestServices: true })("against nats-server", (it) => {
    it.effect("answer and store what the client's create and update answer and store", () =>
      Effect.gen(function* () {
        const { publish } = yield* Nats
        const leanBucket = yield* freshBucket
        const clientBucket = yield* freshBucket
        const lean = yield* story(leanBucket, leanKvPut(leanBucket, publish))
        const client = yield* story(clientBucket, clientKvPut(clientBucket))
        expect(lean).toEqual(client)
        expect(lean.stored).toEqual(["2", null, "over a delete", "over a purge"])
        expect(lean.answers.slice(0, 5)).toEqual([
          { revision: 1 },
          { error: "JetStreamApiError 10071" },
          { revision: 2 },
          { error: "JetStreamApiError 10071" },
          { error: "JetStreamApiError 10071" }
        ])
        expect(lean.answers[7]).toMatchObject({ error: expect.stringContaining("invalid key") })
      })
    )
  })
})
