/**
 * JetStream publishes that arrive one at a time (one per HTTP request) leave together, once per
 * turn of the event loop.
 *
 * nats-core writes its outbound buffer to the socket in a microtask after the first command that
 * fills it, so publishes made in one synchronous run share one write; but each HTTP request is
 * handled in an I/O callback of its own, and each got a socket write of its own. On loopback a write
 * also runs the receiver's TCP path in the writer's time: a delivery-report burst spent a sixth of the
 * gateway's CPU in socket writes. Held until `setImmediate` (the same turn, after its I/O), all of a
 * turn's publishes are queued in one loop and leave in one write. Each still gets its own ack.
 */
import type { PubAck } from "@nats-io/jetstream"
import type { JetStreamPublish, PublishOptions } from "./JetStreamPublish.js"

interface Pending {
  readonly subject: string
  readonly payload: string | Uint8Array
  readonly options: PublishOptions | undefined
  readonly resolve: (ack: PubAck) => void
  readonly reject: (error: unknown) => void
}

export type TurnPublish = (
  subject: string,
  payload: string | Uint8Array,
  options?: PublishOptions
) => Promise<PubAck>

export const turnPublisher = (publish: JetStreamPublish): TurnPublish => {
  let pending: Array<Pending> = []
  const flush = () => {
    const taken = pending
    pending = []
    for (const p of taken) publish(p.subject, p.payload, p.options).then(p.resolve, p.reject)
  }
  return (subject, payload, options) =>
    new Promise<PubAck>((resolve, reject) => {
      if (pending.length === 0) setImmediate(flush)
      pending.push({ subject, payload, options, resolve, reject })
    })
}
