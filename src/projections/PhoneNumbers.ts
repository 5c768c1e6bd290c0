/** The phone numbers read model (KV `sms_phones`, key = digits): status, since when, why, history. */
import { Effect, Option, Schema } from "effect"
import { digitsOf } from "../domain/PhoneNumber.js"
import { type PhoneEvent, phoneEventTypes } from "../domain/PhoneNumberLifecycle.js"
import { phoneCodec } from "../eventstore/PhoneEvents.js"
import { kvDocumentStore } from "../nats/KvDocumentStore.js"
import { Nats } from "../nats/Nats.js"
import { kvDocuments, readDocument } from "./KvDocuments.js"
import { ReadModels } from "./ReadModels.js"

const HistoryEntry = Schema.Struct({
  event: Schema.Literal("PhoneDeactivated", "PhoneReactivated"),
  at: Schema.String,
  reason: Schema.String,
  /** the message whose failure deactivated it, or the operator who reactivated it */
  messageId: Schema.optional(Schema.String),
  provider: Schema.optional(Schema.String),
  code: Schema.optional(Schema.String),
  by: Schema.optional(Schema.String)
})

export const PhoneNumberView = Schema.Struct({
  number: Schema.String,
  status: Schema.Literal("active", "inactive"),
  /** absent for a number with no history (never deactivated): it has been active all along */
  since: Schema.optional(Schema.String),
  reason: Schema.optional(Schema.String),
  history: Schema.Array(HistoryEntry),
  /** position of the last event applied; 0 for a number with no history */
  position: Schema.Number
})
export type PhoneNumberView = typeof PhoneNumberView.Type

/** A number never deactivated: active, nothing to say since when or why. */
export const neverDeactivated = (number: string): PhoneNumberView => ({
  number,
  status: "active",
  history: [],
  position: 0
})

/** The view of a number folded from its own stream (what the read model will hold once it catches up). */
export const phoneViewOf = (
  number: string,
  recorded: ReadonlyArray<{ readonly event: PhoneEvent; readonly position: number }>
): PhoneNumberView =>
  recorded.reduce<PhoneNumberView | undefined>(
    (view, { event, position }) => applyPhoneEvent(view, event, { position }),
    undefined
  ) ?? neverDeactivated(number)

export const applyPhoneEvent = (
  view: PhoneNumberView | undefined,
  event: PhoneEvent,
  at: { readonly position: number }
): PhoneNumberView | undefined => {
  if (view !== undefined && at.position <= view.position) return view
  const history = view?.history ?? []
  switch (event._tag) {
    case "PhoneDeactivated":
      return {
        number: event.number,
        status: "inactive",
        since: event.deactivatedAt.toISOString(),
        reason: event.reason,
        history: [
          ...history,
          {
            event: event._tag,
            at: event.deactivatedAt.toISOString(),
            reason: event.reason,
            messageId: event.source.messageId,
            provider: event.source.provider,
            code: event.source.code
          }
        ],
        position: at.position
      }
    case "PhoneReactivated":
      return {
        number: event.number,
        status: "active",
        since: event.reactivatedAt.toISOString(),
        reason: event.reason,
        history: [
          ...history,
          { event: event._tag, at: event.reactivatedAt.toISOString(), reason: event.reason, by: event.by }
        ],
        position: at.position
      }
  }
}

/** `number` is E.164 */
export const getPhoneNumber = (number: string) =>
  Effect.flatMap(ReadModels, ({ phones }) =>
    Effect.map(
      readDocument(phones, PhoneNumberView, digitsOf(number)),
      Option.map(({ view }) => view)
    )
  )

export const projection = Effect.map(Effect.all([ReadModels, Nats]), ([{ phones }, { publish }]) =>
  kvDocuments({
    name: "phone-numbers",
    documents: kvDocumentStore(phones, publish),
    handles: new Set(phoneEventTypes),
    schema: PhoneNumberView,
    decodeEvent: phoneCodec.decodeRecorded,
    keyOf: (event) => event.number.slice(1),
    applyEvent: applyPhoneEvent
  })
)
