/** The documents contract over NATS KV buckets of a real nats-server, with the lean writes the gateway uses. */
import type { KV } from "@nats-io/kv"
import { Effect, ManagedRuntime } from "effect"
import { afterAll } from "vitest"
import { kvDocumentStore } from "../../src/nats/KvDocumentStore.js"
import { Nats } from "../../src/nats/Nats.js"
import { openBucket } from "../../src/nats/Topology.js"
import type { Documents } from "../../src/platform/Documents.js"
import { suite } from "../contracts/DocumentsContract.js"
import { NatsTest } from "../support/nats.js"

const runtime = ManagedRuntime.make(NatsTest)
afterAll(() => runtime.dispose())

const buckets = new WeakMap<Documents, KV>()
let opened = 0

suite("nats kv", {
  fresh: () =>
    runtime.runPromise(
      Effect.gen(function* () {
        const { publish } = yield* Nats
        const kv = yield* openBucket(`test_documents_contract_${++opened}`)
        const documents = kvDocumentStore(kv, publish)
        buckets.set(documents, kv)
        return documents
      })
    ),
  remove: async (documents, key) => {
    await buckets.get(documents)?.delete(key)
  }
})
