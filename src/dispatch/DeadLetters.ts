/**
 * Dead letters: messages the gateway gave up on, on `sms.dead.<provider>` (stream `SMS_DEAD`, kept
 * 90 days). Giving up is also recorded in the message's own stream (`SmsFailed(retries_exhausted)`),
 * and sending one back is an event too (`SmsResubmitted`), never a silent re-publish.
 */
import { Clock, Effect, Schema } from "effect"
import { MessageId } from "../domain/Ids.js"
import { Nats, natsRequest } from "../nats/Nats.js"
import { Streams, Subjects } from "../nats/Topology.js"
import { execute } from "../messages/MessageRepository.js"
import { publishWork } from "./WorkItem.js"

export class DeadLetter extends Schema.Class<DeadLetter>("DeadLetter")({
  messageId: MessageId,
  provider: Schema.String,
  /** why it was given up: the schedule ran out, or the handler kept failing */
  cause: Schema.Literal("retries_exhausted", "max_deliveries"),
  attempts: Schema.Number,
  detail: Schema.optional(Schema.String),
  deadAt: Schema.Date
}) {}

const encode = Schema.encodeSync(Schema.parseJson(DeadLetter))
const decode = Schema.decodeUnknownOption(Schema.parseJson(DeadLetter))

export const publishDeadLetter = (letter: DeadLetter) =>
  Effect.flatMap(Nats, ({ publish }) =>
    natsRequest("cannot store dead letter", () =>
      publish(Subjects.dead(letter.provider), encode(letter), {
        msgID: `dead:${letter.messageId}:${letter.attempts}`
      })
    )
  )

export interface ListedDeadLetter {
  readonly seq: number
  readonly letter: DeadLetter
}

/** Dead letters still kept, oldest first: every one, or only the newest `newest` (the console's page). */
const readDeadLetters = (newest?: number) =>
  Effect.gen(function* () {
    const { jsm } = yield* Nats
    const info = yield* natsRequest("cannot read dead letters", () => jsm.streams.info(Streams.dead))
    const letters: Array<ListedDeadLetter> = []
    const first =
      newest === undefined
        ? info.state.first_seq
        : Math.max(info.state.first_seq, info.state.last_seq - newest + 1)
    for (let seq = first; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      const stored = yield* natsRequest("cannot read dead letter", () =>
        jsm.streams.getMessage(Streams.dead, { seq }).catch(() => null)
      )
      if (stored === null) continue
      const letter = decode(new TextDecoder().decode(stored.data))
      if (letter._tag === "Some") letters.push({ seq, letter: letter.value })
    }
    return letters
  })

/** Every dead letter still kept, oldest first. */
export const listDeadLetters = readDeadLetters()

/** The newest `count` dead letters, oldest first, read without walking the whole stream. */
export const newestDeadLetters = (count: number) => readDeadLetters(count)

export interface Resubmission {
  readonly messageId: MessageId
  readonly by: string
  readonly reason?: string
  /** where to send it; default: the provider it died on */
  readonly provider: string
}

/** Records `SmsResubmitted` and queues the message again. */
export const resubmit = (resubmission: Resubmission) =>
  Effect.gen(function* () {
    const at = new Date(yield* Clock.currentTimeMillis)
    const { state } = yield* execute(resubmission.messageId, () => ({
      _tag: "Resubmit",
      by: resubmission.by,
      reason: resubmission.reason,
      provider: resubmission.provider,
      at
    }))
    const attempts = state.status === "none" ? 0 : state.attempts
    yield* publishWork(
      {
        messageId: resubmission.messageId,
        provider: resubmission.provider,
        priorAttempts: attempts
      },
      `resubmit-${at.getTime()}`
    )
    return state
  })
