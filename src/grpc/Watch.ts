/**
 * Following one message until it is final: its status at once, then one update per event as it is
 * recorded (`WatchMessage`).
 *
 * The watch registers with the process's feed first, then reads the stream, and folds the events
 * with the status read model's own reducer (`applyEvent`), so an update says what `GetMessage` will.
 * Events are keyed by their revision: one the read already gave is dropped, one past a missing
 * revision makes the watch read the stream again. That is also how a reconnect resumes: with the
 * last revision it saw, a client gets every event after it, once.
 */
import { Clock, Duration, Effect, Option, Queue, Stream } from "effect"
import { canRead, type Principal } from "../clients/Clients.js"
import type { MessageId } from "../domain/Ids.js"
import { isFinalStatus } from "../domain/Message.js"
import { messageStream } from "../domain/StreamName.js"
import { EventStore, EventStoreError, type RecordedEvent } from "../eventstore/EventStore.js"
import { decodeRecorded } from "../eventstore/MessageEvents.js"
import { UnknownMessage, unavailable } from "../messages/Errors.js"
import { ownerOf } from "../messages/ReadMessage.js"
import { applyEvent, type MessageStatusView } from "../projections/MessageStatus.js"
import { invalidArgument } from "./Errors.js"
import { MessageFeed } from "./MessageFeed.js"

/**
 * How long a watch waits for a message that is not recorded yet: a watch started right after
 * `SendSms` comes before the intake has recorded the message, which takes moments.
 */
export const NOT_RECORDED_GRACE = Duration.seconds(5)

/** What a watch logs when the feed skipped a revision (a test holds it never does). */
export const WATCH_GAP = "watch: the feed skipped a revision, the stream was read again"

export interface WatchUpdate {
  /** the revision of the event this update follows */
  readonly revision: number
  readonly eventType: string
  readonly recordedAt: Date
  /** the status with that event applied */
  readonly view: MessageStatusView
  /** the last update of the watch: the message is delivered or failed, and everything recorded was sent */
  readonly final: boolean
}

/** As the status read model counts it (`MessageStatus.ts`): `unknown` is not final, a late report may follow. */

/** A message's status folded one event at a time, remembering the last revision applied. */
const makeFold = () => {
  let view: MessageStatusView | undefined
  let revision = -1
  return {
    revision: () => revision,
    final: () => view !== undefined && isFinalStatus(view.status),
    apply: (record: RecordedEvent) =>
      Effect.gen(function* () {
        const event = decodeRecorded(record)
        if (event instanceof EventStoreError) return yield* Effect.fail(unavailable("the event store")(event))
        view = applyEvent(view, event, record)
        // a stream not opened by SmsRequested: no message the read model would know either
        if (view === undefined)
          return yield* Effect.dieMessage(`${record.streamName} does not start a message`)
        revision = record.revision
        const update: WatchUpdate = {
          revision,
          eventType: record.type,
          recordedAt: record.recordedAt,
          view,
          final: false
        }
        return update
      })
  }
}

const withFinal = (updates: ReadonlyArray<WatchUpdate>, final: boolean): Array<WatchUpdate> =>
  updates.map((update, i) => (final && i === updates.length - 1 ? { ...update, final: true } : update))

/**
 * The updates of a message for `principal`: without `afterRevision` the status now, with it every
 * event after that revision; then the live ones, until the message is final. An unknown message, or
 * another client's, is `UnknownMessage` after `NOT_RECORDED_GRACE` either way (so a watch does not
 * tell which).
 */
export const watchMessage = (principal: Principal, messageId: MessageId, afterRevision: number | undefined) =>
  Stream.unwrapScoped(
    Effect.gen(function* () {
      const store = yield* EventStore
      const streamName = messageStream(messageId)
      const graceEnds = (yield* Clock.currentTimeMillis) + Duration.toMillis(NOT_RECORDED_GRACE)
      const notFound = Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.zipRight(
          Effect.sleep(Math.max(0, graceEnds - now)),
          Effect.fail(new UnknownMessage({ messageId }))
        )
      )
      const live = yield* (yield* MessageFeed).follow(streamName)
      const read = store.read(streamName).pipe(Effect.mapError(unavailable("the event store")))

      let recorded = yield* read
      if (recorded.length === 0) {
        const left = graceEnds - (yield* Clock.currentTimeMillis)
        const appeared = yield* Queue.take(live).pipe(Effect.timeout(Math.max(0, left)), Effect.option)
        if (Option.isNone(appeared)) return yield* notFound
        recorded = yield* read
      }
      const owner = ownerOf(recorded)
      if (owner === undefined || !canRead(principal, owner)) return yield* notFound
      const last = recorded.at(-1)?.revision ?? -1
      if (afterRevision !== undefined && afterRevision > last)
        return yield* Effect.fail(
          invalidArgument("after_revision", `is past the message's last revision, ${last}`)
        )

      const fold = makeFold()
      const opening: Array<WatchUpdate> = []
      let latest: WatchUpdate | undefined
      for (const record of recorded) {
        latest = yield* fold.apply(record)
        if (afterRevision !== undefined && record.revision > afterRevision) opening.push(latest)
      }
      // a fresh watch opens with the status now: the update of the last event
      if (afterRevision === undefined && latest !== undefined) opening.push(latest)
      if (fold.final()) return Stream.fromIterable(withFinal(opening, true))

      /**
       * The updates a live event brings: none if it was sent already; after a gap, every event missing
       * (the feed should leave none: a gap is a bug, worked around by reading the stream, and logged)
       */
      const updatesFor = (record: RecordedEvent) =>
        Effect.gen(function* () {
          if (record.revision <= fold.revision()) return []
          let missing = [record]
          if (record.revision > fold.revision() + 1) {
            yield* Effect.logWarning(WATCH_GAP).pipe(
              Effect.annotateLogs({ messageId, after: fold.revision(), got: record.revision })
            )
            missing = (yield* read).filter((r) => r.revision > fold.revision())
          }
          const updates: Array<WatchUpdate> = []
          for (const next of missing) {
            updates.push(yield* fold.apply(next))
            if (fold.final()) return withFinal(updates, true)
          }
          return updates
        })
      const following = Stream.fromQueue(live).pipe(
        Stream.mapEffect(updatesFor),
        Stream.flattenIterables,
        Stream.takeUntil((update) => update.final)
      )
      return Stream.concat(Stream.fromIterable(opening), following)
    })
  )
