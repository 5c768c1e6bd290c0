/**
 * A reactor: when a provider says a number is invalid (`SmsFailed(invalid_number)`, from its answer
 * or from a delivery report), the number is deactivated in its own stream, naming the message.
 * At-least-once: a failure already acted on (the same message in the phone's history) is skipped,
 * so a replay can never undo an operator's reactivation.
 *
 * The first final status wins: an `invalid` report after `delivered` is on the record for the audit
 * only, and must not take a working number out of service. Such a failure is marked `contradicts`
 * and skipped unread; one stored before that mark existed is caught once the message is loaded, as
 * it is not the message's final.
 */
import { Effect } from "effect"
import { load } from "../messages/MessageRepository.js"
import { executePhone, loadPhone } from "../messages/PhoneRepository.js"
import type { SmsFailed } from "../domain/Message.js"
import { maskNumber } from "../domain/PhoneNumber.js"
import { type EventStore, EventStoreError, type RecordedEvent } from "../eventstore/EventStore.js"
import { decodeRecorded } from "../eventstore/MessageEvents.js"
import type { Projection } from "./ProjectionRunner.js"

/** The batch's failures for an invalid number, found in a plain loop: an Effect only for those. */
const invalidNumberFailures = (recorded: ReadonlyArray<RecordedEvent>) => {
  const failures: Array<SmsFailed> = []
  for (const record of recorded) {
    const event = decodeRecorded(record)
    if (event instanceof EventStoreError) return event
    if (event._tag === "SmsFailed" && event.reason === "invalid_number" && event.contradicts === undefined) {
      failures.push(event)
    }
  }
  return failures
}

const deactivate = (event: SmsFailed) =>
  Effect.gen(function* () {
    const message = yield* load(event.messageId)
    if (message.state.status === "none") return
    // only the failure that decided the message's status acts. Decoded events carry no id to compare,
    // but one message never records two invalid_number failures with the same code and time.
    const final = message.state.final
    const decided =
      final?._tag === "SmsFailed" &&
      final.reason === event.reason &&
      final.code === event.code &&
      final.failedAt.getTime() === event.failedAt.getTime()
    if (!decided) return
    const number = message.state.request.to
    const phone = yield* loadPhone(number)
    const actedOn = phone.events.some(
      (e) => e._tag === "PhoneDeactivated" && e.source.messageId === event.messageId
    )
    if (actedOn) return
    const fromReport = message.events.some((e) => e._tag === "SmsDispatched")
    const source = fromReport ? "delivery_report" : "provider_answer"
    const { appended } = yield* executePhone(number, {
      _tag: "Deactivate",
      number,
      reason: "invalid_number",
      source: { kind: source, messageId: event.messageId, provider: event.provider, code: event.code },
      at: event.failedAt
    })
    // the line of the phone's event, under the message that caused it (rare: no level check needed)
    if (appended.length === 0) return
    yield* Effect.logInfo("phone number deactivated").pipe(
      Effect.annotateLogs({
        messageId: event.messageId,
        trackingId: message.state.request.trackingId ?? event.messageId,
        to: maskNumber(number),
        reason: "invalid_number",
        source,
        ...(event.provider === undefined ? {} : { provider: event.provider }),
        ...(event.code === undefined ? {} : { code: event.code })
      })
    )
  })

export const projection: Projection<unknown, EventStore> = {
  name: "phone-deactivation",
  handles: new Set(["SmsFailed"]),
  applyBatch: (recorded) =>
    Effect.suspend(() => {
      const failures = invalidNumberFailures(recorded)
      // one after the other, as before: each acts on the phone as the previous one left it
      return failures instanceof EventStoreError
        ? Effect.fail(failures)
        : Effect.forEach(failures, deactivate, { discard: true })
    })
}
