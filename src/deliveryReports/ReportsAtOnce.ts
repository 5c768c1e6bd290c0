/**
 * Delivery reports recorded on their message by the webhook itself, as they arrive, when this
 * process holds the message's state: the report names the message (our reference, echoed) and this
 * process's provider actor recorded that very dispatch (`MessageCache`). On a busy gateway most
 * reports are such, and each then skips `SMS_DLR`: the store and its ack, the delivery to the report
 * actor and its ack, and the stored record's encoding both ways.
 *
 * The guarantee to the provider is unchanged: the webhook answers 200 only once the event is
 * appended, as it otherwise does once the report is stored. Whatever this path does not settle (a
 * message this process does not hold, a report that beats its dispatch, another writer in between,
 * an error) answers false, and the webhook stores the report for the report actor, which decides it
 * again from the start: nothing is lost, and nothing recorded twice (each append names the revision it
 * was decided on, and a report already on the record changes nothing).
 *
 * Batch-first like the actors: the reports that arrive in one turn of the event loop are recorded by
 * one Effect, their appends in flight together.
 */
import { Effect, Either, Option, Runtime } from "effect"
import { isMessageId, type MessageId } from "../domain/Ids.js"
import { EventStore } from "../eventstore/EventStore.js"
import { MessageCache } from "../messages/MessageCache.js"
import { recordOnMessages } from "./DeliveryReportActor.js"
import type { StoredDeliveryReport } from "./DeliveryReports.js"

/**
 * Whether the report was recorded on its message (a promise), or `undefined` when it cannot be
 * tried here: then store it.
 */
export type RecordAtOnce = (
  stored: StoredDeliveryReport,
  /** the webhook's span, for the recording's span to link to */
  link: string | undefined
) => Promise<boolean> | undefined

interface Waiting {
  readonly messageId: MessageId
  readonly stored: StoredDeliveryReport
  readonly link: string | undefined
  readonly resolve: (recorded: boolean) => void
}

const never: RecordAtOnce = () => undefined

/** The webhook's recorder; one that never records when this process has no event store or cache. */
export const makeRecordAtOnce = Effect.gen(function* () {
  const store = yield* Effect.serviceOption(EventStore)
  const cache = yield* Effect.serviceOption(MessageCache)
  if (Option.isNone(store) || Option.isNone(cache)) return never
  const run = Runtime.runPromise(yield* Effect.runtime<never>())

  let waiting: Array<Waiting> = []
  const recordWaiting = () => {
    const batch = waiting
    waiting = []
    const recording = recordOnMessages(batch).pipe(
      Effect.provideService(EventStore, store.value),
      Effect.provideService(MessageCache, cache.value)
    )
    run(recording).then(
      (outcomes) => {
        batch.forEach((entry, n) => {
          const outcome = outcomes[n]
          entry.resolve(outcome !== undefined && Either.isRight(outcome))
        })
      },
      () => {
        for (const entry of batch) entry.resolve(false)
      }
    )
  }

  const record: RecordAtOnce = (stored, link) => {
    const messageId = stored.report.reference
    if (!isMessageId(messageId)) return undefined
    const state = cache.value.get(messageId)?.state
    if (state === undefined || state.status === "none") return undefined
    if (state.providerMessageId !== stored.report.providerMessageId) return undefined
    return new Promise<boolean>((resolve) => {
      waiting.push({ messageId, stored, link, resolve })
      if (waiting.length === 1) setImmediate(recordWaiting)
    })
  }
  return record
})
