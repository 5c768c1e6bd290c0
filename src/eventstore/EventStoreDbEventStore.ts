/**
 * The production event store: EventStoreDB / KurrentDB through `@eventstore/db-client` (gRPC).
 * Streams keep the gateway's names (`sms-<id>`, `phone-<digits>`), so the server's `$ce-sms` and
 * `$ce-phone` category projections work; event ids are the callers' deterministic UUIDs, so the
 * server itself recognises a retried append; data is stored as JSON.
 *
 * Positions. ESDB orders `$all` by a log position `{commit, prepare}` (bigints, byte offsets in the
 * transaction log). Every append through gRPC writes its events as self-committed records, so an
 * event's position is `{commit: p, prepare: p}` with `p` its own record's offset, in `$all` and in
 * stream reads alike, and differs for every event, those of one multi-event append included. The port's position is that number: it is > 0,
 * increases in `$all` order, and `{commit: p, prepare: p}` is exactly where to resume. It is a
 * byte offset, so it stays below 2^53 until the log holds 8 PiB: no single store gets there, and
 * `toPosition` refuses (InvalidData) any position that is not safe, or not of that shape (events of
 * a legacy explicit transaction, never written by this gateway), rather than hand out a checkpoint
 * that could skip events.
 *
 * Its size (over 400 lines) is one adapter of the port: append, read and subscribe over one client and
 * its position mapping.
 */
import {
  type AllStreamResolvedEvent,
  BACKWARDS,
  binaryEvent,
  DeadlineExceededError,
  END,
  EventStoreDBClient,
  type EventData,
  InvalidArgumentError,
  jsonEvent,
  type JSONType,
  MaxAppendSizeExceededError,
  NO_STREAM,
  NotLeaderError,
  type Position,
  type ReadPosition,
  START as ESDB_START,
  StreamNotFoundError,
  streamNameFilter,
  TimeoutError,
  UnavailableError,
  type ResolvedEvent,
  WrongExpectedVersionError
} from "@eventstore/db-client"
import { Chunk, Effect, Either, Layer, Option, Schedule, Stream } from "effect"
import {
  type AppendRequest,
  type AppendResult,
  describeExpected,
  EventStore,
  EventStoreError,
  type EventStoreService,
  type EventToAppend,
  ExpectedRevision,
  findPriorAppend,
  type RecordedEvent,
  START,
  type SubscribeOptions,
  WrongExpectedRevision,
  failureFrom,
  invalidData
} from "./EventStore.js"
import { ChunkPace, Puller } from "./Gather.js"

/** The gateway's stream categories: the only streams this store reads, subscribes to and writes. */
export const STREAM_PREFIXES: ReadonlyArray<string> = ["sms-", "phone-"]
/** the most events handed to a subscriber as one chunk */
const BATCH_LIMIT = 1000
// Each lost race means another append won, so this only bounds pathological contention.
const MAX_ATTEMPTS = 100
// The server compares ids as UUIDs and hands them back in this form; the port compares strings.
const CANONICAL_UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/**
 * Calls that failed because the server could not be reached (restart, leader election, network)
 * are tried again on this schedule, then fail with `Unavailable`: about a minute of outage.
 * Appends are safe to repeat: their ids are deterministic, so a write that did land is recognised.
 */
export const reconnectSchedule = Schedule.exponential("100 millis", 2).pipe(
  Schedule.union(Schedule.spaced("5 seconds")),
  Schedule.jittered,
  Schedule.upTo("1 minute")
)

export interface Options {
  /** overrides `reconnectSchedule` (tests) */
  readonly reconnect?: Schedule.Schedule<unknown, unknown>
}

const reasonOf = (cause: unknown): EventStoreError["reason"] => {
  if (cause instanceof UnavailableError || cause instanceof NotLeaderError) return "Unavailable"
  if (cause instanceof TimeoutError || cause instanceof DeadlineExceededError) return "Timeout"
  if (cause instanceof MaxAppendSizeExceededError || cause instanceof InvalidArgumentError) {
    return "InvalidData"
  }
  return "Unknown"
}

const failure = failureFrom(reasonOf)

