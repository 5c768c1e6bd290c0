/**
 * How domain events are stored: `type` is the event's tag, `data` its encoded fields (dates as ISO
 * strings, no `_tag`). The id is derived from the stream, the revision the event is written at and
 * what it records: re-running a decision after a crash yields the same id, so the store recognises
 * the retry, while the same kind of fact recorded again later (a second failure after a
 * resubmission) gets a new id and is never mistaken for a duplicate.
 */
import { Effect, Either, Schema } from "effect"
import { eventIdFor } from "../domain/Ids.js"
import { EventStoreError, type EventToAppend, type RecordedEvent } from "./EventStore.js"

export interface EventCodec<E extends { readonly _tag: string }> {
  readonly toStored: (event: E, revision: number) => EventToAppend
  /** the events of one append, the first written at `firstRevision` */
  readonly toStoredFrom: (events: ReadonlyArray<E>, firstRevision: number) => ReadonlyArray<EventToAppend>
  readonly fromStored: (recorded: RecordedEvent) => Effect.Effect<E, EventStoreError>
  /**
   * `fromStored` without the Effect, for plain loops over a batch: the event, or the error
   * `fromStored` fails with. An `EventStoreError` can be yielded in `Effect.gen` to fail with it.
   */
  readonly decodeRecorded: (recorded: RecordedEvent) => E | EventStoreError
}

/**
 * Plain functions doing the Schema's work on the hot path (Schema encode/decode per event was a
 * large share of the gateway's allocation). They must agree with the Schema: property-tested.
 */
export interface LeanCodec<E> {
  /** what the Schema encodes the event to, without `_tag` */
  readonly encode: (event: E) => Record<string, unknown>
  /**
   * The event the Schema decodes from `data`, or `undefined` when the data is not the usual shape
   * (invalid, or an old shape the Schema transforms): then the Schema decides, so that every stored
   * event that decodes with the Schema still decodes, and every refusal is the Schema's.
   */
  readonly decode: (type: string, data: unknown) => E | undefined
}

export const makeEventCodec = <E extends { readonly _tag: string }, I extends { readonly _tag: string }>(
  schema: Schema.Schema<E, I>,
  /** the stream key and the fields that tell two events of one type apart */
  identity: (event: E) => ReadonlyArray<string | number>,
  lean?: LeanCodec<E>
): EventCodec<E> => {
  const schemaEncode = Schema.encodeSync(schema)
  const encode =
    lean?.encode ??
    ((event: E): Record<string, unknown> => {
      const { _tag, ...data } = schemaEncode(event)
      return data
    })
  const schemaDecode = Schema.decodeUnknownEither(schema)
  const decodeWithSchema = (recorded: RecordedEvent): E | EventStoreError =>
    Either.getOrElse(
      schemaDecode({ ...(recorded.data as object), _tag: recorded.type }),
      (cause) =>
        new EventStoreError({
          reason: "InvalidData",
          message: `event ${recorded.id} (${recorded.type}) in ${recorded.streamName} does not decode`,
          cause
        })
    )
  // Every projection of a process reads the same recorded objects: each event is decoded once.
  const decoded = new WeakMap<RecordedEvent, E>()
  const decodeRecorded = (recorded: RecordedEvent): E | EventStoreError => {
    const known = decoded.get(recorded)
    if (known !== undefined) return known
    const event = lean?.decode(recorded.type, recorded.data) ?? decodeWithSchema(recorded)
    if (!(event instanceof EventStoreError)) decoded.set(recorded, event)
    return event
  }
  const toStored = (event: E, revision: number): EventToAppend => ({
    id: eventIdFor(revision, event._tag, ...identity(event)),
    type: event._tag,
    data: encode(event)
  })
  return {
    toStored,
    toStoredFrom: (events, firstRevision) =>
      events.map((event, index) => toStored(event, firstRevision + index)),
    fromStored: (recorded) => {
      const event = decodeRecorded(recorded)
      return event instanceof EventStoreError ? Effect.fail(event) : Effect.succeed(event)
    },
    decodeRecorded
  }
}
