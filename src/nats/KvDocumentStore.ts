/**
 * The documents port over a NATS KV bucket: a deleted or purged key reads as absent, and writes are
 * the lean conditional publishes of `KvPut.ts` (the client's own writes for a bucket it did not
 * open with default codecs). JetStream's "wrong last sequence" is the port's `DocumentConflict`;
 * anything else (no server, a timeout) rejects as the client did.
 */
import { type KV, KvWatchInclude } from "@nats-io/kv"
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
  put: conflictsNamed(publish === undefined ? clientKvPut(kv) : leanKvPut(kv, publish)),
  set: (key, value) => kv.put(key, value),
  keys: async (prefix) => {
    // a prefix that ends a token is a subject filter the server applies; any other is filtered here
    const filter = prefix === "" || !prefix.endsWith(".") ? ">" : `${prefix}>`
    const keys: Array<string> = []
    for await (const key of await kv.keys(filter)) if (key.startsWith(prefix)) keys.push(key)
    return keys.sort()
  },
  watch: async (onChange) => {
    // from the sequence after the bucket's last, read first: a write made after this call is heard
    // however long the watch's consumer takes to start on the server (asking for new messages only,
    // one made before that was missed now and then: a flaky contract test)
    const { streamInfo } = await kv.status()
    const updates = await kv.watch({
      key: ">",
      include: KvWatchInclude.UpdatesOnly,
      resumeFromRevision: streamInfo.state.last_seq + 1
    })
    void (async () => {
      for await (const entry of updates) {
        onChange(
          entry.key,
          entry.operation === "PUT" ? { value: entry.string(), revision: entry.revision } : undefined
        )
      }
    })().catch(() => undefined)
    return () => updates.stop()
  }
})
