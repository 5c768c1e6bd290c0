/**
 * Reading a message for an authenticated caller: its status, now or as known at a moment, and its
 * history. The one path of the HTTP and gRPC APIs. A client key sees only its own messages; another
 * client's is answered exactly like an unknown one (`UnknownMessage`).
 */
import { Effect, Option } from "effect"
import { canRead, type Principal } from "../clients/Clients.js"
import type { MessageId } from "../domain/Ids.js"
import { messageStream } from "../domain/StreamName.js"
import { EventStore, type RecordedEvent } from "../eventstore/EventStore.js"
import { statusAsOf } from "../projections/AsOf.js"
import { getStatus } from "../projections/MessageStatus.js"
import { NotYetRecorded, UnknownMessage, unavailable } from "./Errors.js"

/** The client a message belongs to: its first event's (`SmsRequested`) `clientId`; none for no events. */
export const ownerOf = (events: ReadonlyArray<RecordedEvent>): string | undefined => {
  const first = events[0]?.data
  return typeof first === "object" && first !== null && "clientId" in first
    ? String(first.clientId)
    : undefined
}

/**
 * The status the read model holds (what `GET /v1/messages/:id` answers), or with `asOf` the status
 * as it was known then, folded from the events recorded up to that time.
 */
export const readStatus = (principal: Principal, messageId: MessageId, asOf?: Date) =>
  Effect.gen(function* () {
    if (asOf === undefined) {
      const status = yield* getStatus(messageId).pipe(Effect.mapError(unavailable("the status store")))
      if (Option.isNone(status) || !canRead(principal, status.value.clientId))
        return yield* new UnknownMessage({ messageId })
      return status.value
    }
    const { view, first } = yield* statusAsOf(messageId, asOf).pipe(
      Effect.mapError(unavailable("the event store"))
    )
    // the same rule: whether (and since when) another client's message exists is not told
    if (first === undefined || !canRead(principal, first.clientId))
      return yield* new UnknownMessage({ messageId })
    if (view === undefined) {
      return yield* new NotYetRecorded({
        messageId,
        asOf: asOf.toISOString(),
        firstRecordedAt: first.recordedAt.toISOString()
      })
    }
    return view
  })

/** Every event of the message, in order. */
export const readHistory = (principal: Principal, messageId: MessageId) =>
  Effect.gen(function* () {
    const events = yield* (yield* EventStore)
      .read(messageStream(messageId))
      .pipe(Effect.mapError(unavailable("the event store")))
    const owner = ownerOf(events)
    if (owner === undefined || !canRead(principal, owner)) return yield* new UnknownMessage({ messageId })
    return events
  })
