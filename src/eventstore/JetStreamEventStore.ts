/**
 * The embedded event store: the JetStream stream `SMS_EVENTS`, one subject per event stream
 * (`sms.events.<streamName>`), one message per append (nats-server 2.9 has no atomic batch).
 *
 * Storage format (a contract: version it with care). A message body is compact JSON
 *   { "r": revision of the message's first event,
 *     "p": stream sequence of the previous message on the same subject (0 for the first),
 *     "t": recordedAt, epoch milliseconds,
 *     "e": [{ "i": event id, "y": event type, "d": data }, ...] }      (1 to 1000 events)
 * with `Nats-Msg-Id` = sha256(streamName, event ids) for JetStream's duplicate detection.
 * "p" is exactly the `Nats-Expected-Last-Subject-Sequence` the append was accepted with, so a
 * stream is read backwards from its last message by sequence, without subject scans.
 *
 * Positions: event `i` (0-based) of the message at stream sequence `s` is at `s * 1024 + i`:
 * distinct, increasing in store order, > 0, and `floor(position / 1024)` is where to resume.
 *
 * Its size (over 400 lines) is one adapter of the port: append, read and subscribe share the head cache
 * and the stored message format, which nothing else may touch.
 */
import { hash as oneShotHash } from "node:crypto"
import {
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  RetentionPolicy,
  StorageType,
  type StoredMsg,
  type StreamConfig
} from "@nats-io/jetstream"
import {
  ClosedConnectionError,
  ConnectionError,
  DrainingConnectionError,
  InvalidArgumentError,
  nanos,
  NoRespondersError,
  RequestError,
  TimeoutError
} from "@nats-io/transport-node"
import { Chunk, Clock, Effect, Either, Layer, Option, Stream } from "effect"
import { isWrongLastSequence, type JetStreamPublish } from "../nats/JetStreamPublish.js"
import { Nats } from "../nats/Nats.js"
import { ChunkPace, Puller } from "./Gather.js"
import {
  type AppendOutcome,
  type AppendRequest,
  type AppendResult,
  describeExpected,
  EventStore,
  EventStoreError,
  type EventToAppend,
  type ExpectedRevision,
  findPriorAppend,
  type RecordedEvent,
  START,
  type SubscribeOptions,
  WrongExpectedRevision,
  failureFrom,
  invalidData
} from "./EventStore.js"

export const EVENTS_STREAM = "SMS_EVENTS"
export const SUBJECT_PREFIX = "sms.events."
/** the most messages handed to a subscriber as one chunk */
const BATCH_LIMIT = 1000
export const MAX_EVENTS_PER_APPEND = 1000
const POSITIONS_PER_MESSAGE = 1024
const HEAD_CACHE_SIZE = 50_000
// Each lost race means another append won, so this only bounds pathological contention.
const MAX_ATTEMPTS = 100
// "stream name already in use": created by another process, possibly with other settings.
const STREAM_NAME_IN_USE = 10058

export const positionOf = (sequence: number, index: number): number =>
  sequence * POSITIONS_PER_MESSAGE + index
const sequenceOf = (position: number): number => Math.floor(position / POSITIONS_PER_MESSAGE)

const streamConfig: Partial<StreamConfig> & { readonly name: string } = {
  name: EVENTS_STREAM,
  subjects: [`${SUBJECT_PREFIX}>`],
  storage: StorageType.File,
  retention: RetentionPolicy.Limits,
  discard: DiscardPolicy.Old,
  allow_direct: true,
  duplicate_window: nanos(120_000),
  max_msgs: -1,
  max_bytes: -1,
  max_age: 0,
  max_msgs_per_subject: -1,
  num_replicas: 1
}

interface StoredEvent {
  readonly i: string
  readonly y: string
  readonly d?: unknown
}

interface Body {
  readonly r: number
  readonly p: number
  readonly t: number
  readonly e: ReadonlyArray<StoredEvent>
}

/** The last message of a subject: its last event's revision and its stream sequence. */
interface Head {
  readonly revision: number
  readonly seq: number
}

