/**
 * Copies every stream of one event store into another, events in order with their ids, types and
 * data (the target stamps its own `recordedAt` and positions: the port has no way to set them).
 *
 * Resumable and idempotent: the target is read first, and each stream's events already there are
 * checked (ids, in order) and skipped; the rest are appended with the expected revision "events in
 * the target - 1", so a second run appends nothing and a run stopped half-way carries on where it
 * stopped. An append that landed although its answer was lost is recognised by its ids (the port's
 * retry rule). Streams are appended to concurrently; one stream's events never are.
 *
 * The end is a check, not a hope: source and target are read again and must hold the same streams
 * with the same number of events and the same ids in the same order. Memory: one small summary per
 * stream (count and a 64-bit digest of its ids), not the events.
 */
import { Chunk, Effect, Schema, Stream } from "effect"
import {
  type EventStoreError,
  type EventStoreService,
  type EventToAppend,
  ExpectedRevision,
  type RecordedEvent,
  START,
  type WrongExpectedRevision
} from "./EventStore.js"

/** source events per batch: each batch is appended, then progress is reported */
const BATCH_SIZE = 500
/** events per append: far below every adapter's limit, and small enough for any payload limit */
const MAX_EVENTS_PER_APPEND = 100
const STREAMS_IN_PARALLEL = 16

export class MigrationError extends Schema.TaggedError<MigrationError>()("MigrationError", {
  reason: Schema.Literal("Diverged", "Conflict", "Mismatch", "InvalidStore"),
  message: Schema.String
}) {}

export interface MigrationProgress {
  /** events of the source, counted before copying */
  readonly total: number
  /** source events handled so far: copied or found in the target already */
  readonly done: number
  readonly copied: number
}

export interface MigrationReport {
  readonly streams: number
  readonly events: number
  /** appended by this run */
  readonly copied: number
  /** found in the target already (an earlier run) */
  readonly skipped: number
}

export interface MigrationOptions {
  readonly onProgress?: (progress: MigrationProgress) => Effect.Effect<void>
}

/** A stream's event count and an order-sensitive digest of its ids (two independent 32-bit lanes). */
export interface StreamSummary {
  readonly count: number
  readonly digest: string
}

interface Digest {
  count: number
  a: number
  b: number
}

const newDigest = (): Digest => ({ count: 0, a: 0x811c9dc5, b: 0x9747b28c })

const addId = (digest: Digest, id: string): void => {
  let { a, b } = digest
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i)
    // FNV-1a, and a murmur-style multiply-xorshift
    a = Math.imul(a ^ c, 0x01000193)
    b = Math.imul(b ^ c, 0x5bd1e995)
    b ^= b >>> 13
  }
  // a separator, so ["ab", "c"] and ["a", "bc"] differ
  digest.a = Math.imul(a ^ 0x0a, 0x01000193)
  digest.b = Math.imul(b ^ 0x0a, 0x5bd1e995)
  digest.count++
}

const summaryOf = (digest: Digest): StreamSummary => ({
  count: digest.count,
  digest: `${(digest.a >>> 0).toString(16)}.${(digest.b >>> 0).toString(16)}`
})

const sameSummary = (x: StreamSummary | undefined, y: StreamSummary | undefined): boolean =>
  x !== undefined && y !== undefined && x.count === y.count && x.digest === y.digest

const outOfOrder = (event: RecordedEvent, expected: number) =>
  new MigrationError({
    reason: "InvalidStore",
    message: `${event.streamName}: event ${event.id} has revision ${event.revision}, expected ${expected}`
  })

/** Every stream of `store` with its summary, in one pass over `readAll`. */
export const summarize = (
  store: EventStoreService
): Effect.Effect<ReadonlyMap<string, StreamSummary>, EventStoreError | MigrationError> =>
  Effect.gen(function* () {
    const digests = new Map<string, Digest>()
    yield* Stream.runForEachChunk(store.readAll({ from: START }), (events) =>
      Effect.suspend(() => {
        for (const event of events) {
          const digest = digests.get(event.streamName) ?? newDigest()
          if (event.revision !== digest.count) return Effect.fail(outOfOrder(event, digest.count))
          addId(digest, event.id)
          digests.set(event.streamName, digest)
        }
        return Effect.void
      })
    )
    return new Map([...digests].map(([name, digest]) => [name, summaryOf(digest)]))
  })

