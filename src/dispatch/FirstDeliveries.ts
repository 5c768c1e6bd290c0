/**
 * Which deliveries of a work item are surely its first, so that its snapshot needs no look at the
 * message stream before the provider call.
 *
 * A fresh work item carries the message's state at the revision that queued it; the provider actor
 * may call with it only if nothing was recorded since. Nothing but the item itself moves a message
 * on before its call, and a fresh item is queued once, by the step that wrote its revision (the event
 * store's `written` tells it from a repeat; see `WorkItem`). So its first delivery proves the
 * snapshot, if "first" can be trusted. JetStream's delivery count says so only as far as the consumer
 * remembers: a single nats-server killed and restarted can come back without its last acks and
 * deliver an item already handled as a first delivery, and a clustered consumer's new leader counts
 * from 1 again.
 *
 * The count is therefore trusted only where neither can have happened: one server (replicas 1), and
 * an item stored while this very connection was up, that is, after `SMS_WORK`'s last sequence as the
 * server answered it on this connection. A restarted server has a new `server_id` (checked:
 * nats-server 2.9 makes one per start), so a new connection is known by its server and client ids,
 * and until its sequence is learnt nothing is trusted. Nor is anything where the event store cannot
 * tell a repeated append from a write (EventStoreDB). Every other delivery gets the look (one direct
 * get per message, all at once).
 */
import type { JsMsg } from "@nats-io/jetstream"
import { Effect } from "effect"
import { EventStore } from "../eventstore/EventStore.js"
import { Nats } from "../nats/Nats.js"
import { Streams } from "../nats/Topology.js"

export interface FirstDeliveries {
  /** whether this delivery of a work item is surely its first */
  readonly surelyFirst: (msg: JsMsg) => boolean
}

const nothingTrusted: FirstDeliveries = { surelyFirst: () => false }

export const makeFirstDeliveries = Effect.gen(function* () {
  const { nc, jsm, replicas } = yield* Nats
  const store = yield* EventStore
  if (replicas > 1 || !store.writtenIsExact) return nothingTrusted
  const connection = () => (nc.info === undefined ? undefined : `${nc.info.server_id}/${nc.info.client_id}`)
  /** the connection the sequence was learnt on, and `SMS_WORK`'s last sequence then */
  let learnt: { readonly connection: string; readonly lastSequence: number } | undefined
  let learning: string | undefined

  const learn = (current: string) => {
    learning = current
    return jsm.streams.info(Streams.work).then(
      (info) => {
        // an answer from a server this connection no longer reaches teaches nothing
        if (connection() === current) learnt = { connection: current, lastSequence: info.state.last_seq }
        learning = undefined
      },
      () => {
        learning = undefined
      }
    )
  }
  // the connection at the start, learnt before the first delivery (later ones when first met)
  const atStart = connection()
  if (atStart !== undefined) yield* Effect.promise(() => learn(atStart))

  return {
    surelyFirst: (msg) => {
      if (msg.info.deliveryCount !== 1) return false
      const current = connection()
      if (current === undefined) return false
      if (learnt?.connection !== current) {
        if (learning !== current) learn(current)
        return false
      }
      return msg.info.streamSequence > learnt.lastSequence
    }
  } satisfies FirstDeliveries
})