const NO_STREAM: Head = { revision: -1, seq: 0 }

type Published =
  | { readonly _tag: "Stored"; readonly seq: number; readonly duplicate: boolean }
  | { readonly _tag: "Conflict" }

const CONFLICT: Published = { _tag: "Conflict" }

/** A hint only: other processes append too, and the server's expectation check has the last word. */
class HeadCache {
  private readonly heads = new Map<string, Head>()

  get(streamName: string): Head | undefined {
    return this.heads.get(streamName)
  }

  set(streamName: string, head: Head): void {
    const current = this.heads.get(streamName)
    if (current !== undefined && current.seq >= head.seq) return
    this.heads.delete(streamName)
    this.heads.set(streamName, head)
    if (this.heads.size > HEAD_CACHE_SIZE) {
      const oldest = this.heads.keys().next()
      if (!oldest.done) this.heads.delete(oldest.value)
    }
  }
}

const reasonOf = (cause: unknown): EventStoreError["reason"] => {
  let error: unknown = cause
  for (let depth = 0; error instanceof Error && depth < 5; depth++) {
    if (error instanceof TimeoutError) return "Timeout"
    // e.g. a payload over the server's max_payload
    if (error instanceof InvalidArgumentError) return "InvalidData"
    if (
      error instanceof NoRespondersError ||
      error instanceof ClosedConnectionError ||
      error instanceof DrainingConnectionError ||
      error instanceof ConnectionError ||
      (error instanceof RequestError && error.isNoResponders()) ||
      (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound)
    ) {
      return "Unavailable"
    }
    error = error.cause
  }
  return "Unknown"
}

const failure = failureFrom(reasonOf)

const attempt = <A>(operation: string, run: () => Promise<A>): Effect.Effect<A, EventStoreError> =>
  Effect.tryPromise({ try: run, catch: failure(operation) })

// A subject token: no separators, wildcards or whitespace.
const VALID_STREAM_NAME = /^[^.*>\s]+$/

// Either, not Effect: the batch path checks its requests in a plain loop.
const subjectOf = (streamName: string): Either.Either<string, EventStoreError> =>
  VALID_STREAM_NAME.test(streamName)
    ? Either.right(`${SUBJECT_PREFIX}${streamName}`)
    : Either.left(
        invalidData(`invalid stream name ${JSON.stringify(streamName)}: no '.', '*', '>' or spaces`)
      )

const isStoredEvent = (u: unknown): u is StoredEvent =>
  typeof u === "object" &&
  u !== null &&
  "i" in u &&
  typeof u.i === "string" &&
  "y" in u &&
  typeof u.y === "string"

const isBody = (u: unknown): u is Body =>
  typeof u === "object" &&
  u !== null &&
  "r" in u &&
  Number.isInteger(u.r) &&
  "p" in u &&
  Number.isInteger(u.p) &&
  "t" in u &&
  typeof u.t === "number" &&
  "e" in u &&
  Array.isArray(u.e) &&
  u.e.length > 0 &&
  u.e.every(isStoredEvent)

const textDecoder = new TextDecoder()

/** A stored message's body, or why it is not one (plain: subscriptions decode every message). */
const decodeBody = (subject: string, seq: number, data: Uint8Array): Body | EventStoreError => {
  let json: unknown
  try {
    json = JSON.parse(textDecoder.decode(data))
  } catch (cause) {
    return invalidData(`${subject} #${seq}: not JSON`, cause)
  }
  return isBody(json) ? json : invalidData(`${subject} #${seq}: not an event message`)
}

const decode = (subject: string, seq: number, data: Uint8Array): Effect.Effect<Body, EventStoreError> => {
  const body = decodeBody(subject, seq, data)
  return body instanceof EventStoreError ? Effect.fail(body) : Effect.succeed(body)
}

const toRecorded = (streamName: string, seq: number, body: Body): ReadonlyArray<RecordedEvent> => {
  const recordedAt = new Date(body.t)
  return body.e.map((event, i) => ({
    id: event.i,
    type: event.y,
    data: event.d,
    streamName,
    revision: body.r + i,
    position: positionOf(seq, i),
    recordedAt
  }))
}

