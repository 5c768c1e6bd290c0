/**
 * A message's status as it was known at a moment: the status read model's own reducer over the
 * events recorded up to then. Answers "what did the gateway say at 14:02?" for an auditor.
 */
import { Effect } from "effect"
import type { MessageId } from "../domain/Ids.js"
import { messageStream } from "../domain/StreamName.js"
import { EventStore } from "../eventstore/EventStore.js"
import { fromStored } from "../eventstore/MessageEvents.js"
import { applyEvent, type MessageStatusView } from "./MessageStatus.js"

export interface StatusAsOf {
  /** the status known at that moment; undefined when nothing of the message was recorded by then */
  readonly view: MessageStatusView | undefined
  /**
   * When the message exists at all: when its first event was recorded and whose it is, so a caller
   * can tell "not yet at that time" from "no such message" (and the owner decides who may know).
   */
  readonly first: { readonly recordedAt: Date; readonly clientId: string } | undefined
}

export const statusAsOf = (messageId: MessageId, asOf: Date) =>
  Effect.gen(function* () {
    const store = yield* EventStore
    const recorded = yield* store.read(messageStream(messageId))
    let view: MessageStatusView | undefined
    let first: StatusAsOf["first"]
    for (const record of recorded) {
      const event = yield* fromStored(record)
      if (first === undefined && event._tag === "SmsRequested")
        first = { recordedAt: record.recordedAt, clientId: event.clientId }
      if (record.recordedAt.getTime() > asOf.getTime()) break
      view = applyEvent(view, event, record)
    }
    return { view, first } satisfies StatusAsOf
  })
