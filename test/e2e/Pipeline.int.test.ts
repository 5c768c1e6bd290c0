/**
 * The whole pipe: a real nats-server, the provider simulator, and the gateway as its own process
 * (started by its CLI); a producer service publishes `SendSms` with the `nats` v2 client.
 */
import { randomUUID } from "node:crypto"
import { describe, expect, layer } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { connect, type JetStreamClient, type JetStreamManager, type NatsConnection } from "nats"
import { messageIdFor } from "../../src/domain/Ids.js"
import { signDeliveryReport } from "../../src/providers/GenericHttp.js"
import * as Simulator from "../../src/providers/Simulator.js"
import { issueApiKey } from "../support/apiKeys.js"
import { eventually, type GatewayProcess, startGatewayProcess } from "../support/gateway.js"
import { NatsServerLive, TestNatsServer } from "../support/nats.js"

const API_KEY = "e2e-api-key"
const WEBHOOK_SECRET = "e2e-webhook-secret"

class E2E extends Context.Tag("test/E2E")<
  E2E,
  {
    readonly nc: NatsConnection
    readonly js: JetStreamClient
    readonly jsm: JetStreamManager
    readonly sim: Simulator.RunningSimulator
    readonly gateway: GatewayProcess
    /** an auditor's API key: the read endpoints need one */
    readonly apiKey: string
  }
>() {}

const E2ELive = Layer.scoped(
  E2E,
  Effect.gen(function* () {
    const server = yield* TestNatsServer
    const sim = yield* Simulator.start({
      apiKey: API_KEY,
      webhookSecret: WEBHOOK_SECRET,
      dlr: { delayMs: { min: 0, max: 20 } },
      seed: 7
    })
    const gateway = yield* startGatewayProcess({
      natsUrl: server.url,
      providers: {
        providers: [
          {
            id: "sim",
            type: "generic-http",
            baseUrl: sim.url,
            apiKeyEnv: "E2E_SIM_KEY",
            webhookSecretEnv: "E2E_SIM_SECRET"
          }
        ]
      },
      env: { E2E_SIM_KEY: API_KEY, E2E_SIM_SECRET: WEBHOOK_SECRET }
    })
    const nc = yield* Effect.acquireRelease(
      Effect.promise(() => connect({ servers: server.url, name: "producer-service" })),
      (nc) => Effect.promise(() => nc.close())
    )
    const jsm = yield* Effect.promise(() => nc.jetstreamManager())
    const apiKey = yield* issueApiKey(server.url, "e2e-auditor", "auditor").pipe(Effect.orDie)
    return { nc, js: nc.jetstream(), jsm, sim, gateway, apiKey }
  })
).pipe(Layer.provide(NatsServerLive))

const getJson = (url: string, apiKey?: string) =>
  Effect.promise(async () => {
    const response = await fetch(url, apiKey === undefined ? {} : { headers: { "x-api-key": apiKey } })
    return { status: response.status, body: (await response.json()) as Record<string, unknown> }
  })

const statusOf = (gateway: GatewayProcess, id: string) =>
  Effect.flatMap(E2E, ({ apiKey }) => getJson(`${gateway.httpUrl}/v1/messages/${id}`, apiKey))

const awaitStatus = (gateway: GatewayProcess, id: string, status: string) =>
  eventually(
    Effect.flatMap(statusOf(gateway, id), (response) =>
      response.body.status === status ? Effect.succeed(response.body) : Effect.fail(response)
    )
  )

/** Until the intake has settled every command published so far. */
const awaitIntakeIdle = (jsm: JetStreamManager) =>
  eventually(
    Effect.flatMap(
      Effect.promise(() => jsm.consumers.info("SMS_COMMANDS", "intake")),
      (info) => (info.num_pending === 0 && info.num_ack_pending === 0 ? Effect.void : Effect.fail(info))
    )
  )

