/**
 * A reactor with its own checkpoint: publishes `sms.notifications.<status>` (stream
 * `SMS_NOTIFICATIONS`) when a message is dispatched, delivered or failed, for other services.
 * `Nats-Msg-Id` is the event id, so a batch replayed after a crash is dropped by JetStream's dedupe
 * window, and consumers can dedupe on `eventId` beyond it.
 */
import { Effect } from "effect"
import { fromStored } from "../eventstore/MessageEvents.js"
import { Nats, NatsError } from "../nats/Nats.js"
import { Subjects } from "../nats/Topology.js"
import type { Projection } from "./ProjectionRunner.js"

export interface Notification {
  readonly messageId: string
  readonly status: "dispatched" | "delivered" | "failed"
  readonly eventId: string
  readonly position: number
  readonly at: string
  readonly provider?: string
  readonly providerMessageId?: string
  readonly reason?: string
}

export const projection: Projection<unknown, Nats> = {
  name: "notifications",
  handles: new Set(["SmsDispatched", "SmsDelivered", "SmsFailed"]),
  applyBatch: (recorded) =>
    Effect.gen(function* () {
      const { js } = yield* Nats
      const notifications: Array<Notification> = []
      for (const record of recorded) {
        const event = yield* fromStored(record)
        const base = { messageId: event.messageId, eventId: record.id, position: record.position }
        if (event._tag === "SmsDispatched") {
          notifications.push({
            ...base,
            status: "dispatched",
            at: event.dispatchedAt.toISOString(),
            provider: event.provider,
            providerMessageId: event.providerMessageId
          })
        } else if (event._tag === "SmsDelivered") {
          notifications.push({
            ...base,
            status: "delivered",
            at: event.deliveredAt.toISOString(),
            provider: event.provider
          })
        } else if (event._tag === "SmsFailed") {
          notifications.push({
            ...base,
            status: "failed",
            at: event.failedAt.toISOString(),
            provider: event.provider,
            reason: event.reason
          })
        }
      }
      // published in order, acks pipelined
      yield* Effect.tryPromise({
        try: () =>
          Promise.all(
            notifications.map((n) =>
              js.publish(Subjects.notification(n.status), JSON.stringify(n), { msgID: n.eventId })
            )
          ),
        catch: (cause) =>
          new NatsError({ reason: "RequestFailed", message: "cannot publish notifications", cause })
      })
    })
}