const isRetryable = (error: { readonly _tag: string }): boolean =>
  error instanceof EventStoreError && (error.reason === "Unavailable" || error.reason === "Timeout")

export const isGatewayStream = (streamName: string): boolean =>
  STREAM_PREFIXES.some((prefix) => streamName.startsWith(prefix) && streamName.length > prefix.length)

/** The port's position of an event at `$all` position `position` (see the module comment). */
export const toPosition = (position: Position): Either.Either<number, string> =>
  position.commit !== position.prepare
    ? Either.left(`commit ${position.commit} != prepare ${position.prepare} (explicit transaction)`)
    : position.commit <= 0n || position.commit > BigInt(Number.MAX_SAFE_INTEGER)
      ? Either.left(`position ${position.commit} is not a safe integer > 0`)
      : Either.right(Number(position.commit))

/** Where to resume `$all` from the port's position `from` (exclusive for subscriptions). */
export const fromPosition = (from: number): ReadPosition => {
  const start = Math.floor(from)
  return start <= START ? ESDB_START : { commit: BigInt(start), prepare: BigInt(start) }
}

const toRecorded = (
  resolved: ResolvedEvent | AllStreamResolvedEvent
): Effect.Effect<RecordedEvent, EventStoreError> => {
  const event = resolved.event
  if (event === undefined) return Effect.fail(invalidData("a read returned a link without its event"))
  const where = `${event.streamId}@${event.revision}`
  // Stream reads carry positions from server 22.6 on, and only for self-committed events.
  if (event.position === undefined) {
    return Effect.fail(
      invalidData(`${where}: no position (a server before 22.6, or an explicit transaction)`)
    )
  }
  const position = toPosition(event.position)
  if (Either.isLeft(position)) return Effect.fail(invalidData(`${where}: ${position.left}`))
  if (event.revision > BigInt(Number.MAX_SAFE_INTEGER)) return Effect.fail(invalidData(`${where}: revision`))
  // `undefined` data is written as an empty binary payload: JSON has no value for it.
  const data = event.isJson ? event.data : event.data.length === 0 ? undefined : null
  if (data === null) return Effect.fail(invalidData(`${where}: data is not JSON`))
  return Effect.succeed({
    id: event.id,
    type: event.type,
    data,
    streamName: event.streamId,
    revision: Number(event.revision),
    position: position.right,
    recordedAt: event.created
  })
}

const toEventData = (streamName: string, event: EventToAppend): Effect.Effect<EventData, EventStoreError> => {
  if (!CANONICAL_UUID.test(event.id)) {
    return Effect.fail(
      invalidData(`${streamName}: event id ${JSON.stringify(event.id)} is not a lowercase UUID`)
    )
  }
  if (event.data === undefined) {
    return Effect.succeed(binaryEvent({ id: event.id, type: event.type, data: new Uint8Array(0) }))
  }
  return Effect.try({
    try: () => JSON.stringify(event.data),
    catch: (cause) => invalidData(`${streamName}: event data is not JSON-serialisable`, cause)
  }).pipe(
    Effect.filterOrFail(
      (json): json is string => typeof json === "string",
      () => invalidData(`${streamName}: event data is not JSON-serialisable`)
    ),
    // the client JSON.stringify's the data itself: any JSON value works, not only JSONType's
    Effect.as(jsonEvent({ id: event.id, type: event.type, data: event.data as JSONType }))
  )
}

// Array.fromAsync is Node 22
const collect = async <A>(items: AsyncIterable<A>): Promise<Array<A>> => {
  const all: Array<A> = []
  for await (const item of items) all.push(item)
  return all
}

/** The commit position of the last record of `$all` now (any stream), or none in an empty store. */
const headOf = async (client: EventStoreDBClient): Promise<bigint | undefined> => {
  for await (const entry of client.readAll({ direction: BACKWARDS, fromPosition: END, maxCount: 1 })) {
    if (entry.event !== undefined) return entry.event.position.commit
  }
  return undefined
}

type Written = { readonly _tag: "Written" } | { readonly _tag: "Conflict" }
const WRITTEN: Written = { _tag: "Written" }
const CONFLICT: Written = { _tag: "Conflict" }

