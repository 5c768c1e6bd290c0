/**
 * Loads a message's state from its stream and runs decider commands against it: read, fold,
 * decide, append with the revision that was read. A concurrent writer makes the append conflict;
 * the command is then decided again on the fresh state (a few times, then the conflict surfaces).
 */
import { Effect, Schedule } from "effect"
import type { MessageId } from "../domain/Ids.js"
import {
  decide,
  evolve,
  initialState,
  type MessageCommand,
  type MessageEvent,
  type MessageState
} from "../domain/Message.js"
import { messageStream } from "../domain/StreamName.js"
import { EventStore, ExpectedRevision } from "../eventstore/EventStore.js"
import { fromStored, toStoredFrom } from "../eventstore/MessageEvents.js"
import { recordMessageEvents } from "../observability/Metrics.js"

export interface LoadedMessage {
  readonly state: MessageState
  readonly events: ReadonlyArray<MessageEvent>
  /** -1 when the stream does not exist */
  readonly revision: number
}

export const load = Effect.fnUntraced(function* (messageId: MessageId) {
  const store = yield* EventStore
  const recorded = yield* store.read(messageStream(messageId))
  const events = yield* Effect.forEach(recorded, fromStored)
  const state = events.reduce(evolve, initialState)
  return { state, events, revision: recorded.length - 1 } satisfies LoadedMessage
})

const onConflict = Schedule.recurs(4)

/**
 * Decides `commandFor(state)` on the current stream and appends the result. `commandFor` may
 * return `undefined` when, on this state, there is nothing to do.
 */
export const execute = (
  messageId: MessageId,
  commandFor: (state: MessageState) => MessageCommand | undefined,
  /** the state the caller already loaded: saves a read; a conflict reloads */
  known?: LoadedMessage
) => {
  let preloaded = known
  return Effect.gen(function* () {
    const store = yield* EventStore
    const { state, revision } = preloaded ?? (yield* load(messageId))
    preloaded = undefined
    const command = commandFor(state)
    if (command === undefined) return { state, appended: [] as ReadonlyArray<MessageEvent> }
    const events = yield* decide(command, state)
    if (events.length > 0) {
      yield* store.append(
        messageStream(messageId),
        toStoredFrom(events, revision + 1),
        revision < 0 ? ExpectedRevision.NoStream() : ExpectedRevision.Exact({ revision })
      )
      yield* recordMessageEvents(events)
    }
    return { state: events.reduce(evolve, state), appended: events }
  }).pipe(Effect.retry({ schedule: onConflict, while: (error) => error._tag === "WrongExpectedRevision" }))
}
