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

export const statusAsOf = (messageId: MessageId, asOf: Date) =>
  Effect.gen(function* () {
    const store = yield* EventStore
    const recorded = yield* store.read(messageStream(messageId))
    let view: MessageStatusView | undefined
    for (const record of recorded) {
      if (record.recordedAt.getTime() > asOf.getTime()) break
      view = applyEvent(view, yield* fromStored(record), record)
    }
    return view
  })