/** A readable of the client (a read or a subscription), pulled in batches of what is buffered. */
const batches = <A>(
  operation: string,
  readable: { readonly readableLength: number; [Symbol.asyncIterator](): AsyncIterator<A> },
  gatherMs?: number
): Stream.Stream<A, EventStoreError> => {
  const puller = new Puller(readable[Symbol.asyncIterator]())
  const pace = new ChunkPace(gatherMs)
  const next = Effect.tryPromise({
    try: async () => {
      const batch: Array<A> = []
      const deadline = pace.deadline()
      for (;;) {
        let item: IteratorResult<A> | undefined
        if (batch.length > 0 && readable.readableLength === 0) {
          // nothing buffered: wait for more until the gathering window closes
          const left = deadline - Date.now()
          item = left > 0 ? await puller.within(left) : undefined
          if (item === undefined) break
        } else {
          item = await puller.next()
        }
        if (item.done) break
        batch.push(item.value)
        if (batch.length >= BATCH_LIMIT) break
      }
      pace.handedOver()
      return batch
    },
    catch: (cause) => Option.some(failure(operation)(cause))
  }).pipe(
    Effect.flatMap((batch) =>
      batch.length === 0 ? Effect.fail(Option.none()) : Effect.succeed(Chunk.unsafeFromArray(batch))
    )
  )
  return Stream.repeatEffectChunkOption(next)
}

