/**
 * One command handler for every decider (Emmett's `handleCommandWithDecider`): read the stream,
 * decide on its state, append the events with the revision that was read. A concurrent writer makes
 * the append conflict; the command is then decided again on the fresh state, a few times at most.
 *
 * It takes many commands at once: their reads and their appends are each in flight together, and
 * each command succeeds or fails on its own.
 */
import { Effect, Either } from "effect"
import {
  EventStore,
  type EventStoreError,
  type EventToAppend,
  ExpectedRevision,
  type RecordedEvent,
  type WrongExpectedRevision
} from "../eventstore/EventStore.js"

/** A decider as a value: one handler serves them all. */
export interface Decider<Command, Event, State, Violation> {
  readonly decide: (command: Command, state: State) => Either.Either<ReadonlyArray<Event>, Violation>
  readonly evolve: (state: State, event: Event) => State
  readonly initialState: State
}

/** How a decider's events are stored. */
export interface StreamCodec<Event> {
  readonly toStoredFrom: (events: ReadonlyArray<Event>, firstRevision: number) => ReadonlyArray<EventToAppend>
  readonly fromStored: (recorded: RecordedEvent) => Effect.Effect<Event, EventStoreError>
}

export interface Loaded<State> {
  readonly state: State
  /** -1 when the stream does not exist */
  readonly revision: number
}

export interface Handled<State, Event> extends Loaded<State> {
  /** the events this command appended (none when it changed nothing) */
  readonly appended: ReadonlyArray<Event>
  /** whether this run wrote them, not found them appended by an earlier run (see `AppendResult`) */
  readonly written: boolean
}

export interface CommandRequest<Command, State> {
  readonly streamName: string
  /** the command to run on the current state, or undefined when there is nothing to do */
  readonly command: (state: State) => Command | undefined
  /** the state the caller already holds (a snapshot, a cache): saves the read; a conflict reloads */
  readonly known?: Loaded<State>
}

export type CommandOutcome<State, Event, Violation> = Either.Either<
  Handled<State, Event>,
  Violation | WrongExpectedRevision | EventStoreError
>

/** Reads one stream and folds it. */
export const loadStream = <Command, Event, State, Violation>(
  decider: Decider<Command, Event, State, Violation>,
  codec: StreamCodec<Event>,
  streamName: string
) =>
  Effect.gen(function* () {
    const store = yield* EventStore
    const recorded = yield* store.read(streamName)
    let state = decider.initialState
    const events: Array<Event> = []
    for (const record of recorded) {
      const event = yield* codec.fromStored(record)
      events.push(event)
      state = decider.evolve(state, event)
    }
    return { state, events, revision: recorded.length - 1 }
  })

/** Conflicts decided again on a fresh read before the conflict is the answer. */
const MAX_ROUNDS = 5

/**
 * Runs every request: one read per stream not already known (all at once), plain decisions, then
 * one `appendMany` for the whole round. Outcomes come back in the order of the requests.
 */
export const handleCommands = <Command, Event, State, Violation>(
  decider: Decider<Command, Event, State, Violation>,
  codec: StreamCodec<Event>,
  requests: ReadonlyArray<CommandRequest<Command, State>>
): Effect.Effect<ReadonlyArray<CommandOutcome<State, Event, Violation>>, never, EventStore> =>
  Effect.gen(function* () {
    const store = yield* EventStore
    const outcomes: Array<CommandOutcome<State, Event, Violation> | undefined> = requests.map(() => undefined)
    const known: Array<Loaded<State> | undefined> = requests.map((request) => request.known)
    let open = requests.map((_, i) => i)
    for (let round = 0; round < MAX_ROUNDS && open.length > 0; round++) {
      const toRead = open.filter((i) => known[i] === undefined)
      if (toRead.length > 0) {
        const reads = yield* Effect.forEach(
          toRead,
          (i) => Effect.either(loadStream(decider, codec, requests[i]?.streamName ?? "")),
          { concurrency: "unbounded" }
        )
        reads.forEach((read, n) => {
          const i = toRead[n] ?? 0
          if (Either.isLeft(read)) outcomes[i] = Either.left(read.left)
          else known[i] = read.right
        })
      }
      const appends: Array<{ readonly index: number; readonly events: ReadonlyArray<Event> }> = []
      for (const i of open) {
        const loaded = known[i]
        const request = requests[i]
        if (outcomes[i] !== undefined || loaded === undefined || request === undefined) continue
        const command = request.command(loaded.state)
        const decided = command === undefined ? Either.right([]) : decider.decide(command, loaded.state)
        if (Either.isLeft(decided)) outcomes[i] = Either.left(decided.left)
        else if (decided.right.length === 0)
          outcomes[i] = Either.right({ ...loaded, appended: [], written: false })
        else appends.push({ index: i, events: decided.right })
      }
      const results = yield* store.appendMany(
        appends.map(({ index, events }) => {
          const revision = known[index]?.revision ?? -1
          return {
            streamName: requests[index]?.streamName ?? "",
            events: codec.toStoredFrom(events, revision + 1),
            expected: revision < 0 ? ExpectedRevision.NoStream() : ExpectedRevision.Exact({ revision })
          }
        })
      )
      const conflicted: Array<number> = []
      results.forEach((result, n) => {
        const append = appends[n]
        if (append === undefined) return
        const loaded = known[append.index]
        if (Either.isRight(result) && loaded !== undefined) {
          let state = loaded.state
          for (const event of append.events) state = decider.evolve(state, event)
          outcomes[append.index] = Either.right({
            state,
            revision: result.right.revision,
            appended: append.events,
            written: result.right.written
          })
        } else if (Either.isLeft(result) && result.left._tag === "WrongExpectedRevision") {
          if (round === MAX_ROUNDS - 1) outcomes[append.index] = Either.left(result.left)
          conflicted.push(append.index)
          known[append.index] = undefined
        } else if (Either.isLeft(result)) {
          outcomes[append.index] = Either.left(result.left)
        }
      })
      open = conflicted
    }
    const settled = outcomes.filter((outcome) => outcome !== undefined)
    // every request ends with an outcome (the last round turns a conflict into one)
    if (settled.length !== requests.length)
      return yield* Effect.dieMessage("a command was left without outcome")
    return settled
  })

/** One command (cold paths): the outcome, or its failure in the error channel. */
export const handleCommand = <Command, Event, State, Violation>(
  decider: Decider<Command, Event, State, Violation>,
  codec: StreamCodec<Event>,
  request: CommandRequest<Command, State>
) =>
  Effect.flatMap(handleCommands(decider, codec, [request]), ([outcome]) =>
    outcome === undefined ? Effect.dieMessage("handleCommands answered nothing") : outcome
  )
