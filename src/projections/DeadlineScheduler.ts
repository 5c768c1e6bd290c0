/**
 * Starts the report-deadline timer of every dispatch (see `deliveryReports/ReportDeadline`): the
 * `SmsDispatched` of one batch become one check per provider on `sms.deadlines.<provider>`. A reactor:
 * it acts, so it only ever moves forward and is never rebuilt.
 *
 * On its first start it goes through the whole history once: every past dispatch gets a check, due
 * at once when its deadline has passed; the worker records `unknown` where the message still waits
 * for its report (the messages issue 14 found stuck in `dispatched`) and nothing elsewhere.
 */
import { Effect } from "effect"
import { EventStoreError } from "../eventstore/EventStore.js"
import { decodeRecorded } from "../eventstore/MessageEvents.js"
import { type DeadlineCheck, publishDeadlineChecks } from "../deliveryReports/ReportDeadline.js"
import type { Nats } from "../nats/Nats.js"
import type { Projection } from "./ProjectionRunner.js"

export const projection: Projection<unknown, Nats> = {
  name: "deadline-scheduler",
  handles: new Set(["SmsDispatched"]),
  applyBatch: (recorded) =>
    Effect.gen(function* () {
      const checks: Array<{ readonly check: DeadlineCheck; readonly eventId: string }> = []
      for (const record of recorded) {
        const event = decodeRecorded(record)
        if (event instanceof EventStoreError) return yield* event
        if (event._tag !== "SmsDispatched") continue
        checks.push({
          eventId: record.id,
          check: {
            messageId: event.messageId,
            provider: event.provider,
            providerMessageId: event.providerMessageId,
            dispatchedAt: event.dispatchedAt
          }
        })
      }
      if (checks.length > 0) yield* publishDeadlineChecks(checks)
    })
}
