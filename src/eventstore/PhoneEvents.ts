/** The storage codec of phone-number events (see `EventCodec`). */
import { PhoneEvent } from "../domain/PhoneNumberLifecycle.js"
import { makeEventCodec } from "./EventCodec.js"

export const phoneCodec = makeEventCodec(PhoneEvent, (event) => [
  event.number,
  event._tag === "PhoneDeactivated" ? event.source.messageId : event.by
])
