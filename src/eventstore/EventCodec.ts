/**
 * How domain events are stored: `type` is the event's tag, `data` its encoded fields (dates as ISO
 * strings, no `_tag`). The id is derived from the stream, the revision the event is written at and
 * what it records: re-running a decision after a crash yields the same id, so the store recognises
 * the retry, while the same kind of fact recorded again later (a second failure after a
 * resubmission) gets a new id and is never mistaken for a duplicate.
 */
import { Effect, Schema } from "effect"
import { eventIdFor } from "../domain/Ids.js"
import { EventStoreError, type EventToAppend, type RecordedEvent } from "./EventStore.js"

export interface EventCodec<E extends { readonly _tag: string }> {
  readonly toStored: (event: E, revision: number) => EventToAppend
  /** the events of one append, the first written at `firstRevision` */
  readonly toStoredFrom: (events: ReadonlyArray<E>, firstRevision: number) => ReadonlyArray<EventToAppend>
  readonly fromStored: (recorded: RecordedEvent) => Effect.Effect<E, EventStoreError>
}

export const makeEventCodec = <E extends { readonly _tag: string }, I extends { readonly _tag: string }>(
  schema: Schema.Schema<E, I>,
  /** the stream key and the fields that tell two events of one type apart */
  identity: (event: E) => ReadonlyArray<string | number>
): EventCodec<E> => {
  const encode = Schema.encodeSync(schema)
  const decode = Schema.decodeUnknown(schema)
  // Every projection of a process reads the same recorded objects: each event is decoded once.
  const decoded = new WeakMap<RecordedEvent, E>()
  const toStored = (event: E, revision: number): EventToAppend => {
    const { _tag, ...data } = encode(event)
    return { id: eventIdFor(revision, _tag, ...identity(event)), type: _tag, data }
  }
  return {
    toStored,
    toStoredFrom: (events, firstRevision) =>
      events.map((event, index) => toStored(event, firstRevision + index)),
    fromStored: (recorded) => {
      const known = decoded.get(recorded)
      if (known !== undefined) return Effect.succeed(known)
      return decode({ ...(recorded.data as object), _tag: recorded.type }).pipe(
        Effect.tap((event) => decoded.set(recorded, event)),
        Effect.mapError(
          (cause) =>
            new EventStoreError({
              reason: "InvalidData",
              message: `event ${recorded.id} (${recorded.type}) in ${recorded.streamName} does not decode`,
              cause
            })
        )
      )
    }
  }
}
