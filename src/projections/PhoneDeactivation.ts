/**
 * A reactor: when a provider says a number is invalid (`SmsFailed(invalid_number)`, from its answer
 * or from a delivery report), the number is deactivated in its own stream, naming the message.
 * At-least-once: a failure already acted on (the same message in the phone's history) is skipped,
 * so a replay can never undo an operator's reactivation.
 */
import { Effect } from "effect"
import { load } from "../actors/MessageRepository.js"
import { executePhone, loadPhone } from "../actors/PhoneRepository.js"
import type { EventStore } from "../eventstore/EventStore.js"
import { fromStored } from "../eventstore/MessageEvents.js"
import type { Projection } from "./ProjectionRunner.js"

export const projection: Projection<unknown, EventStore> = {
  name: "phone-deactivation",
  handles: new Set(["SmsFailed"]),
  applyBatch: (recorded) =>
    Effect.forEach(
      recorded,
      (record) =>
        Effect.gen(function* () {
          const event = yield* fromStored(record)
          if (event._tag !== "SmsFailed" || event.reason !== "invalid_number") return
          const message = yield* load(event.messageId)
          if (message.state.status === "none") return
          const number = message.state.request.to
          const phone = yield* loadPhone(number)
          const actedOn = phone.events.some(
            (e) => e._tag === "PhoneDeactivated" && e.source.messageId === event.messageId
          )
          if (actedOn) return
          const fromReport = message.events.some((e) => e._tag === "SmsDispatched")
          yield* executePhone(number, {
            _tag: "Deactivate",
            number,
            reason: "invalid_number",
            source: {
              kind: fromReport ? "delivery_report" : "provider_answer",
              messageId: event.messageId,
              provider: event.provider,
              code: event.code
            },
            at: event.failedAt
          })
        }),
      { discard: true }
    )
}
