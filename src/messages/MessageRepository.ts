/**
 * The message decider as a value, and its commands run through the generic command handler:
 * read, fold, decide, append with the revision that was read (see `CommandHandler`).
 */
import { Effect, Either } from "effect"
import type { MessageId } from "../domain/Ids.js"
import {
  decide,
  evolve,
  initialState,
  type MessageCommand,
  type MessageEvent,
  type MessageRuleViolation,
  type MessageState
} from "../domain/Message.js"
import { messageStream } from "../domain/StreamName.js"
import { fromStored, toStoredFrom } from "../eventstore/MessageEvents.js"
import { recordMessageEvents } from "../observability/Metrics.js"
import {
  type CommandOutcome,
  type CommandRequest,
  type Decider,
  handleCommand,
  handleCommands,
  type Loaded,
  loadStream,
  type StreamCodec
} from "../platform/CommandHandler.js"

export const messageDecider: Decider<MessageCommand, MessageEvent, MessageState, MessageRuleViolation> = {
  decide,
  evolve,
  initialState
}

export const messageCodec: StreamCodec<MessageEvent> = { toStoredFrom, fromStored }

export const load = (messageId: MessageId) =>
  loadStream(messageDecider, messageCodec, messageStream(messageId))

export type LoadedMessage = Effect.Effect.Success<ReturnType<typeof load>>

export type MessageOutcome = CommandOutcome<MessageState, MessageEvent, MessageRuleViolation>

/** Many message commands at once (a batch); appended events are counted in the metrics. */
export const executeMany = (requests: ReadonlyArray<CommandRequest<MessageCommand, MessageState>>) =>
  Effect.tap(handleCommands(messageDecider, messageCodec, requests), (outcomes) => {
    const appended: Array<MessageEvent> = []
    // counted once, by the run that wrote them
    for (const outcome of outcomes) {
      if (Either.isRight(outcome) && outcome.right.written) appended.push(...outcome.right.appended)
    }
    return recordMessageEvents(appended)
  })

/**
 * Decides `commandFor(state)` on the current stream and appends the result. `commandFor` may
 * return `undefined` when, on this state, there is nothing to do.
 */
export const execute = (
  messageId: MessageId,
  commandFor: (state: MessageState) => MessageCommand | undefined,
  /** the state the caller already loaded: saves a read; a conflict reloads */
  known?: Loaded<MessageState>
) =>
  handleCommand(messageDecider, messageCodec, {
    streamName: messageStream(messageId),
    command: commandFor,
    ...(known === undefined ? {} : { known })
  }).pipe(Effect.tap(({ appended, written }) => recordMessageEvents(written ? appended : [])))
