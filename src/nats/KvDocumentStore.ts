/**
 * The documents port over a NATS KV bucket: a deleted or purged key reads as absent, and writes are
 * the lean conditional publishes of `KvPut.ts` (the client's own writes for a bucket it did not
 * open with default codecs).
 */
import type { KV } from "@nats-io/kv"
import type { Documents } from "../platform/Documents.js"
import type { JetStreamPublish } from "./JetStreamPublish.js"
import { clientKvPut, leanKvPut } from "./KvPut.js"

export const kvDocumentStore = (kv: KV, publish?: JetStreamPublish): Documents => ({
  get: (key) =>
    kv
      .get(key)
      .then((entry) =>
        entry === null || entry.operation !== "PUT"
          ? undefined
          : { value: entry.string(), revision: entry.revision }
      ),
  put: publish === undefined ? clientKvPut(kv) : leanKvPut(kv, publish)
})
