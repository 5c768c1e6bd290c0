/** `sms-gateway dead-letters list | resubmit <messageId>` */
import { Args, Command, Options } from "@effect/cli"
import { Console, Effect, Option } from "effect"
import { listDeadLetters, resubmit } from "../dispatch/DeadLetters.js"
import { load } from "../messages/MessageRepository.js"
import { MessageId } from "../domain/Ids.js"
import { connected, natsUrlOption } from "./Connect.js"

const natsUrl = natsUrlOption

const list = Command.make("list", { natsUrl }, ({ natsUrl }) =>
  Effect.gen(function* () {
    const letters = yield* listDeadLetters
    if (letters.length === 0) return yield* Console.log("no dead letters")
    for (const { seq, letter } of letters) {
      const { state } = yield* load(letter.messageId)
      yield* Console.log(
        [
          String(seq).padStart(6),
          letter.deadAt.toISOString(),
          letter.messageId,
          letter.provider.padEnd(12),
          letter.cause.padEnd(17),
          `attempts=${letter.attempts}`,
          `now=${state.status}`,
          letter.detail ?? ""
        ].join("  ")
      )
    }
  }).pipe(Effect.provide(connected(natsUrl)))
).pipe(Command.withDescription("every dead letter, with the message's status now"))

const resubmitCommand = Command.make(
  "resubmit",
  {
    natsUrl,
    messageId: Args.text({ name: "messageId" }).pipe(Args.withSchema(MessageId)),
    provider: Options.optional(Options.text("provider")),
    by: Options.text("by").pipe(Options.withDefault(process.env.USER ?? "operator")),
    reason: Options.optional(Options.text("reason"))
  },
  ({ natsUrl, messageId, provider, by, reason }) =>
    Effect.gen(function* () {
      const letters = yield* listDeadLetters
      const letter = [...letters].reverse().find((l) => l.letter.messageId === messageId)
      const target = Option.getOrElse(provider, () => letter?.letter.provider ?? "")
      if (target === "")
        return yield* Effect.fail(new Error(`no dead letter for ${messageId}: name a --provider`))
      yield* resubmit({ messageId, by, reason: Option.getOrUndefined(reason), provider: target })
      yield* Console.log(`resubmitted ${messageId} to ${target}`)
    }).pipe(Effect.provide(connected(natsUrl)))
).pipe(Command.withDescription("send a dead-lettered message again (recorded as SmsResubmitted)"))

export const deadLettersCommand = Command.make("dead-letters").pipe(
  Command.withSubcommands([list, resubmitCommand]),
  Command.withDescription("inspect and resubmit messages the gateway gave up on")
)
