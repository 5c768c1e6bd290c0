/** Loads a phone number's lifecycle from `phone-<digits>` and runs its commands (see MessageRepository). */
import { Effect, Schedule } from "effect"
import {
  decidePhone,
  evolvePhone,
  initialPhoneState,
  type PhoneCommand,
  type PhoneEvent
} from "../domain/PhoneNumberLifecycle.js"
import { phoneStream } from "../domain/StreamName.js"
import { EventStore, ExpectedRevision } from "../eventstore/EventStore.js"
import { phoneCodec } from "../eventstore/PhoneEvents.js"

export const loadPhone = Effect.fnUntraced(function* (number: string) {
  const store = yield* EventStore
  const recorded = yield* store.read(phoneStream(number))
  const events: ReadonlyArray<PhoneEvent> = yield* Effect.forEach(recorded, phoneCodec.fromStored)
  return {
    state: events.reduce(evolvePhone, initialPhoneState),
    events,
    recorded,
    revision: recorded.length - 1
  }
})

export const executePhone = (number: string, command: PhoneCommand) =>
  Effect.gen(function* () {
    const store = yield* EventStore
    const { state, revision } = yield* loadPhone(number)
    const events = yield* decidePhone(command, state)
    if (events.length > 0) {
      yield* store.append(
        phoneStream(number),
        phoneCodec.toStoredFrom(events, revision + 1),
        revision < 0 ? ExpectedRevision.NoStream() : ExpectedRevision.Exact({ revision })
      )
    }
    return { state: events.reduce(evolvePhone, state), appended: events }
  }).pipe(
    Effect.retry({ schedule: Schedule.recurs(4), while: (error) => error._tag === "WrongExpectedRevision" })
  )
