/**
 * Hostile payloads and valid messages, interleaved, on the real intake: every hostile one ends on
 * `sms.rejects` with a field and a reason, every valid one is delivered, the gateway keeps running.
 */
import { randomUUID } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import fc from "fast-check"
import { messageIdFor } from "../../src/domain/Ids.js"
import { parseSendSms } from "../../src/domain/SendSms.js"
import { Nats } from "../../src/nats/Nats.js"
import { eventually } from "../support/gateway.js"
import { awaitFinal, providerEntry, simulator, startGateway } from "../support/inProcessGateway.js"

const hostile = fc.oneof(
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.string({ unit: "binary", maxLength: 300 }),
  fc
    .record({ clientId: fc.string(), to: fc.string(), body: fc.string({ maxLength: 4000 }) })
    .map((v) => JSON.stringify(v))
)

describe("fuzzing the running gateway", () => {
  it.live(
    "300 hostile payloads among 100 valid messages: all rejected with a reason, all valid delivered",
    () =>
      Effect.gen(function* () {
        const sim = yield* simulator()
        const gw = yield* startGateway([providerEntry("p", sim.url)])
        // only payloads the parser refuses count as hostile (a random one could be valid)
        const payloads = fc
          .sample(hostile, { numRuns: 600, seed: 42 })
          .filter((p) => parseSendSms(p)._tag === "Left")
          .slice(0, 300)
        expect(payloads).toHaveLength(300)
        const valid = Array.from({ length: 100 }, () => ({
          clientId: "fuzz",
          idempotencyKey: randomUUID(),
          to: "+447911123456",
          body: "hello ✓ 🚀"
        }))
        const { js, jsm } = yield* gw.provide(Nats)
        yield* Effect.promise(async () => {
          for (let i = 0; i < 400; i++) {
            const payload =
              i % 4 === 3 ? JSON.stringify(valid[(i - 3) / 4]) : (payloads[i - Math.floor(i / 4)] ?? "")
            await js.publish("sms.commands.send", payload)
          }
        })
        const ids = valid.map((c) => messageIdFor(c.clientId, c.idempotencyKey))
        const final = yield* awaitFinal(gw, ids)
        expect(final.every((l) => l.state.status === "delivered")).toBe(true)
        expect(sim.submissions()).toHaveLength(100)

        const rejects = yield* eventually(
          Effect.flatMap(
            Effect.promise(() => jsm.streams.info("SMS_REJECTS")),
            (info) => (info.state.messages >= 300 ? Effect.succeed(info) : Effect.fail(info.state.messages))
          )
        )
        expect(rejects.state.messages).toBe(300)
        const sample = yield* Effect.promise(() =>
          jsm.streams.getMessage("SMS_REJECTS", { seq: rejects.state.first_seq })
        )
        const record = JSON.parse(new TextDecoder().decode(sample?.data)) as {
          error: { field: string; reason: string }
        }
        expect(record.error.field.length).toBeGreaterThan(0)
        expect(record.error.reason.length).toBeGreaterThan(0)
      }).pipe(Effect.scoped),
    { timeout: 90_000 }
  )
})