export const make = (client: EventStoreDBClient, options: Options = {}): EventStoreService => {
  const reconnect = options.reconnect ?? reconnectSchedule
  const retrying = <A, E extends { readonly _tag: string }>(self: Effect.Effect<A, E>) =>
    Effect.retry(self, { schedule: reconnect, while: isRetryable })

  const attempt = <A>(operation: string, run: () => Promise<A>): Effect.Effect<A, EventStoreError> =>
    Effect.tryPromise({ try: run, catch: failure(operation) })

  /** Events of one stream from revision `from` on, at most `maxCount`; empty when there is no stream. */
  const readFrom = (streamName: string, from: number, maxCount?: number) =>
    attempt(`read ${streamName}`, () =>
      collect(
        client.readStream(streamName, {
          fromRevision: BigInt(from),
          ...(maxCount === undefined ? {} : { maxCount })
        })
      ).catch((cause: unknown) =>
        cause instanceof StreamNotFoundError ? ([] as Array<ResolvedEvent>) : Promise.reject(cause)
      )
    ).pipe(Effect.flatMap((events) => Effect.forEach(events, toRecorded)))

  const write = (streamName: string, data: ReadonlyArray<EventData>, revision: number) =>
    attempt(`append ${streamName}`, () =>
      client
        .appendToStream(streamName, [...data], {
          expectedRevision: revision < 0 ? NO_STREAM : BigInt(revision)
        })
        .then(
          () => WRITTEN,
          (cause: unknown) => (cause instanceof WrongExpectedVersionError ? CONFLICT : Promise.reject(cause))
        )
    )

  /**
   * The result of an append the server accepted, read back: the append's answer carries the
   * transaction's position (or none, when the server recognised a retry), not the last event's.
   */
  const resultOf = Effect.fnUntraced(function* (
    streamName: string,
    events: ReadonlyArray<EventToAppend>,
    firstRevision: number
  ) {
    const stored = yield* readFrom(streamName, firstRevision, events.length)
    const last = stored[stored.length - 1]
    if (
      last === undefined ||
      stored.length !== events.length ||
      stored.some((e, i) => e.id !== events[i]?.id)
    ) {
      return yield* new EventStoreError({
        reason: "Unknown",
        message: `${streamName}: the accepted append is not at revision ${firstRevision}`
      })
    }
    // written by this call as far as the client can tell: the server answers a repeat of an append
    // it already holds (same ids, same expected revision) as it answers a write
    const result: AppendResult = { revision: last.revision, position: last.position, written: true }
    return result
  })

  /** NoStream and Exact: the server checks; a conflict may still be a retry of an older append. */
  const appendChecked = Effect.fnUntraced(function* (
    streamName: string,
    events: ReadonlyArray<EventToAppend>,
    data: ReadonlyArray<EventData>,
    expected: ExpectedRevision
  ) {
    const revision = expected._tag === "Exact" ? expected.revision : -1
    const written = yield* write(streamName, data, revision)
    if (written._tag === "Written") return yield* resultOf(streamName, events, revision + 1)
    const existing = yield* readFrom(streamName, 0)
    const prior = findPriorAppend(existing, events, expected)
    if (prior !== undefined) return prior
    return yield* new WrongExpectedRevision({
      streamName,
      expected: describeExpected(expected),
      actual: existing.length - 1
    })
  })

  // The server's own dedupe for "any" is best-effort (a bounded cache of recent ids), so Any
  // appends read the stream and write with the revision they saw, like the other expectations.
  const appendAny = Effect.fnUntraced(function* (
    streamName: string,
    events: ReadonlyArray<EventToAppend>,
    data: ReadonlyArray<EventData>
  ) {
    for (let n = 0; n < MAX_ATTEMPTS; n++) {
      const existing = yield* readFrom(streamName, 0)
      const prior = findPriorAppend(existing, events, ExpectedRevision.Any())
      if (prior !== undefined) return prior
      const written = yield* write(streamName, data, existing.length - 1)
      if (written._tag === "Written") return yield* resultOf(streamName, events, existing.length)
    }
    return yield* new EventStoreError({
      reason: "Unknown",
      message: `${streamName}: gave up after ${MAX_ATTEMPTS} conflicting appends`
    })
  })

  const checkName = (streamName: string): Effect.Effect<void, EventStoreError> =>
    isGatewayStream(streamName)
      ? Effect.void
      : Effect.fail(
          invalidData(
            `invalid stream name ${JSON.stringify(streamName)}: not ${STREAM_PREFIXES.join(" or ")}<id>`
          )
        )

  const append = Effect.fnUntraced(function* (
    streamName: string,
    events: ReadonlyArray<EventToAppend>,
    expected: ExpectedRevision
  ) {
    yield* checkName(streamName)
    if (events.length === 0) return yield* invalidData(`${streamName}: nothing to append`)
    const data = yield* Effect.forEach(events, (event) => toEventData(streamName, event))
    return yield* retrying(
      expected._tag === "Any"
        ? appendAny(streamName, events, data)
        : appendChecked(streamName, events, data, expected)
    )
  })

  // Not the default store: a fiber per request is fine here; gRPC multiplexes the calls on one connection.
  const appendMany = (requests: ReadonlyArray<AppendRequest>) =>
    Effect.forEach(
      requests,
      ({ streamName, events, expected }) => Effect.either(append(streamName, events, expected)),
      { concurrency: "unbounded" }
    )

  const read = Effect.fnUntraced(function* (streamName: string) {
    yield* checkName(streamName)
    const events: ReadonlyArray<RecordedEvent> = yield* retrying(readFrom(streamName, 0))
    return events
  })

  /** The gateway's events of a batch of `$all` entries, strictly after `from`. */
  const ours = (from: number) => (entries: Chunk.Chunk<AllStreamResolvedEvent>) =>
    Effect.forEach(
      Chunk.filter(entries, (entry) => entry.event !== undefined && isGatewayStream(entry.event.streamId)),
      toRecorded
    ).pipe(Effect.map((events) => Chunk.unsafeFromArray(events.filter((event) => event.position > from))))

  const subscribeFrom = (from: number, gatherMs?: number): Stream.Stream<RecordedEvent, EventStoreError> =>
    Stream.unwrapScoped(
      Effect.map(
        Effect.acquireRelease(
          Effect.sync(() =>
            client.subscribeToAll({
              fromPosition: fromPosition(from),
              filter: streamNameFilter({ prefixes: [...STREAM_PREFIXES] })
            })
          ),
          (subscription) =>
            Effect.promise(() => subscription.unsubscribe().catch(() => undefined)).pipe(
              Effect.timeout("2 seconds"),
              Effect.ignore
            )
        ),
        (subscription) =>
          batches("subscribeAll", subscription, gatherMs).pipe(
            Stream.mapChunksEffect(ours(from)),
            Stream.concat(
              Stream.fail(
                new EventStoreError({ reason: "Unavailable", message: "subscribeAll: the server ended it" })
              )
            )
          )
      )
    )

  // A lost connection resumes after the last event delivered, on the reconnect schedule.
  const subscribeAll = (options?: SubscribeOptions): Stream.Stream<RecordedEvent, EventStoreError> =>
    Stream.suspend(() => {
      let last = options?.from ?? START
      return Stream.suspend(() => subscribeFrom(last, options?.gatherMs)).pipe(
        Stream.mapChunks((events) => {
          const newest = Chunk.last(events)
          if (newest._tag === "Some") last = newest.value.position
          return events
        }),
        Stream.retry(Schedule.whileInput(reconnect, isRetryable))
      )
    })

  // Client-side filtering: a read of `$all` has no server-side filter in this client, and a
  // filtered subscription could not tell "no more gateway events" from "none yet".
  const readAll = (options?: SubscribeOptions): Stream.Stream<RecordedEvent, EventStoreError> => {
    const from = options?.from ?? START
    return Stream.unwrapScoped(
      Effect.gen(function* () {
        const last = yield* retrying(attempt("readAll", () => headOf(client)))
        if (last === undefined || last <= BigInt(Math.max(0, Math.floor(from)))) return Stream.empty
        const reading = yield* Effect.acquireRelease(
          Effect.sync(() => client.readAll({ fromPosition: fromPosition(from) })),
          (reading) => Effect.promise(() => reading.cancel().catch(() => undefined)).pipe(Effect.ignore)
        )
        return batches("readAll", reading).pipe(
          Stream.takeWhile((entry) => entry.event === undefined || entry.event.position.commit <= last),
          Stream.mapChunksEffect(ours(from))
        )
      })
    )
  }

  // the full read of each stream: messages' streams hold a handful of events, and this is not the
  // embedded default's hot path
  const lastRevisions = (streamNames: ReadonlyArray<string>) =>
    Effect.forEach(streamNames, (streamName) => Effect.map(read(streamName), (events) => events.length - 1), {
      concurrency: "unbounded"
    })

  // The gateway's events of `$all` after each position, read forward: commit positions are byte
  // offsets, so counting is the only measure. A checkpoint trails the head by a few events; `cap`
  // bounds each read.
  const eventsAfter = (position: number, cap: number) =>
    attempt("readAll", async () => {
      let count = 0
      for await (const entry of client.readAll({ fromPosition: fromPosition(position), maxCount: cap + 1 })) {
        const event = entry.event
        if (event === undefined || !isGatewayStream(event.streamId)) continue
        if (Number(event.position.commit) > position) count++
        if (count >= cap) break
      }
      return count
    })
  const appendsAfter = (positions: ReadonlyArray<number>, cap: number) =>
    Effect.forEach(positions, (position) => eventsAfter(position, cap))

  return EventStore.of({
    writtenIsExact: false,
    append,
    appendMany,
    read,
    lastRevisions,
    subscribeAll,
    readAll,
    appendsAfter
  })
}

/** A client for `url`, disposed with the scope, once the server answers (on the reconnect schedule). */
export const connect = (url: string, options: Options = {}) =>
  Effect.gen(function* () {
    const client = yield* Effect.acquireRelease(
      Effect.try({
        try: () => EventStoreDBClient.connectionString(url),
        catch: (cause) => invalidData(`ESDB_URL ${JSON.stringify(url)} is not a connection string`, cause)
      }),
      (client) => Effect.promise(() => client.dispose().catch(() => undefined))
    )
    yield* Effect.tryPromise({ try: () => headOf(client), catch: failure(`connect ${url}`) }).pipe(
      Effect.tapError((error) =>
        Effect.logWarning(`EventStoreDB at ${url} does not answer: ${error.message}`)
      ),
      Effect.retry({ schedule: options.reconnect ?? reconnectSchedule, while: isRetryable })
    )
    return client
  })

export const layerFromUrl = (url: string, options: Options = {}): Layer.Layer<EventStore, EventStoreError> =>
  Layer.scoped(
    EventStore,
    Effect.map(connect(url, options), (client) => make(client, options))
  )