const headOf = (seq: number, body: Body): Head => ({ revision: body.r + body.e.length - 1, seq })

const satisfies = (head: Head, expected: ExpectedRevision): boolean =>
  expected._tag === "Any" || head.revision === (expected._tag === "NoStream" ? -1 : expected.revision)

const msgIdOf = (streamName: string, events: ReadonlyArray<EventToAppend>): string => {
  // the stream and the event ids, one per line: one-shot, half the cost of a Hash object per append
  let text = streamName
  for (const event of events) text += `\n${event.id}`
  return oneShotHash("sha256", text, "base64url")
}

/** An append checked and encoded, all but its previous head. */
interface Prepared {
  readonly streamName: string
  readonly subject: string
  readonly events: ReadonlyArray<EventToAppend>
  readonly msgID: string
  readonly t: number
  readonly e: ReadonlyArray<StoredEvent>
}

const prepare = (
  streamName: string,
  events: ReadonlyArray<EventToAppend>,
  t: number
): Either.Either<Prepared, EventStoreError> =>
  Either.flatMap(subjectOf(streamName), (subject) =>
    events.length === 0 || events.length > MAX_EVENTS_PER_APPEND
      ? Either.left(invalidData(`${streamName}: an append holds 1 to ${MAX_EVENTS_PER_APPEND} events`))
      : Either.right({
          streamName,
          subject,
          events,
          msgID: msgIdOf(streamName, events),
          t,
          e: events.map((event): StoredEvent => ({ i: event.id, y: event.type, d: event.data }))
        })
  )

const payloadOf = (prepared: Prepared, previous: Head): Either.Either<string, EventStoreError> =>
  Either.try({
    try: () => JSON.stringify({ r: previous.revision + 1, p: previous.seq, t: prepared.t, e: prepared.e }),
    catch: (cause) => invalidData(`${prepared.streamName}: event data is not JSON-serialisable`, cause)
  })

/** What a publish's answer leaves to do: nothing, or try again from a head (undefined: read the stream). */
type Step =
  | { readonly _tag: "Done"; readonly result: AppendResult }
  | { readonly _tag: "Again"; readonly head: Head | undefined }

const sameIds = (stored: ReadonlyArray<StoredEvent>, events: ReadonlyArray<EventToAppend>): boolean =>
  stored.length === events.length && stored.every((event, i) => event.i === events[i]?.id)

/** Creates the stream, or accepts the one another process created (it must allow direct gets). */
const ensureStream = (jsm: JetStreamManager, replicas: number): Effect.Effect<void, EventStoreError> =>
  attempt(`create stream ${EVENTS_STREAM}`, () =>
    jsm.streams.add({ ...streamConfig, num_replicas: replicas }).then(
      (info) => info,
      (cause: unknown) =>
        cause instanceof JetStreamApiError && cause.code === STREAM_NAME_IN_USE
          ? jsm.streams.info(EVENTS_STREAM)
          : Promise.reject(cause)
    )
  ).pipe(
    Effect.filterOrFail(
      (info) => info.config.allow_direct === true,
      () => invalidData(`stream ${EVENTS_STREAM} exists without allow_direct`)
    ),
    Effect.asVoid
  )

