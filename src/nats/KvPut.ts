/**
 * Conditional KV writes through the lean publish (`JetStreamPublish.ts`). `kv.create` and
 * `kv.update` are each a `js.publish` with a headers object, a request, a timer and an error built
 * for its stack: the status read model writes two or three documents per message, and those writes
 * cost as much CPU as the event appends before those went lean.
 *
 * A KV write is a JetStream publish to the key's subject with the key's last revision expected, so
 * the answers are `kv.update`'s: the new revision, or `JetStreamApiError` (wrong last sequence) when
 * another writer got there first. A create expects revision 0; only when the key's last entry is a
 * delete or purge marker does it fall back to `kv.create`, which knows to write over the marker.
 */
import { Bucket, type KV } from "@nats-io/kv"
import { isWrongLastSequence, type JetStreamPublish } from "./JetStreamPublish.js"

/** Writes `value` at `key` if its last revision is `revision`, `undefined` for a create; the new revision. */
export type KvPut = (key: string, value: string, revision: number | undefined) => Promise<number>

/** `kv.create` / `kv.update`, as the client does them. */
export const clientKvPut =
  (kv: KV): KvPut =>
  (key, value, revision) =>
    revision === undefined ? kv.create(key, value) : kv.update(key, value, revision)

/**
 * The lean writes for a bucket this gateway opened (the client's `Bucket`, default codecs); the
 * client's own for anything else.
 */
export const leanKvPut = (kv: KV, publish: JetStreamPublish): KvPut => {
  const fallback = clientKvPut(kv)
  if (!(kv instanceof Bucket) || kv.codec.key.encode("k") !== "k") return fallback
  return (key, value, revision) => {
    let subject: string
    try {
      kv.validateKey(key)
      subject = kv.subjectForKey(key, true)
    } catch (error) {
      return Promise.reject(error)
    }
    const written = publish(subject, value, { expect: { lastSubjectSequence: revision ?? 0 } }).then(
      (ack) => ack.seq
    )
    return revision === undefined
      ? // a refused create may be a key deleted before: the client's create checks and writes over it
        written.catch((error) =>
          isWrongLastSequence(error) ? fallback(key, value, undefined) : Promise.reject(error)
        )
      : written
  }
}
