/**
 * How message events are stored: `type` is the event's tag, `data` its encoded fields (dates as
 * ISO strings, no `_tag`), and the id is derived from what the event records, so that re-running a
 * decision after a crash yields the same id and the store recognises the retry.
 */
import { Effect, Schema } from "effect"
import { eventIdFor } from "../domain/Ids.js"
import { MessageEvent } from "../domain/Message.js"
import { EventStoreError, type EventToAppend, type RecordedEvent } from "./EventStore.js"

const encode = Schema.encodeSync(MessageEvent)
const decode = Schema.decodeUnknown(MessageEvent)

const identity = (event: MessageEvent): ReadonlyArray<string | number> => {
  switch (event._tag) {
    case "SmsRequested":
      return []
    case "SmsDispatched":
      return [event.attempt, event.providerMessageId]
    case "SmsRetried":
      return [event.attempt]
    case "SmsDelivered":
      return [event.providerMessageId]
    case "SmsFailed":
      return [event.reason, event.code ?? ""]
  }
}

export const toStored = (event: MessageEvent): EventToAppend => {
  const { _tag, ...data } = encode(event)
  return { id: eventIdFor(event.messageId, _tag, ...identity(event)), type: _tag, data }
}

export const isMessageEvent = (recorded: RecordedEvent): boolean => recorded.type.startsWith("Sms")

export const fromStored = (recorded: RecordedEvent): Effect.Effect<MessageEvent, EventStoreError> =>
  decode({ ...(recorded.data as object), _tag: recorded.type }).pipe(
    Effect.mapError(
      (cause) =>
        new EventStoreError({
          reason: "InvalidData",
          message: `event ${recorded.id} (${recorded.type}) in ${recorded.streamName} does not decode`,
          cause
        })
    )
  )
