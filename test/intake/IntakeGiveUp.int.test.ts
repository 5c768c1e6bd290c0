/**
 * Issue 12: a command the intake cannot record is not redelivered without end. It backs off with
 * each delivery and, on its last, lands on `sms.rejects` with the reason; an intake slot is freed.
 */
import { randomUUID } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, Layer } from "effect"
import { failureDelay } from "../../src/intake/Intake.js"
import { InactiveNumbers } from "../../src/intake/InactiveNumbers.js"
import * as Intake from "../../src/intake/Intake.js"
import { Nats } from "../../src/nats/Nats.js"
import { Streams, Subjects } from "../../src/nats/Topology.js"
import { eventually } from "../support/gateway.js"
import { infrastructureAlone } from "../support/intakeAlone.js"
import { TestNatsServer, NatsServerLive } from "../support/nats.js"

describe("the intake's delivery limit", () => {
  it("backs off 2 s, 4 s, 8 s … and never waits more than 5 minutes", () => {
    expect([1, 2, 3, 4].map((n) => Duration.toMillis(failureDelay(n)))).toEqual([2000, 4000, 8000, 16000])
    expect(Duration.toMillis(failureDelay(20))).toBe(300_000)
    expect(Duration.toMillis(failureDelay(1_000))).toBe(300_000)
  })

  it.scopedLive(
    "a command that cannot be recorded on any delivery is given up to sms.rejects with the reason",
    () =>
      Effect.gen(function* () {
        const server = yield* TestNatsServer
        const context = yield* infrastructureAlone(server.url)
        const { js, jsm } = Context.get(context, Nats)
        // the event store goes away after start: every append of every delivery fails
        yield* Effect.promise(() => jsm.streams.delete("SMS_EVENTS"))
        yield* Layer.build(
          Intake.layer({ concurrency: 8, maxDeliveries: 3, backoffBase: "50 millis" }).pipe(
            // the in-process view answers the phone check: the appends are what fail
            Layer.provide(InactiveNumbers.layer),
            Layer.provide(Layer.succeedContext(context))
          )
        )
        const command = { clientId: "t", idempotencyKey: randomUUID(), to: "+447911123456", body: "hello" }
        yield* Effect.promise(() => js.publish(Subjects.send, JSON.stringify(command)))
        const reject = yield* eventually(
          Effect.flatMap(
            Effect.promise(() => jsm.streams.info(Streams.rejects)),
            (info) =>
              info.state.messages > 0
                ? Effect.promise(() =>
                    jsm.streams.getMessage(Streams.rejects, { last_by_subj: Subjects.rejects })
                  )
                : Effect.fail("no reject yet")
          ),
          "20 seconds"
        )
        const record = reject?.json<{
          error: { field: string; reason: string }
          payload: string
          source: string
        }>()
        expect(record?.source).toBe(Subjects.send)
        expect(record?.error.field).toBe("$")
        expect(record?.error.reason).toMatch(/^not recorded after 3 deliveries/)
        expect(JSON.parse(record?.payload ?? "{}")).toMatchObject({ idempotencyKey: command.idempotencyKey })
        // and it is settled: nothing of it stays pending on the intake
        yield* eventually(
          Effect.flatMap(
            Effect.promise(() => jsm.consumers.info(Streams.commands, "intake")),
            (info) => (info.num_pending === 0 && info.num_ack_pending === 0 ? Effect.void : Effect.fail(info))
          ),
          "10 seconds"
        )
      }).pipe(Effect.provide(NatsServerLive)),
    30_000
  )
})