const make = (js: JetStreamClient, jsm: JetStreamManager, publishAck: JetStreamPublish) => {
  const heads = new HeadCache()

  const getMessage = (
    query: { readonly seq: number } | { readonly last_by_subj: string }
  ): Effect.Effect<StoredMsg | null, EventStoreError> =>
    attempt("direct get", () => jsm.direct.getMessage(EVENTS_STREAM, { ...query }))

  const fetchHead = Effect.fnUntraced(function* (streamName: string, subject: string) {
    const last = yield* getMessage({ last_by_subj: subject })
    if (last === null) return NO_STREAM
    const head = headOf(last.seq, yield* decode(subject, last.seq, last.data))
    heads.set(streamName, head)
    return head
  })

  // Backwards along "p": one direct get by sequence per message, cheaper than an ordered consumer
  // (consumer create, pull, delete) for streams of a few messages, and no subject scan.
  const readStream = Effect.fnUntraced(function* (streamName: string, subject: string) {
    const last = yield* getMessage({ last_by_subj: subject })
    if (last === null) return { head: NO_STREAM, events: [] }
    const messages: Array<{ readonly seq: number; readonly body: Body }> = []
    let message: StoredMsg = last
    for (;;) {
      const body = yield* decode(subject, message.seq, message.data)
      messages.push({ seq: message.seq, body })
      if (body.p === 0) break
      if (body.p >= message.seq) {
        return yield* invalidData(`${subject} #${message.seq}: bad previous sequence`)
      }
      const previous = yield* getMessage({ seq: body.p })
      if (previous === null || previous.subject !== subject) {
        return yield* invalidData(`${subject}: message #${body.p} is missing`)
      }
      message = previous
    }
    messages.reverse()
    const events: Array<RecordedEvent> = []
    for (const { seq, body } of messages) {
      if (body.r !== events.length) return yield* invalidData(`${subject} #${seq}: revision gap`)
      events.push(...toRecorded(streamName, seq, body))
    }
    const head: Head = { revision: events.length - 1, seq: last.seq }
    heads.set(streamName, head)
    return { head, events }
  })

  // A plain promise, for the batch path; async, so it rejects and never throws.
  const publishNow = async (subject: string, payload: string, lastSeq: number, msgID: string) => {
    try {
      const ack = await publishAck(subject, payload, { msgID, expect: { lastSubjectSequence: lastSeq } })
      return { _tag: "Stored", seq: ack.seq, duplicate: ack.duplicate } satisfies Published
    } catch (cause) {
      if (isWrongLastSequence(cause)) return CONFLICT
      throw cause
    }
  }

  const publish = (subject: string, payload: string, lastSeq: number, msgID: string) =>
    attempt("publish", () => publishNow(subject, payload, lastSeq, msgID))

  /** The head to append after when it is known without a round trip. */
  const knownHead = (streamName: string, expected: ExpectedRevision): Head | undefined => {
    // NoStream needs no lookup: the server checks "subject empty" itself.
    if (expected._tag === "NoStream") return NO_STREAM
    const cached = heads.get(streamName)
    return cached !== undefined && satisfies(cached, expected) ? cached : undefined
  }

  /** A publish stored as new: the append's result, and the stream's new head. */
  const accepted = (prepared: Prepared, previous: Head, seq: number): AppendResult => {
    const revision = previous.revision + prepared.events.length
    heads.set(prepared.streamName, { revision, seq })
    return { revision, position: positionOf(seq, prepared.events.length - 1), written: true }
  }

  /** The stream's own answer once the hint failed: the original result of a retry, or a conflict. */
  const settle = Effect.fnUntraced(function* (
    streamName: string,
    subject: string,
    events: ReadonlyArray<EventToAppend>,
    expected: ExpectedRevision
  ) {
    const { head, events: existing } = yield* readStream(streamName, subject)
    const prior = findPriorAppend(existing, events, expected)
    if (prior !== undefined) return { _tag: "Done" as const, result: prior }
    if (!satisfies(head, expected)) {
      return yield* new WrongExpectedRevision({
        streamName,
        expected: describeExpected(expected),
        actual: head.revision
      })
    }
    return { _tag: "Retry" as const, head }
  })

  /** A `duplicate` PubAck: the same ids were stored within the dedupe window, maybe elsewhere. */
  const original = Effect.fnUntraced(function* (
    subject: string,
    seq: number,
    events: ReadonlyArray<EventToAppend>,
    expected: ExpectedRevision
  ) {
    const message = yield* getMessage({ seq })
    if (message === null || message.subject !== subject) return undefined
    const body = yield* decode(subject, seq, message.data)
    const startsRight =
      expected._tag === "Any" || body.r === (expected._tag === "NoStream" ? 0 : expected.revision + 1)
    return sameIds(body.e, events) && startsRight
      ? { revision: body.r + body.e.length - 1, position: positionOf(seq, body.e.length - 1), written: false }
      : undefined
  })

  /** The meaning of the server's answer to a publish made after `previous`. */
  const answer = Effect.fnUntraced(function* (
    prepared: Prepared,
    expected: ExpectedRevision,
    previous: Head,
    published: Published
  ) {
    const { streamName, subject, events } = prepared
    if (published._tag === "Conflict") {
      // Any only needs the new head; the others must see the stream to tell a retry from a conflict.
      const head = expected._tag === "Any" ? yield* fetchHead(streamName, subject) : undefined
      return { _tag: "Again", head } satisfies Step
    }
    if (published.duplicate) {
      const result = yield* original(subject, published.seq, events, expected)
      if (result !== undefined) return { _tag: "Done", result } satisfies Step
      const settled = yield* settle(streamName, subject, events, expected)
      if (settled._tag === "Done") return { _tag: "Done", result: settled.result } satisfies Step
      return yield* invalidData(`${streamName}: these event ids were already appended elsewhere`)
    }
    return { _tag: "Done", result: accepted(prepared, previous, published.seq) } satisfies Step
  })

  /** Publishes after `from` (undefined: read the stream first) until the server takes it or a check fails. */
  const appendFrom = Effect.fnUntraced(function* (
    prepared: Prepared,
    expected: ExpectedRevision,
    from: Head | undefined,
    attempts: number
  ) {
    let head = from
    for (let n = attempts; n < MAX_ATTEMPTS; n++) {
      let previous: Head
      if (head !== undefined && satisfies(head, expected)) {
        previous = head
      } else {
        const settled = yield* settle(prepared.streamName, prepared.subject, prepared.events, expected)
        if (settled._tag === "Done") return settled.result
        previous = settled.head
      }
      const payload = yield* payloadOf(prepared, previous)
      const published = yield* publish(prepared.subject, payload, previous.seq, prepared.msgID)
      const step = yield* answer(prepared, expected, previous, published)
      if (step._tag === "Done") return step.result
      head = step.head
    }
    return yield* new EventStoreError({
      reason: "Unknown",
      message: `${prepared.streamName}: gave up after ${MAX_ATTEMPTS} conflicting appends`
    })
  })

  const append = Effect.fnUntraced(function* (
    streamName: string,
    events: ReadonlyArray<EventToAppend>,
    expected: ExpectedRevision
  ) {
    const prepared = yield* prepare(streamName, events, yield* Clock.currentTimeMillis)
    const head = knownHead(streamName, expected) ?? (yield* fetchHead(streamName, prepared.subject))
    return yield* appendFrom(prepared, expected, head, 0)
  })

  /**
   * Group commit. The fast path is plain JavaScript in one Effect: every request whose previous head
   * is known without a round trip is published at once, and a plain PubAck settles it. Whatever
   * needs more (a cache miss, a conflict, a duplicate, a transport error) goes on exactly as
   * `append` would from there, those requests only, concurrently.
   */
  const appendMany = (requests: ReadonlyArray<AppendRequest>): Effect.Effect<ReadonlyArray<AppendOutcome>> =>
    Effect.gen(function* () {
      const t = yield* Clock.currentTimeMillis
      // Every slot is written below: at once, or by its request's follow-up.
      const outcomes = new Array<AppendOutcome>(requests.length)
      const followUps: Array<{
        readonly index: number
        readonly effect: Effect.Effect<AppendResult, WrongExpectedRevision | EventStoreError>
      }> = []
      const publishes: Array<{
        readonly index: number
        readonly prepared: Prepared
        readonly expected: ExpectedRevision
        readonly previous: Head
        readonly payload: string
      }> = []
      requests.forEach(({ streamName, events, expected }, index) => {
        const prepared = prepare(streamName, events, t)
        if (Either.isLeft(prepared)) {
          outcomes[index] = Either.left(prepared.left)
          return
        }
        const previous = knownHead(streamName, expected)
        if (previous === undefined) {
          followUps.push({ index, effect: append(streamName, events, expected) })
          return
        }
        const payload = payloadOf(prepared.right, previous)
        if (Either.isLeft(payload)) outcomes[index] = Either.left(payload.left)
        else publishes.push({ index, prepared: prepared.right, expected, previous, payload: payload.right })
      })
      const answers =
        publishes.length === 0
          ? []
          : yield* Effect.promise(() =>
              Promise.allSettled(
                publishes.map((p) =>
                  publishNow(p.prepared.subject, p.payload, p.previous.seq, p.prepared.msgID)
                )
              )
            )
      answers.forEach((settled, k) => {
        const { index, prepared, expected, previous } = publishes[k]
        if (settled.status === "rejected") {
          // The first publish may have landed: its msgID and the retry rule make a second one safe.
          followUps.push({ index, effect: append(prepared.streamName, prepared.events, expected) })
        } else if (settled.value._tag === "Stored" && !settled.value.duplicate) {
          outcomes[index] = Either.right(accepted(prepared, previous, settled.value.seq))
        } else {
          const published = settled.value
          followUps.push({
            index,
            effect: Effect.flatMap(answer(prepared, expected, previous, published), (step) =>
              step._tag === "Done"
                ? Effect.succeed(step.result)
                : appendFrom(prepared, expected, step.head, 1)
            )
          })
        }
      })
      yield* Effect.forEach(
        followUps,
        ({ index, effect }) =>
          Effect.map(Effect.either(effect), (outcome) => {
            outcomes[index] = outcome
          }),
        { concurrency: "unbounded", discard: true }
      )
      return outcomes
    })

  const read = Effect.fnUntraced(function* (streamName: string) {
    const subject = yield* subjectOf(streamName)
    const { events } = yield* readStream(streamName, subject)
    return events
  })

  /** Messages from the one holding `from`, through an ordered consumer; up to `until` if given. */
  const consume = (
    from: number,
    until?: number,
    gatherMs?: number
  ): Stream.Stream<RecordedEvent, EventStoreError> =>
    Stream.unwrapScoped(
      Effect.gen(function* () {
        const consumer = yield* attempt("subscribe", () =>
          js.consumers.get(EVENTS_STREAM, {
            deliver_policy: DeliverPolicy.StartSequence,
            opt_start_seq: Math.max(1, sequenceOf(from))
          })
        )
        const messages = yield* Effect.acquireRelease(
          attempt("subscribe", () => consumer.consume({ max_messages: 1000 })),
          (messages) =>
            Effect.promise(async () => {
              messages.stop()
              await consumer.delete().catch(() => false)
            }).pipe(Effect.timeout("2 seconds"), Effect.ignore)
        )
        // Not Stream.fromAsyncIterable: its finalizer awaits iterator.return(), which hangs while a
        // pull is pending; stopping the messages (above) is what ends the iterator.
        const puller = new Puller(messages[Symbol.asyncIterator]())
        const pace = new ChunkPace(gatherMs)
        // One pull takes every message already buffered (and, with a gathering window, what arrives
        // within it), decoded in a plain loop into one chunk of events: a stream element (or an
        // Effect) per message cost more than the projections' own work. Memory stays bounded by the
        // consumer's max_messages.
        let ended = false
        const nextBatch = Effect.tryPromise({
          try: async () => {
            const events: Array<RecordedEvent> = []
            if (ended) return events
            const deadline = pace.deadline()
            let drained = false
            for (;;) {
              let next: IteratorResult<JsMsg> | undefined
              if (drained) {
                // nothing buffered: wait for more until the window closes
                const left = deadline - Date.now()
                next = left > 0 ? await puller.within(left) : undefined
                if (next === undefined) break
              } else {
                next = await puller.next()
              }
              if (next.done) {
                ended = true
                break
              }
              const message = next.value
              const body = decodeBody(message.subject, message.seq, message.data)
              if (body instanceof EventStoreError) throw body
              const streamName = message.subject.slice(SUBJECT_PREFIX.length)
              for (const event of toRecorded(streamName, message.seq, body)) {
                if (event.position > from) events.push(event)
              }
              if (until !== undefined && (message.seq >= until || message.info.pending === 0)) {
                ended = true
                break
              }
              // `getPending()` stays at 1 with nothing buffered once the consumer queued its next
              // pull (a callback it counts as in flight): without `info.pending === 0` (the server
              // had nothing more) the last batch waited for a message that might never come.
              if (events.length >= BATCH_LIMIT) break
              if (messages.getPending() === 0 || message.info.pending === 0) {
                if (deadline <= Date.now()) break
                drained = true
              } else {
                drained = false
              }
            }
            pace.handedOver()
            return events
          },
          catch: (cause) =>
            Option.some(cause instanceof EventStoreError ? cause : failure("subscribe")(cause))
        }).pipe(
          // the end once the last batch is out; an empty batch (all at or below `from`) is no end
          Effect.flatMap((events) =>
            events.length === 0 && ended
              ? Effect.fail(Option.none())
              : Effect.succeed(Chunk.unsafeFromArray(events))
          )
        )
        return Stream.repeatEffectChunkOption(nextBatch)
      })
    )

  const subscribeAll = (options?: SubscribeOptions): Stream.Stream<RecordedEvent, EventStoreError> =>
    consume(options?.from ?? START, undefined, options?.gatherMs).pipe(
      Stream.concat(
        Stream.fail(
          new EventStoreError({ reason: "Unavailable", message: "subscribeAll: the connection closed" })
        )
      )
    )

  const readAll = (options?: SubscribeOptions): Stream.Stream<RecordedEvent, EventStoreError> =>
    Stream.unwrap(
      Effect.map(
        attempt("readAll", () => jsm.streams.info(EVENTS_STREAM)),
        ({ state }) => {
          const from = options?.from ?? START
          return state.messages === 0 || state.last_seq < Math.max(1, sequenceOf(from))
            ? Stream.empty
            : consume(from, state.last_seq)
        }
      )
    )

  /** One direct get of each stream's last message, all in flight at once; the heads are cached too. */
  const lastRevisions = (streamNames: ReadonlyArray<string>) =>
    Effect.gen(function* () {
      const subjects: Array<string> = []
      for (const streamName of streamNames) subjects.push(yield* subjectOf(streamName))
      const lasts = yield* attempt("direct get", () =>
        Promise.all(
          subjects.map((subject) => jsm.direct.getMessage(EVENTS_STREAM, { last_by_subj: subject }))
        )
      )
      const revisions: Array<number> = []
      for (let i = 0; i < lasts.length; i++) {
        const last = lasts[i]
        const streamName = streamNames[i] ?? ""
        if (last === null || last === undefined) {
          revisions.push(-1)
          continue
        }
        const body = decodeBody(subjects[i] ?? "", last.seq, last.data)
        if (body instanceof EventStoreError) return yield* body
        const head = headOf(last.seq, body)
        heads.set(streamName, head)
        revisions.push(head.revision)
      }
      return revisions
    })

  /** Messages of `SMS_EVENTS` after the one holding each position (one per append): one look at the head. */
  const appendsAfter = (positions: ReadonlyArray<number>, cap: number) =>
    Effect.map(
      attempt("stream info", () => jsm.streams.info(EVENTS_STREAM)),
      ({ state }) =>
        positions.map((position) =>
          Math.min(cap, Math.max(0, state.last_seq - sequenceOf(Math.max(START, position))))
        )
    )

  return EventStore.of({
    writtenIsExact: true,
    append,
    appendMany,
    read,
    lastRevisions,
    subscribeAll,
    readAll,
    appendsAfter
  })
}

export const layer: Layer.Layer<EventStore, EventStoreError, Nats> = Layer.effect(
  EventStore,
  Effect.gen(function* () {
    const { js, jsm, publish, replicas } = yield* Nats
    yield* ensureStream(jsm, replicas)
    return make(js, jsm, publish)
  })
)
