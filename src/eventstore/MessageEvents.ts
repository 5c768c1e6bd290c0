/** The storage codec of message events (see `EventCodec`). */
import { MessageEvent } from "../domain/Message.js"
import { makeEventCodec } from "./EventCodec.js"

const identity = (event: MessageEvent): ReadonlyArray<string | number> => {
  switch (event._tag) {
    case "SmsRequested":
      return [event.messageId]
    case "SmsDispatched":
      return [event.messageId, event.attempt, event.providerMessageId]
    case "SmsRetried":
      return [event.messageId, event.attempt]
    case "SmsDelivered":
      return [event.messageId, event.providerMessageId]
    case "SmsFailed":
      return [event.messageId, event.reason, event.code ?? ""]
    case "SmsResubmitted":
      return [event.messageId, event.resubmittedAt.toISOString()]
    case "SmsStatusReported":
      return [event.messageId, event.rawStatus]
  }
}

export const { toStored, toStoredFrom, fromStored } = makeEventCodec(MessageEvent, identity)
