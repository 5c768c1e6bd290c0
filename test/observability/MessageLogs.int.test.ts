/**
 * Issue 14: the logs tell what became of a message. A whole gateway in the test process writes its
 * JSON lines into an array; grepping a message id there must show its whole life, one line per
 * recorded event, each with the tracking id and never a phone number in clear.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Logger } from "effect"
import { InactiveNumbers } from "../../src/intake/InactiveNumbers.js"
import type { MessageId } from "../../src/domain/Ids.js"
import { maskNumber } from "../../src/domain/PhoneNumber.js"
import { jsonLogger } from "../../src/observability/Logger.js"
import { ReadModels } from "../../src/projections/ReadModels.js"
import { eventually } from "../support/gateway.js"
import { awaitFinal, providerEntry, simulator, startGateway } from "../support/inProcessGateway.js"

const GOOD = "+447911123456"
/** the simulator refuses numbers with this prefix as invalid */
const BAD = "+447000123456"

type Line = Record<string, unknown>

describe("message lifecycle logs", () => {
  it.live(
    "one Info line per event for each message id, in order, with its tracking id and a masked number",
    () =>
      Effect.gen(function* () {
        const written: Array<string> = []
        const capture = Logger.replace(
          Logger.defaultLogger,
          jsonLogger((line) => written.push(line))
        )
        const sim = yield* simulator({ invalidPrefixes: ["+4470"] })
        // the actors are forked while the capture is installed: they keep it
        const gw = yield* startGateway([providerEntry("sim", sim.url)]).pipe(Effect.provide(capture))
        const lines = () => written.map((line) => JSON.parse(line) as Line)
        const of = (id: MessageId) =>
          lines()
            .filter((line) => line.messageId === id)
            // intermediate statuses depend on the simulator's reports: not asserted here
            .filter((line) => line.message !== "message status reported")
        const messagesOf = (id: MessageId) => of(id).map((line) => line.message)
        const until = (id: MessageId, last: string) =>
          eventually(
            Effect.suspend(() =>
              messagesOf(id).includes(last) ? Effect.void : Effect.fail(`no "${last}" line for ${id} yet`)
            ),
            "20 seconds"
          )

        const delivered = yield* gw.send({ to: GOOD, trackingId: "order-ok" })
        const failed = yield* gw.send({ to: BAD, trackingId: "order-bad" })
        yield* awaitFinal(gw, [delivered, failed])
        yield* until(delivered, "message delivered")
        yield* until(failed, "phone number deactivated")

        expect(messagesOf(delivered)).toEqual([
          "message requested",
          "message dispatched",
          "message delivered"
        ])
        expect(messagesOf(failed)).toEqual([
          "message requested",
          "message failed",
          "phone number deactivated"
        ])
        for (const line of of(delivered)) {
          expect(line).toMatchObject({ level: "INFO", trackingId: "order-ok", to: maskNumber(GOOD) })
        }
        for (const line of of(failed)) {
          expect(line).toMatchObject({ level: "INFO", trackingId: "order-bad", to: maskNumber(BAD) })
        }
        const [, dispatched, deliveredLine] = of(delivered)
        expect(dispatched).toMatchObject({ provider: "sim", attempt: 1 })
        expect(dispatched?.providerMessageId).toEqual(expect.any(String))
        expect(deliveredLine).toMatchObject({ provider: "sim" })
        const [, failedLine, deactivated] = of(failed)
        expect(failedLine).toMatchObject({ provider: "sim", reason: "invalid_number" })
        expect(deactivated).toMatchObject({ reason: "invalid_number", provider: "sim" })

        // the number is inactive now: the next message to it is refused at intake, on the record
        // (the intake's view of inactive numbers is its own; a twin watching the same read model
        // tells when it knows, give or take the turn of the event loop waited after)
        const readModels = yield* gw.provide(ReadModels)
        const view = Context.get(
          yield* Layer.build(
            InactiveNumbers.layer.pipe(Layer.provide(Layer.succeed(ReadModels, readModels)))
          ),
          InactiveNumbers
        )
        yield* eventually(
          Effect.suspend(() =>
            view.mayBeInactive(BAD) ? Effect.void : Effect.fail("not known inactive yet")
          ),
          "20 seconds"
        )
        yield* Effect.sleep("250 millis")
        const refused = yield* gw.send({ to: BAD })
        yield* awaitFinal(gw, [refused])
        yield* until(refused, "message refused")
        expect(messagesOf(refused)).toEqual(["message requested", "message refused"])
        // without a tracking id the message id stands in
        expect(of(refused).every((line) => line.trackingId === refused)).toBe(true)
        expect(of(refused)[1]).toMatchObject({ reason: "recipient_inactive", to: maskNumber(BAD) })

        // the fiber id is gone from every line; no number in clear anywhere, with or without its "+"
        expect(lines().some((line) => "fiber" in line)).toBe(false)
        for (const number of [GOOD, BAD]) {
          expect(written.filter((line) => line.includes(number.slice(1)))).toEqual([])
        }
      }).pipe(Effect.scoped),
    { timeout: 60_000 }
  )
})