/** Differences between two stores' summaries, described for a person; empty when they agree. */
export const differences = (
  source: ReadonlyMap<string, StreamSummary>,
  target: ReadonlyMap<string, StreamSummary>
): ReadonlyArray<string> => {
  const found: Array<string> = []
  for (const [name, summary] of source) {
    const copy = target.get(name)
    if (copy === undefined) found.push(`${name}: missing in the target (${summary.count} events)`)
    else if (copy.count !== summary.count) {
      found.push(`${name}: ${summary.count} events in the source, ${copy.count} in the target`)
    } else if (!sameSummary(summary, copy)) found.push(`${name}: the event ids differ`)
  }
  for (const [name, copy] of target) {
    if (!source.has(name)) found.push(`${name}: only in the target (${copy.count} events)`)
  }
  return found
}

/** Where one stream stands during the copy. */
interface StreamCopy {
  /** the target's events before this run */
  readonly before: StreamSummary | undefined
  /** the source's events seen so far */
  readonly source: Digest
  /** events in the target now */
  inTarget: number
}

const toAppend = (event: RecordedEvent): EventToAppend => ({
  id: event.id,
  type: event.type,
  data: event.data
})

export const migrate = (
  source: EventStoreService,
  target: EventStoreService,
  options: MigrationOptions = {}
): Effect.Effect<MigrationReport, EventStoreError | MigrationError> =>
  Effect.gen(function* () {
    const report = options.onProgress ?? (() => Effect.void)
    const total = [...(yield* summarize(source)).values()].reduce((sum, s) => sum + s.count, 0)
    const before = yield* summarize(target)
    const streams = new Map<string, StreamCopy>()
    let done = 0
    let copied = 0
    yield* report({ total, done, copied })

    // One stream's events of one batch, in order: skip what the target has, append the rest.
    const copyStream = Effect.fnUntraced(function* (
      streamName: string,
      events: ReadonlyArray<RecordedEvent>
    ) {
      const copy = streams.get(streamName) ?? {
        before: before.get(streamName),
        source: newDigest(),
        inTarget: before.get(streamName)?.count ?? 0
      }
      streams.set(streamName, copy)
      const missing: Array<RecordedEvent> = []
      for (const event of events) {
        if (event.revision !== copy.source.count) return yield* outOfOrder(event, copy.source.count)
        addId(copy.source, event.id)
        if (event.revision >= (copy.before?.count ?? 0)) missing.push(event)
        else if (
          copy.source.count === copy.before?.count &&
          !sameSummary(summaryOf(copy.source), copy.before)
        ) {
          return yield* new MigrationError({
            reason: "Diverged",
            message: `${streamName}: the target's first ${copy.before.count} events are not the source's`
          })
        }
      }
      for (let start = 0; start < missing.length; start += MAX_EVENTS_PER_APPEND) {
        const slice = missing.slice(start, start + MAX_EVENTS_PER_APPEND)
        const expected =
          copy.inTarget === 0
            ? ExpectedRevision.NoStream()
            : ExpectedRevision.Exact({ revision: copy.inTarget - 1 })
        yield* target.append(streamName, slice.map(toAppend), expected).pipe(
          Effect.catchTag("WrongExpectedRevision", (conflict: WrongExpectedRevision) =>
            Effect.fail(
              new MigrationError({
                reason: "Conflict",
                message: `${conflict.message}: something else writes to the target; stop it and run again`
              })
            )
          )
        )
        copy.inTarget += slice.length
        copied += slice.length
      }
    })

    yield* source.readAll({ from: START }).pipe(
      Stream.rechunk(BATCH_SIZE),
      Stream.runForEachChunk((chunk) => {
        const byStream = new Map<string, Array<RecordedEvent>>()
        for (const event of Chunk.toReadonlyArray(chunk)) {
          const events = byStream.get(event.streamName)
          if (events === undefined) byStream.set(event.streamName, [event])
          else events.push(event)
        }
        return Effect.forEach(byStream, ([name, events]) => copyStream(name, events), {
          concurrency: STREAMS_IN_PARALLEL,
          discard: true
        }).pipe(
          Effect.andThen(() => {
            done += Chunk.size(chunk)
            return report({ total, done, copied })
          })
        )
      })
    )

    const [inSource, inTarget] = yield* Effect.all([summarize(source), summarize(target)], {
      concurrency: 2
    })
    const found = differences(inSource, inTarget)
    if (found.length > 0) {
      return yield* new MigrationError({
        reason: "Mismatch",
        message: [
          `the target does not match the source in ${found.length} stream(s):`,
          ...found.slice(0, 20).map((line) => `  ${line}`),
          ...(found.length > 20 ? [`  ... and ${found.length - 20} more`] : [])
        ].join("\n")
      })
    }
    const events = [...inSource.values()].reduce((sum, s) => sum + s.count, 0)
    return { streams: inSource.size, events, copied, skipped: events - copied }
  })
