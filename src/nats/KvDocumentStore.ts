/**
 * The documents port over a NATS KV bucket: a deleted or purged key reads as absent, and writes are
 * the lean conditional publishes of `KvPut.ts` (the client's own writes for a bucket it did not
 * open with default codecs). JetStream's "wrong last sequence" is the port's `DocumentConflict`;
 * anything else (no server, a timeout) rejects as the client did.
 */
import type { KV } from "@nats-io/kv"
import { DocumentConflict, type Documents } from "../platform/Documents.js"
import { isWrongLastSequence, type JetStreamPublish } from "./JetStreamPublish.js"
import { clientKvPut, type KvPut, leanKvPut } from "./KvPut.js"

const conflictsNamed =
  (put: KvPut): KvPut =>
  (key, value, revision) =>
    put(key, value, revision).catch((error: unknown) =>
      Promise.reject(isWrongLastSequence(error) ? new DocumentConflict(key) : error)
    )

export const kvDocumentStore = (kv: KV, publish?: JetStreamPublish): Documents => ({
  get: (key) =>
    kv
      .get(key)
      .then((entry) =>
        entry === null || entry.operation !== "PUT"
          ? undefined
          : { value: entry.string(), revision: entry.revision }
      ),
  put: conflictsNamed(publish === undefined ? clientKvPut(kv) : leanKvPut(kv, publish))
})
