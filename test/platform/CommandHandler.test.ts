/**
 * The generic command handler with the message decider, on the in-memory event store: many commands
 * at once, each with its own outcome, in request order; a stale known state conflicts and is decided
 * again on a fresh read; nothing to do appends nothing.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Schema } from "effect"
import {
  type CommandOutcome,
  type CommandRequest,
  handleCommand,
  handleCommands,
  loadStream
} from "../../src/platform/CommandHandler.js"
import { messageCodec, messageDecider } from "../../src/messages/MessageRepository.js"
import { type MessageId, messageIdFor } from "../../src/domain/Ids.js"
import {
  fold,
  initialState,
  type MessageCommand,
  type MessageEvent,
  type MessageRuleViolation,
  type MessageState,
  type RecordDispatch,
  SmsDispatched,
  SmsRequested,
  SmsRetried
} from "../../src/domain/Message.js"
import { E164 } from "../../src/domain/PhoneNumber.js"
import { messageStream } from "../../src/domain/StreamName.js"
import { EventStore, ExpectedRevision } from "../../src/eventstore/EventStore.js"
import * as MemoryEventStore from "../../src/eventstore/MemoryEventStore.js"

const t0 = new Date("2025-03-01T10:00:00.000Z")
const t1 = new Date("2025-03-01T10:00:01.000Z")
const t2 = new Date("2025-03-01T10:00:06.000Z")

const idOf = (key: string): MessageId => messageIdFor("acme", key)

const requestedFor = (messageId: MessageId) =>
  new SmsRequested({
    messageId,
    clientId: "acme",
    idempotencyKey: messageId,
    to: Schema.decodeSync(E164)("+447911123456"),
    body: "hello",
    encoding: "GSM-7",
    segments: 1,
    requestedAt: t0
  })

const retriedFor = (messageId: MessageId, attempt: number, nextProvider?: string) =>
  new SmsRetried({
    messageId,
    provider: "twilio",
    attempt,
    reason: "http_5xx",
    detail: "503",
    nextAttemptAt: t2,
    ...(nextProvider === undefined ? {} : { nextProvider })
  })

const dispatchedFor = (messageId: MessageId, providerMessageId: string, attempt = 1) =>
  new SmsDispatched({ messageId, provider: "twilio", providerMessageId, attempt, dispatchedAt: t1 })

const dispatch = (providerMessageId = "SM-1", attempt = 1): RecordDispatch => ({
  _tag: "RecordDispatch",
  provider: "twilio",
  providerMessageId,
  attempt,
  at: t1
})

type Outcome = CommandOutcome<MessageState, MessageEvent, MessageRuleViolation>

const request = (
  messageId: MessageId,
  command: MessageCommand | ((state: MessageState) => MessageCommand | undefined) | undefined,
  known?: { readonly state: MessageState; readonly revision: number }
): CommandRequest<MessageCommand, MessageState> => ({
  streamName: messageStream(messageId),
  command: typeof command === "function" ? command : () => command,
  ...(known === undefined ? {} : { known })
})

const run = (requests: ReadonlyArray<CommandRequest<MessageCommand, MessageState>>) =>
  handleCommands(messageDecider, messageCodec, requests)

/** appends `events` to a message stream as its next revisions, behind the handler's back */
const appendBehind = (messageId: MessageId, ...events: ReadonlyArray<MessageEvent>) =>
  Effect.gen(function* () {
    const store = yield* EventStore
    const revision = (yield* store.read(messageStream(messageId))).length - 1
    return yield* store.append(
      messageStream(messageId),
      messageCodec.toStoredFrom(events, revision + 1),
      revision < 0 ? ExpectedRevision.NoStream() : ExpectedRevision.Exact({ revision })
    )
  })

const historyOf = (messageId: MessageId) =>
  Effect.map(loadStream(messageDecider, messageCodec, messageStream(messageId)), ({ events }) =>
    events.map((event) => event._tag)
  )

