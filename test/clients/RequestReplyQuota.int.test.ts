/** The request/reply path (`sms.requests.send`) charges the same daily quota as HTTP and the intake. */
import { randomUUID } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Nats } from "../../src/nats/Nats.js"
import { issueApiKey } from "../support/apiKeys.js"
import { providerEntry, simulator, startGateway } from "../support/inProcessGateway.js"

describe("request/reply quota", () => {
  it.live(
    "answers ids until the client's daily quota is used, then a refusal naming clientId",
    () =>
      Effect.gen(function* () {
        const sim = yield* simulator()
        const gw = yield* startGateway([providerEntry("p", sim.url)])
        yield* issueApiKey(gw.natsUrl, "limited", "client", 2)
        const { nc } = yield* gw.provide(Nats)
        const ask = () =>
          Effect.promise(async () => {
            const command = {
              clientId: "limited",
              idempotencyKey: randomUUID(),
              to: "+447911123456",
              body: "hi"
            }
            const reply = await nc.request("sms.requests.send", JSON.stringify(command), { timeout: 5_000 })
            return JSON.parse(reply.string()) as Record<string, unknown>
          })
        const answers = [yield* ask(), yield* ask(), yield* ask()]
        expect(answers.slice(0, 2).every((a) => typeof a.messageId === "string")).toBe(true)
        expect(answers[2]).toEqual({ error: { field: "clientId", reason: "daily quota exceeded" } })
      }).pipe(Effect.scoped),
    { timeout: 30_000 }
  )
})