const sendSms = (overrides: Record<string, unknown> = {}) => ({
  clientId: "shop",
  idempotencyKey: randomUUID(),
  to: "+447911123456",
  body: "Your code is 1234",
  ...overrides
})

describe("end to end, embedded JetStream store", () => {
  layer(E2ELive, { timeout: "60 seconds", excludeTestServices: true })("SendSms -> delivered", (it) => {
    it.effect("a SendSms published on JetStream is delivered and its history is the three events", () =>
      Effect.gen(function* () {
        const { js, gateway, sim } = yield* E2E
        const command = sendSms()
        const id = messageIdFor(command.clientId, command.idempotencyKey)
        const ack = yield* Effect.promise(() =>
          js.publish("sms.commands.send", JSON.stringify(command), {
            msgID: `shop:${command.idempotencyKey}`
          })
        )
        expect(ack.stream).toBe("SMS_COMMANDS")

        const status = yield* awaitStatus(gateway, id, "delivered")
        expect(status).toMatchObject({ messageId: id, provider: "sim", attempts: 1, to: "+447911123456" })
        expect(status.deliveredAt).toBeTypeOf("string")

        const history = yield* getJson(`${gateway.httpUrl}/v1/messages/${id}/events`, (yield* E2E).apiKey)
        const events = history.body.events as ReadonlyArray<{ type: string; revision: number }>
        expect(events.map((e) => e.type)).toEqual(["SmsRequested", "SmsDispatched", "SmsDelivered"])
        expect(events.map((e) => e.revision)).toEqual([0, 1, 2])
        expect(sim.submissions(id)).toHaveLength(1)
      })
    )

    it.effect("the same idempotency key twice makes one stream and one provider submission", () =>
      Effect.gen(function* () {
        const { js, jsm, gateway, sim } = yield* E2E
        const command = sendSms()
        const id = messageIdFor(command.clientId, command.idempotencyKey)
        // distinct Nats-Msg-Ids get past JetStream's dedupe: the gateway's own idempotency must hold
        yield* Effect.promise(() =>
          js.publish("sms.commands.send", JSON.stringify(command), { msgID: randomUUID() })
        )
        yield* awaitStatus(gateway, id, "delivered")
        yield* Effect.promise(() =>
          js.publish("sms.commands.send", JSON.stringify({ ...command, body: "changed" }), {
            msgID: randomUUID()
          })
        )
        yield* awaitIntakeIdle(jsm)
        yield* sim.awaitIdle

        const history = yield* getJson(`${gateway.httpUrl}/v1/messages/${id}/events`, (yield* E2E).apiKey)
        expect((history.body.events as ReadonlyArray<unknown>).length).toBe(3)
        expect(sim.submissions(id)).toHaveLength(1)
        expect(sim.submissions(id)[0]?.body).toBe(command.body)
      })
    )

    it.effect("request/reply answers the message id, and a repeat is flagged duplicate", () =>
      Effect.gen(function* () {
        const { nc, gateway } = yield* E2E
        const command = sendSms()
        const request = () =>
          Effect.promise(() =>
            nc.request("sms.requests.send", JSON.stringify(command), { timeout: 5_000 })
          ).pipe(Effect.map((msg) => JSON.parse(msg.string()) as { messageId: string; duplicate: boolean }))
        const first = yield* request()
        expect(first).toEqual({
          messageId: messageIdFor(command.clientId, command.idempotencyKey),
          duplicate: false
        })
        yield* awaitStatus(gateway, first.messageId, "delivered")
        const second = yield* request()
        expect(second).toEqual({ messageId: first.messageId, duplicate: true })
      })
    )

    it.effect(
      "a malformed command goes to sms.rejects with its reason, and the next valid one still delivers",
      () =>
        Effect.gen(function* () {
          const { js, jsm, gateway } = yield* E2E
          const bad = sendSms({ to: "07911 123456" })
          yield* Effect.promise(() => js.publish("sms.commands.send", JSON.stringify(bad)))
          yield* Effect.promise(() => js.publish("sms.commands.send", "{not json"))
          const good = sendSms()
          yield* Effect.promise(() => js.publish("sms.commands.send", JSON.stringify(good)))
          yield* awaitStatus(gateway, messageIdFor(good.clientId, good.idempotencyKey), "delivered")
          yield* awaitIntakeIdle(jsm)

          const rejects = yield* Effect.promise(async () => {
            const info = await jsm.streams.info("SMS_REJECTS")
            const found: Array<{ error: { field: string; reason: string }; payload: string }> = []
            for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
              const msg = await jsm.streams.getMessage("SMS_REJECTS", { seq })
              found.push(JSON.parse(new TextDecoder().decode(msg.data)))
            }
            return found
          })
          const badNumber = rejects.find((r) => r.payload.includes(bad.idempotencyKey))
          expect(badNumber?.error.field).toBe("to")
          expect(badNumber?.error.reason).toContain("E.164")
          expect(rejects.find((r) => r.payload === "{not json")?.error).toEqual({
            field: "$",
            reason: "is not valid JSON"
          })
          // never created a stream for the refused command
          const missing = yield* statusOf(gateway, messageIdFor(bad.clientId, bad.idempotencyKey))
          expect(missing.status).toBe(404)
        })
    )

    it.effect(
      "delivery reports: unknown provider -> 404, bad signature -> 401, over 64 KiB -> 413, nothing stored",
      () =>
        Effect.gen(function* () {
          const { jsm, gateway } = yield* E2E
          const before = (yield* Effect.promise(() => jsm.streams.info("SMS_DLR"))).state.messages
          const body = JSON.stringify({
            messageId: "sim-x",
            reference: "r",
            status: "delivered",
            timestamp: new Date().toISOString()
          })
          const now = Math.floor(Date.now() / 1000)
          const post = (provider: string, signature: string, payload = body) =>
            Effect.promise(async () => {
              const response = await fetch(`${gateway.httpUrl}/v1/providers/${provider}/delivery-reports`, {
                method: "POST",
                headers: {
                  "content-type": "application/json",
                  "x-signature": signature,
                  "x-signature-timestamp": String(now)
                },
                body: payload
              })
              return {
                status: response.status,
                body: (await response.json()) as { _tag: string; message: string }
              }
            })

          const unknown = yield* post("nope", signDeliveryReport(WEBHOOK_SECRET, body, now))
          expect(unknown.status).toBe(404)
          expect(unknown.body._tag).toBe("UnknownProvider")

          const forged = yield* post("sim", signDeliveryReport("wrong-secret", body, now))
          expect(forged.status).toBe(401)
          expect(forged.body._tag).toBe("InvalidSignature")

          // refused before it is buffered whole, whatever its signature
          const huge = "x".repeat(2 * 1024 * 1024)
          const oversized = yield* post("sim", signDeliveryReport(WEBHOOK_SECRET, huge, now), huge)
          expect(oversized.status).toBe(413)
          expect(oversized.body).toMatchObject({ _tag: "PayloadTooLarge" })

          const after = (yield* Effect.promise(() => jsm.streams.info("SMS_DLR"))).state.messages
          expect(after).toBe(before)
        })
    )

    it.effect("unknown id -> 404 JSON, malformed id -> 400 naming the field, health is ok", () =>
      Effect.gen(function* () {
        const { gateway } = yield* E2E
        const unknown = yield* statusOf(gateway, randomUUID())
        expect(unknown.status).toBe(404)
        expect(unknown.body._tag).toBe("MessageNotFound")
        const malformed = yield* statusOf(gateway, "not-an-id")
        expect(malformed.status).toBe(400)
        expect(malformed.body).toMatchObject({ _tag: "InvalidRequest", field: "id" })
        const health = yield* getJson(`${gateway.httpUrl}/health`)
        expect(health).toEqual({ status: 200, body: { status: "ok" } })
      })
    )
  })
})