const right = (outcome: Outcome | undefined) => {
  if (outcome === undefined) return expect.fail("no outcome")
  if (Either.isLeft(outcome)) return expect.fail(`expected success, got ${outcome.left._tag}`)
  return outcome.right
}
const left = (outcome: Outcome | undefined) => {
  if (outcome === undefined) return expect.fail("no outcome")
  if (Either.isRight(outcome))
    return expect.fail(`expected a failure, got ${outcome.right.appended.length} event(s)`)
  return outcome.left
}

const inMemory = <A, E>(effect: Effect.Effect<A, E, EventStore>) =>
  Effect.provide(effect, MemoryEventStore.layer)

describe("handleCommands (message decider, in-memory event store)", () => {
  it.effect(
    "many commands at once: each has its own outcome, a violation does not touch its neighbours",
    () =>
      inMemory(
        Effect.gen(function* () {
          const [a, b, c, d] = [idOf("a"), idOf("b"), idOf("c"), idOf("d")]
          yield* appendBehind(a, requestedFor(a))
          yield* appendBehind(c, requestedFor(c))
          const outcomes = yield* run([
            request(a, dispatch("SM-a")),
            request(b, dispatch("SM-b")),
            request(c, { _tag: "Request", event: requestedFor(c) }),
            request(d, { _tag: "Request", event: requestedFor(d) })
          ])
          expect(outcomes).toHaveLength(4)

          const first = right(outcomes[0])
          expect(first.revision).toBe(1)
          expect(first.appended).toEqual([dispatchedFor(a, "SM-a")])
          expect(first.state).toMatchObject({ status: "dispatched", providerMessageId: "SM-a", attempts: 1 })

          expect(left(outcomes[1])).toMatchObject({ _tag: "MessageNotRequested", command: "RecordDispatch" })
          expect(left(outcomes[2])).toMatchObject({ _tag: "MessageAlreadyRequested", messageId: c })

          const fourth = right(outcomes[3])
          expect(fourth.revision).toBe(0)
          expect(fourth.appended).toEqual([requestedFor(d)])
          expect(fourth.state.status).toBe("requested")

          expect(yield* historyOf(a)).toEqual(["SmsRequested", "SmsDispatched"])
          expect(yield* historyOf(b)).toEqual([])
          expect(yield* historyOf(c)).toEqual(["SmsRequested"])
          expect(yield* historyOf(d)).toEqual(["SmsRequested"])
        })
      )
  )

  it.effect("outcomes come back in the order of the requests, whichever needed a read", () =>
    inMemory(
      Effect.gen(function* () {
        const ids = Array.from({ length: 12 }, (_, i) => idOf(`order-${i}`))
        // every third message exists and is handed over as known; the others are new or unknown
        for (const [i, id] of ids.entries()) if (i % 3 === 0) yield* appendBehind(id, requestedFor(id))
        const outcomes = yield* run(
          ids.map((id, i) =>
            i % 3 === 0
              ? request(id, dispatch(`SM-${i}`), { state: fold([requestedFor(id)]), revision: 0 })
              : i % 3 === 1
                ? request(id, { _tag: "Request", event: requestedFor(id) })
                : request(id, dispatch(`SM-${i}`))
          )
        )
        expect(outcomes).toHaveLength(ids.length)
        for (const [i, id] of ids.entries()) {
          const outcome = outcomes[i]
          if (i % 3 === 2) {
            expect(left(outcome)._tag).toBe("MessageNotRequested")
            continue
          }
          const handled = right(outcome)
          expect(handled.state.status === "none" ? undefined : handled.state.request.messageId).toBe(id)
          if (i % 3 === 0) expect(handled.appended).toEqual([dispatchedFor(id, `SM-${i}`)])
          else expect(handled.appended).toEqual([requestedFor(id)])
        }
      })
    )
  )

  it.effect(
    "a stale known state makes the append conflict; the command is decided again on a fresh read",
    () =>
      inMemory(
        Effect.gen(function* () {
          const id = idOf("stale")
          yield* appendBehind(id, requestedFor(id))
          const known = { state: fold([requestedFor(id)]), revision: 0 }
          // another writer records a failover after the caller took its snapshot
          yield* appendBehind(id, retriedFor(id, 1, "vonage"))
          const seen: Array<string> = []
          const outcome = yield* run([
            request(
              id,
              (state) => {
                seen.push(state.status)
                return dispatch("SM-1", 2)
              },
              known
            )
          ])
          expect(seen).toEqual(["requested", "retrying"])
          const handled = right(outcome[0])
          expect(handled.revision).toBe(2)
          expect(handled.appended).toEqual([dispatchedFor(id, "SM-1", 2)])
          expect(handled.state).toMatchObject({
            status: "dispatched",
            attempts: 2,
            providerMessageId: "SM-1"
          })
          expect(yield* historyOf(id)).toEqual(["SmsRequested", "SmsRetried", "SmsDispatched"])
        })
      )
  )

  it.effect("decided again on the fresh state, the command may find nothing left to do", () =>
    inMemory(
      Effect.gen(function* () {
        const id = idOf("already")
        yield* appendBehind(id, requestedFor(id))
        const known = { state: fold([requestedFor(id)]), revision: 0 }
        yield* appendBehind(id, dispatchedFor(id, "SM-other"))
        const outcome = right((yield* run([request(id, dispatch("SM-1"), known)]))[0])
        expect(outcome.appended).toEqual([])
        expect(outcome.revision).toBe(1)
        expect(outcome.state).toMatchObject({ status: "dispatched", providerMessageId: "SM-other" })
        expect(yield* historyOf(id)).toEqual(["SmsRequested", "SmsDispatched"])
      })
    )
  )

  it.effect("two commands on one stream in one batch race: the loser is decided on the winner's result", () =>
    inMemory(
      Effect.gen(function* () {
        const id = idOf("race")
        yield* appendBehind(id, requestedFor(id))
        const outcomes = yield* run([request(id, dispatch("SM-1")), request(id, dispatch("SM-2"))])
        const first = right(outcomes[0])
        const second = right(outcomes[1])
        // exactly one dispatch is recorded; the other command saw it and recorded nothing
        expect([first.appended.length, second.appended.length].sort()).toEqual([0, 1])
        expect(yield* historyOf(id)).toEqual(["SmsRequested", "SmsDispatched"])
        // and both answer the same state: the one dispatch that was recorded
        expect(first.revision).toBe(1)
        expect(second.revision).toBe(1)
        expect(second.state).toEqual(first.state)
        expect(first.state.status).toBe("dispatched")
      })
    )
  )

  it.effect("retries racing on one stream are both recorded, each with its own attempt", () =>
    inMemory(
      Effect.gen(function* () {
        const id = idOf("retries")
        yield* appendBehind(id, requestedFor(id))
        const retry = (attempt: number): MessageCommand => ({
          _tag: "ScheduleRetry",
          provider: "twilio",
          attempt,
          reason: "timeout",
          nextAttemptAt: t2
        })
        const outcomes = yield* run([request(id, retry(1)), request(id, retry(2))])
        expect(right(outcomes[0]).revision).toBe(1)
        expect(right(outcomes[1]).revision).toBe(2)
        expect(right(outcomes[1]).state).toMatchObject({ status: "retrying", attempts: 2 })
        expect(yield* historyOf(id)).toEqual(["SmsRequested", "SmsRetried", "SmsRetried"])
      })
    )
  )

  it.effect("a command that returns undefined appends nothing, on an existing stream or none", () =>
    inMemory(
      Effect.gen(function* () {
        const existing = idOf("quiet")
        const missing = idOf("nothing-here")
        yield* appendBehind(existing, requestedFor(existing))
        const outcomes = yield* run([request(existing, undefined), request(missing, undefined)])
        const onExisting = right(outcomes[0])
        expect(onExisting.appended).toEqual([])
        expect(onExisting.revision).toBe(0)
        expect(onExisting.state.status).toBe("requested")
        const onMissing = right(outcomes[1])
        expect(onMissing).toMatchObject({ state: { status: "none" }, revision: -1, appended: [] })
        expect(yield* historyOf(existing)).toEqual(["SmsRequested"])
        expect(yield* historyOf(missing)).toEqual([])
      })
    )
  )

  it.effect(
    "a stream that keeps moving: after a few rounds the conflict is the answer; neighbours succeed",
    () =>
      inMemory(
        Effect.gen(function* () {
          const store = yield* EventStore
          const busy = idOf("busy")
          const calm = idOf("calm")
          yield* appendBehind(busy, requestedFor(busy))
          yield* appendBehind(calm, requestedFor(calm))
          let rounds = 0
          const outcomes = yield* run([
            request(busy, (state) => {
              rounds++
              // another writer appends after every read of this stream, before the handler's append
              const attempts = state.status === "none" ? 0 : state.attempts
              Effect.runSync(
                Effect.provideService(appendBehind(busy, retriedFor(busy, attempts + 1)), EventStore, store)
              )
              return dispatch("SM-busy", attempts + 2)
            }),
            request(calm, dispatch("SM-calm"))
          ])
          expect(left(outcomes[0])).toMatchObject({
            _tag: "WrongExpectedRevision",
            streamName: messageStream(busy)
          })
          expect(rounds).toBeGreaterThan(1)
          expect(rounds).toBeLessThanOrEqual(10)
          expect(right(outcomes[1]).appended).toEqual([dispatchedFor(calm, "SM-calm")])
          const busyHistory = yield* historyOf(busy)
          expect(busyHistory).not.toContain("SmsDispatched")
          expect(busyHistory).toHaveLength(1 + rounds)
        })
      )
  )

  it.effect("a stream that does not decode fails its own command with the store's error, and no other", () =>
    inMemory(
      Effect.gen(function* () {
        const store = yield* EventStore
        const broken = idOf("broken")
        const fine = idOf("fine")
        yield* store.append(
          messageStream(broken),
          [{ id: "garbage-1", type: "SmsRequested", data: { hello: "world" } }],
          ExpectedRevision.NoStream()
        )
        yield* appendBehind(fine, requestedFor(fine))
        const outcomes = yield* run([request(broken, dispatch()), request(fine, dispatch())])
        expect(left(outcomes[0])).toMatchObject({ _tag: "EventStoreError", reason: "InvalidData" })
        expect(right(outcomes[1]).appended).toEqual([dispatchedFor(fine, "SM-1")])
      })
    )
  )

  it.effect("a run that finds its events appended by an earlier run says it wrote nothing", () =>
    inMemory(
      Effect.gen(function* () {
        const id = idOf("repeat")
        const command: MessageCommand = { _tag: "Request", event: requestedFor(id) }
        const first = right((yield* run([request(id, command)]))[0])
        expect(first.written).toBe(true)
        // a second run that believes the stream new decides the same event, and its append finds it
        const again = right((yield* run([request(id, command, { state: initialState, revision: -1 })]))[0])
        expect(again).toMatchObject({ revision: 0, written: false })
        expect(yield* historyOf(id)).toEqual(["SmsRequested"])
      })
    )
  )

  it.effect("an empty batch answers nothing", () =>
    inMemory(
      Effect.gen(function* () {
        expect(yield* run([])).toEqual([])
      })
    )
  )
})

describe("handleCommand", () => {
  it.effect("answers the handled command, or fails with the violation", () =>
    inMemory(
      Effect.gen(function* () {
        const id = idOf("single")
        const created = yield* handleCommand(
          messageDecider,
          messageCodec,
          request(id, { _tag: "Request", event: requestedFor(id) })
        )
        expect(created).toEqual({
          state: fold([requestedFor(id)]),
          revision: 0,
          appended: [requestedFor(id)],
          written: true
        })
        const violation = yield* Effect.flip(
          handleCommand(
            messageDecider,
            messageCodec,
            request(id, { _tag: "Request", event: requestedFor(id) })
          )
        )
        expect(violation).toMatchObject({ _tag: "MessageAlreadyRequested", messageId: id })
        expect(yield* historyOf(id)).toEqual(["SmsRequested"])
      })
    )
  )
})
