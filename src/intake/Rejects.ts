/** Refused input is stored on `sms.rejects` with its reason: nothing is dropped silently. */
import { Clock, Effect } from "effect"
import { Nats, NatsError } from "../nats/Nats.js"
import { Subjects } from "../nats/Topology.js"

const MAX_PAYLOAD_CHARS = 64 * 1024

export interface Reject {
  readonly source: string
  readonly field: string
  readonly reason: string
  readonly payload: Uint8Array | string
  /** e.g. the JetStream sequence of the refused command */
  readonly ref?: string
}

export const publishReject = Effect.fn("Rejects.publish")(function* (reject: Reject) {
  const { publish } = yield* Nats
  const now = yield* Clock.currentTimeMillis
  const text = typeof reject.payload === "string" ? reject.payload : new TextDecoder().decode(reject.payload)
  const record = {
    source: reject.source,
    ref: reject.ref,
    error: { field: reject.field, reason: reject.reason },
    rejectedAt: new Date(now).toISOString(),
    payload: text.slice(0, MAX_PAYLOAD_CHARS),
    truncated: text.length > MAX_PAYLOAD_CHARS
  }
  yield* Effect.tryPromise({
    try: () => publish(Subjects.rejects, JSON.stringify(record)),
    catch: (cause) => new NatsError({ reason: "RequestFailed", message: "cannot store reject", cause })
  })
})
