/**
 * A reactor with its own checkpoint: publishes `sms.notifications.<status>` (stream
 * `SMS_NOTIFICATIONS`) when a message is dispatched, delivered or failed, or its report deadline
 * ran out (`unknown`, which a late `delivered` or `failed` may still follow), for other services.
 * `Nats-Msg-Id` is the event id, so a batch replayed after a crash is dropped by JetStream's dedupe
 * window, and consumers can dedupe on `eventId` beyond it.
 *
 * The first final status wins: a report contradicting it (marked `contradicts` by the decider) is on
 * the record for the audit only, so nothing is published for it; other services see one final status.
 */
import { Effect } from "effect"
import type { MessageEvent } from "../domain/Message.js"
import { EventStoreError, type RecordedEvent } from "../eventstore/EventStore.js"
import { decodeRecorded } from "../eventstore/MessageEvents.js"
import { Nats, NatsError } from "../nats/Nats.js"
import { Subjects } from "../nats/Topology.js"
import type { Projection } from "./ProjectionRunner.js"

export interface Notification {
  readonly messageId: string
  readonly status: "dispatched" | "delivered" | "failed" | "unknown"
  readonly eventId: string
  readonly position: number
  readonly at: string
  readonly provider?: string
  readonly providerMessageId?: string
  readonly reason?: string
}

/** The notification an event gives, if any. */
const notificationOf = (event: MessageEvent, record: RecordedEvent): Notification | undefined => {
  const base = { messageId: event.messageId, eventId: record.id, position: record.position }
  switch (event._tag) {
    case "SmsDispatched":
      return {
        ...base,
        status: "dispatched",
        at: event.dispatchedAt.toISOString(),
        provider: event.provider,
        providerMessageId: event.providerMessageId
      }
    case "SmsDelivered":
      if (event.contradicts !== undefined) return undefined
      return { ...base, status: "delivered", at: event.deliveredAt.toISOString(), provider: event.provider }
    case "SmsFailed":
      if (event.contradicts !== undefined) return undefined
      return {
        ...base,
        status: "failed",
        at: event.failedAt.toISOString(),
        provider: event.provider,
        reason: event.reason
      }
    case "SmsStatusUnknown":
      // not final: a late report may still follow, as `delivered` or `failed`
      return {
        ...base,
        status: "unknown",
        at: event.at.toISOString(),
        provider: event.provider,
        ...(event.providerMessageId === undefined ? {} : { providerMessageId: event.providerMessageId })
      }
    default:
      return undefined
  }
}

export const projection: Projection<unknown, Nats> = {
  name: "notifications",
  handles: new Set(["SmsDispatched", "SmsDelivered", "SmsFailed", "SmsStatusUnknown"]),
  applyBatch: (recorded) =>
    Effect.gen(function* () {
      const { publish } = yield* Nats
      const notifications: Array<Notification> = []
      for (const record of recorded) {
        const event = decodeRecorded(record)
        if (event instanceof EventStoreError) return yield* event
        const notification = notificationOf(event, record)
        if (notification !== undefined) notifications.push(notification)
      }
      // published in order, acks pipelined
      yield* Effect.tryPromise({
        try: () =>
          Promise.all(
            notifications.map((n) =>
              publish(Subjects.notification(n.status), JSON.stringify(n), { msgID: n.eventId })
            )
          ),
        catch: (cause) =>
          new NatsError({ reason: "RequestFailed", message: "cannot publish notifications", cause })
      })
    })
}
