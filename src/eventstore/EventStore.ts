/**
 * The event store port. Adapters: `MemoryEventStore.layer`, `JetStreamEventStore.layer`
 * (EventStoreDB in production).
 *
 * - A stream is an ordered list of events; its revision is the 0-based index of its last event.
 * - `append` is atomic (all events or none) and checks the expected revision.
 * - Appending events whose ids are already in the stream, right after the expected revision, is a
 *   retry of the same append: it succeeds without writing twice and returns the first result.
 * - A position orders every event of the store; `subscribeAll` starts strictly after a position.
 * - `appendMany` is many independent appends at once (a batch's group commit): each request is
 *   checked and answered exactly as by `append`, none waits for another; requests on the same
 *   stream in one batch race like concurrent appends.
 */
import { Context, Data, type Effect, type Either, Schema, type Stream } from "effect"

export type ExpectedRevision = Data.TaggedEnum<{
  /** the stream must not exist yet */
  NoStream: {}
  /** no check */
  Any: {}
  /** the stream's last event must have this revision */
  Exact: { readonly revision: number }
}>
export const ExpectedRevision = Data.taggedEnum<ExpectedRevision>()

export const describeExpected = (expected: ExpectedRevision): string =>
  expected._tag === "Exact"
    ? `revision ${expected.revision}`
    : expected._tag === "NoStream"
      ? "no stream"
      : "any"

export interface EventToAppend {
  /** unique per event, deterministic where a retry must be recognised (see `eventIdFor`) */
  readonly id: string
  readonly type: string
  /** JSON-serialisable payload */
  readonly data: unknown
}

export interface RecordedEvent {
  readonly id: string
  readonly type: string
  readonly data: unknown
  readonly streamName: string
  readonly revision: number
  /** global order in this store; opaque but comparable, > 0 */
  readonly position: number
  readonly recordedAt: Date
}

export interface AppendResult {
  /** revision of the last event written */
  readonly revision: number
  /** position of the last event written */
  readonly position: number
  /**
   * whether this call wrote them: false when it found these very events appended before (a retry of
   * an earlier append, maybe its own after a lost answer), so a step that must happen once per write
   * (a fresh work item) knows not to repeat it
   */
  readonly written: boolean
}

/** Before every position: subscribing from here replays the whole store. */
export const START: number = 0

export class WrongExpectedRevision extends Schema.TaggedError<WrongExpectedRevision>()(
  "WrongExpectedRevision",
  {
    streamName: Schema.String,
    expected: Schema.String,
    /** -1 when the stream does not exist */
    actual: Schema.Number
  }
) {
  override get message() {
    return `${this.streamName}: expected ${this.expected}, stream is at ${this.actual}`
  }
}

export class EventStoreError extends Schema.TaggedError<EventStoreError>()("EventStoreError", {
  reason: Schema.Literal("Unavailable", "Timeout", "InvalidData", "Unknown"),
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {}

/** An adapter's way of naming its errors: `failureFrom(reasonOf)(operation)(cause)`. */
export const failureFrom =
  (reasonOf: (cause: unknown) => EventStoreError["reason"]) =>
  (operation: string) =>
  (cause: unknown): EventStoreError =>
    new EventStoreError({
      reason: reasonOf(cause),
      message: `${operation}: ${cause instanceof Error ? cause.message : String(cause)}`,
      cause
    })

export const invalidData = (message: string, cause?: unknown): EventStoreError =>
  new EventStoreError({ reason: "InvalidData", message, cause })

export interface AppendRequest {
  readonly streamName: string
  readonly events: ReadonlyArray<EventToAppend>
  readonly expected: ExpectedRevision
}

export type AppendOutcome = Either.Either<AppendResult, WrongExpectedRevision | EventStoreError>

export interface SubscribeOptions {
  /** deliver events strictly after this position (default `START`) */
  readonly from?: number
  /**
   * `subscribeAll` only: chunks come at most one per this many milliseconds (a chunk may wait for
   * more events until the window after the previous one), so a batch-first reader gets fewer,
   * fuller chunks (`Gather.ts`). Without it a chunk is what the adapter has at hand. An adapter that
   * cannot wait ignores it.
   */
  readonly gatherMs?: number
}

export interface EventStoreService {
  /**
   * whether `AppendResult.written` is exact: false where the server answers the repeat of an append
   * it holds already as it answers a write (EventStoreDB's idempotent appends), so that `written`
   * may be true for a repeat
   */
  readonly writtenIsExact: boolean
  readonly append: (
    streamName: string,
    events: ReadonlyArray<EventToAppend>,
    expected: ExpectedRevision
  ) => Effect.Effect<AppendResult, WrongExpectedRevision | EventStoreError>
  /** many independent appends at once (each exactly as `append`); outcomes in the same order; never fails as a whole */
  readonly appendMany: (requests: ReadonlyArray<AppendRequest>) => Effect.Effect<ReadonlyArray<AppendOutcome>>
  /** every event of one stream, in order; empty when the stream does not exist */
  readonly read: (streamName: string) => Effect.Effect<ReadonlyArray<RecordedEvent>, EventStoreError>
  /**
   * the revision of each stream's last event (-1 for a stream that does not exist), in the order
   * asked, all asked at once: a check that nothing was appended since, without reading the history
   */
  readonly lastRevisions: (
    streamNames: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyArray<number>, EventStoreError>
  /** every event of the store after `from`, then the live ones as they are appended; never ends */
  readonly subscribeAll: (options?: SubscribeOptions) => Stream.Stream<RecordedEvent, EventStoreError>
  /** every event after `from` that exists when called, then ends */
  readonly readAll: (options?: SubscribeOptions) => Stream.Stream<RecordedEvent, EventStoreError>
  /**
   * How far the store's head is past each of `positions` (projections' checkpoints), in the order
   * asked: 0 when no event comes after one, else at least the appends and at most the events after
   * it, counted up to `cap`. What `/metrics` and `/ready` report as projection lag, the same way on
   * every store.
   */
  readonly appendsAfter: (
    positions: ReadonlyArray<number>,
    cap: number
  ) => Effect.Effect<ReadonlyArray<number>, EventStoreError>
}

export class EventStore extends Context.Tag("sms-gateway/EventStore")<EventStore, EventStoreService>() {}

/**
 * The retry rule shared by adapters: `events` were already appended if the stream holds the same
 * ids, in order, right after `expected` (or anywhere, for `Any`). Returns the original result.
 */
export const findPriorAppend = (
  existing: ReadonlyArray<RecordedEvent>,
  events: ReadonlyArray<EventToAppend>,
  expected: ExpectedRevision
): AppendResult | undefined => {
  if (events.length === 0) return undefined
  const firstId = events[0]?.id
  const start =
    expected._tag === "Exact"
      ? expected.revision + 1
      : expected._tag === "NoStream"
        ? 0
        : existing.findIndex((e) => e.id === firstId)
  if (start < 0 || start + events.length > existing.length) return undefined
  for (let i = 0; i < events.length; i++) {
    if (existing[start + i]?.id !== events[i]?.id) return undefined
  }
  const last = existing[start + events.length - 1]
  return last === undefined ? undefined : { revision: last.revision, position: last.position, written: false }
}
