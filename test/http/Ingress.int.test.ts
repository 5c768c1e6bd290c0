/**
 * The HTTP ingress over real sockets: gateway A runs every role, gateway B only the HTTP role, each
 * with its own NATS connection, client registry and HTTP server (as two gateway processes would), on
 * one nats-server and the provider simulator.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs"
import { randomUUID } from "node:crypto"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, layer } from "@effect/vitest"
import { Context, Effect, Layer, Logger, Schema } from "effect"
import { dayOf, secondsToNextUtcMidnight } from "../../src/clients/Quotas.js"
import { messageIdFor } from "../../src/domain/Ids.js"
import { maskNumber } from "../../src/domain/PhoneNumber.js"
import { infrastructure, ROLES, type Role, roles } from "../../src/main.js"
import { Nats } from "../../src/nats/Nats.js"
import { startNatsServer } from "../../src/nats/NatsServer.js"
import { jsonLogger } from "../../src/observability/Logger.js"
import { ProvidersFile } from "../../src/providers/ProviderConfig.js"
import * as Simulator from "../../src/providers/Simulator.js"
import { eventually, freePort } from "../support/gateway.js"
import { parsePrometheusText, sampleValue } from "../support/prometheus.js"

process.env.INGRESS_SIM_KEY = "ingress-sim-key"
process.env.INGRESS_SIM_SECRET = "ingress-sim-secret"

const TO = "+447911123456"

interface Gateways {
  readonly a: string
  readonly b: string
  readonly dataDir: string
  readonly sim: Simulator.RunningSimulator
  readonly nats: Context.Tag.Service<Nats>
  readonly logs: ReadonlyArray<string>
}
class Env extends Context.Tag("test/IngressEnv")<Env, Gateways>() {}

const EnvLive = Layer.scoped(
  Env,
  Effect.gen(function* () {
    const dataDir = yield* Effect.acquireRelease(
      Effect.sync(() => mkdtempSync(join(tmpdir(), "sms-gw-ingress-"))),
      (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
    )
    const server = yield* startNatsServer({ storeDir: join(dataDir, "nats") })
    const sim = yield* Simulator.start({
      apiKey: "ingress-sim-key",
      webhookSecret: "ingress-sim-secret",
      seed: 3,
      dlr: { delayMs: { min: 0, max: 5 } }
    })
    const providers = Schema.decodeUnknownSync(ProvidersFile)({
      providers: [
        {
          id: "sim",
          type: "generic-http",
          baseUrl: sim.url,
          apiKeyEnv: "INGRESS_SIM_KEY",
          webhookSecretEnv: "INGRESS_SIM_SECRET"
        }
      ]
    })
    const logs: Array<string> = []
    const logger = Logger.replace(
      Logger.defaultLogger,
      jsonLogger((line) => logs.push(line))
    )
    const start = (chosen: ReadonlySet<Role>, withDataDir: boolean) =>
      Effect.gen(function* () {
        const port = yield* freePort
        const options = {
          roles: chosen,
          natsUrl: server.url,
          providers,
          http: { host: "127.0.0.1", port },
          publicUrl: `http://127.0.0.1:${port}`,
          ...(withDataDir ? { dataDir } : {})
        }
        const context = yield* Layer.build(infrastructure(options))
        yield* Layer.build(
          roles(options).pipe(Layer.provide(Layer.succeedContext(context)), Layer.provide(logger))
        )
        return { url: `http://127.0.0.1:${port}`, nats: Context.get(context, Nats) }
      })
    const a = yield* start(new Set(ROLES), true)
    const b = yield* start(new Set<Role>(["http"]), false)
    return { a: a.url, b: b.url, dataDir, sim, nats: a.nats, logs }
  })
)

interface Answer {
  readonly status: number
  readonly headers: Headers
  readonly body: Record<string, unknown>
}

const call = (
  url: string,
  init: { method?: string; key?: string; body?: unknown; idempotencyKey?: string; raw?: string } = {}
) =>
  Effect.promise(async (): Promise<Answer> => {
    const headers: Record<string, string> = { "content-type": "application/json" }
    if (init.key) headers["x-api-key"] = init.key
    if (init.idempotencyKey) headers["idempotency-key"] = init.idempotencyKey
    const response = await fetch(url, {
      signal: AbortSignal.timeout(10_000),
      method: init.method ?? (init.body === undefined && init.raw === undefined ? "GET" : "POST"),
      headers,
      body: init.raw ?? (init.body === undefined ? undefined : JSON.stringify(init.body))
    })
    const text = await response.text()
    return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : {} }
  })

const adminKey = Effect.map(Env, ({ dataDir }) => readFileSync(join(dataDir, "admin.key"), "utf8").trim())

const addClient = (clientId: string, scope: "client" | "auditor" | "admin", dailyQuota?: number) =>
  Effect.gen(function* () {
    const { a } = yield* Env
    const answer = yield* call(`${a}/v1/clients`, {
      key: yield* adminKey,
      body: { clientId, scope, ...(dailyQuota === undefined ? {} : { dailyQuota }) }
    })
    expect(answer.status).toBe(201)
    return answer.body.apiKey as string
  })

const send = (
  url: string,
  key: string,
  idempotencyKey = randomUUID(),
  body: unknown = { to: TO, body: "hello" }
) => call(`${url}/v1/messages`, { key, idempotencyKey, body })

const statusOf = (url: string, key: string, id: string) => call(`${url}/v1/messages/${id}`, { key })

const awaitIntakeIdle = Effect.flatMap(Env, ({ nats }) =>
  eventually(
    Effect.flatMap(
      Effect.promise(() => nats.jsm.consumers.info("SMS_COMMANDS", "intake")),
      (info) => (info.num_pending === 0 && info.num_ack_pending === 0 ? Effect.void : Effect.fail(info))
    )
  )
)

const scrape = (url: string) =>
  Effect.promise(async () => {
    const response = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) })
    expect(response.headers.get("content-type")).toContain("text/plain")
    return parsePrometheusText(await response.text())
  })

describe("HTTP ingress over real sockets, two gateways", () => {
  layer(EnvLive, { timeout: "60 seconds", excludeTestServices: true })("POST /v1/messages", (it) => {
    it.effect("the first start issued an admin key: printed once, in admin.key with mode 0600", () =>
      Effect.gen(function* () {
        const { dataDir, a } = yield* Env
        expect(statSync(join(dataDir, "admin.key")).mode & 0o777).toBe(0o600)
        const key = yield* adminKey
        expect(key).toMatch(/^smsgw_[0-9a-f]{16}\./)
        const list = yield* call(`${a}/v1/clients`, { key })
        expect(list.status).toBe(200)
        expect(list.body.keys).toEqual([expect.objectContaining({ clientId: "admin", scope: "admin" })])
      })
    )

    it.effect("no key or a wrong key is a 401 on every gateway; webhooks and health need none", () =>
      Effect.gen(function* () {
        const { a, b } = yield* Env
        for (const url of [a, b]) {
          const none = yield* send(url, "")
          expect(none.status).toBe(401)
          expect(none.body._tag).toBe("Unauthorized")
          const wrong = yield* send(url, `smsgw_0123456789abcdef.${"A".repeat(43)}`)
          expect(wrong.status).toBe(401)
          const read = yield* statusOf(url, "nonsense", randomUUID())
          expect(read.status).toBe(401)
          expect((yield* call(`${url}/health`)).status).toBe(200)
        }
      })
    )

    it.effect(
      "202 only once stored; the same Idempotency-Key twice (even on two gateways) is one message",
      () =>
        Effect.gen(function* () {
          const { a, b, sim } = yield* Env
          const key = yield* addClient("alice", "client")
          const idempotencyKey = randomUUID()
          const first = yield* send(a, key, idempotencyKey)
          expect(first.status).toBe(202)
          const id = messageIdFor("alice", idempotencyKey)
          expect(first.body).toEqual({ messageId: id, duplicate: false })
          expect(first.headers.get("location")).toBe(`/v1/messages/${id}`)
          expect(first.headers.get("x-tracking-id")).toBe(id)
          const second = yield* send(b, key, idempotencyKey, { to: TO, body: "changed" })
          expect(second.status).toBe(202)
          expect(second.body).toEqual({ messageId: id, duplicate: true })

          const delivered = yield* eventually(
            Effect.flatMap(statusOf(a, key, id), (r) =>
              r.body.status === "delivered" ? Effect.succeed(r) : Effect.fail(r)
            )
          )
          expect(delivered.body).toMatchObject({ clientId: "alice", to: TO })
          yield* awaitIntakeIdle
          yield* sim.awaitIdle
          expect(sim.submissions(id)).toHaveLength(1)
          expect(sim.submissions(id)[0]?.body).toBe("hello")
          const after = yield* send(a, key, idempotencyKey)
          expect(after.body).toEqual({ messageId: id, duplicate: true })
        })
    )

    it.effect(
      "another client's message is a 404 (status and events); an auditor reads it; an auditor cannot send",
      () =>
        Effect.gen(function* () {
          const { a, b } = yield* Env
          const owner = yield* addClient("carol", "client")
          const other = yield* addClient("dave", "client")
          const auditor = yield* addClient("audit", "auditor")
          const sent = yield* send(a, owner)
          const id = sent.body.messageId as string
          yield* eventually(
            Effect.flatMap(statusOf(b, owner, id), (r) => (r.status === 200 ? Effect.void : Effect.fail(r)))
          )
          for (const url of [a, b]) {
            expect((yield* statusOf(url, other, id)).status).toBe(404)
            expect((yield* statusOf(url, other, id)).body._tag).toBe("MessageNotFound")
            expect((yield* call(`${url}/v1/messages/${id}/events`, { key: other })).status).toBe(404)
            expect((yield* statusOf(url, auditor, id)).status).toBe(200)
            expect((yield* call(`${url}/v1/messages/${id}/events`, { key: auditor })).status).toBe(200)
          }
          const refused = yield* send(a, auditor)
          expect(refused.status).toBe(403)
          expect(refused.body._tag).toBe("Forbidden")
        })
    )

    it.effect("a malformed body is a 400 naming the field, in the one error shape", () =>
      Effect.gen(function* () {
        const { b } = yield* Env
        const key = yield* addClient("erin", "client")
        const badTo = yield* send(b, key, randomUUID(), { to: "07911 123456", body: "x" })
        expect(badTo.status).toBe(400)
        expect(badTo.body).toMatchObject({ _tag: "InvalidRequest", field: "to" })
        expect(String(badTo.body.reason)).toContain("E.164")
        const badProviders = yield* send(b, key, randomUUID(), { to: TO, body: "x", providers: ["NOT OK"] })
        expect(badProviders.body).toMatchObject({ _tag: "InvalidRequest", field: "providers.0" })
        const notJson = yield* call(`${b}/v1/messages`, { key, idempotencyKey: randomUUID(), raw: "{" })
        expect(notJson.status).toBe(400)
        expect(notJson.body).toMatchObject({
          _tag: "InvalidRequest",
          field: "$",
          reason: "is not valid JSON"
        })
        for (const answer of [badTo, badProviders, notJson]) {
          expect(Object.keys(answer.body).sort()).toEqual(["_tag", "field", "message", "reason"])
        }
      })
    )

    it.effect(
      "the quota holds exactly under 40 concurrent requests spread over two gateways: 429 + Retry-After",
      () =>
        Effect.gen(function* () {
          const { a, b } = yield* Env
          const key = yield* addClient("quota", "client", 15)
          const before =
            sampleValue(yield* scrape(a), "sms_quota_rejections_total", {
              client: "quota",
              source: "http"
            }) ?? 0
          const answers = yield* Effect.forEach(
            Array.from({ length: 40 }, (_, i) => i),
            (i) => send(i % 2 === 0 ? a : b, key),
            { concurrency: "unbounded" }
          )
          const accepted = answers.filter((r) => r.status === 202)
          const refused = answers.filter((r) => r.status === 429)
          expect(accepted).toHaveLength(15)
          expect(refused).toHaveLength(25)
          const expected = secondsToNextUtcMidnight(Date.now())
          for (const answer of refused) {
            const retryAfter = Number(answer.headers.get("retry-after"))
            expect(Math.abs(retryAfter - expected)).toBeLessThanOrEqual(5)
            expect(answer.body).toMatchObject({ _tag: "QuotaExceeded", clientId: "quota", limit: 15 })
          }
          // the intake sees the commands the ingress charged and does not charge them again
          yield* awaitIntakeIdle
          const usage = yield* call(`${b}/v1/clients/quota/usage`, { key })
          expect(usage.body).toEqual({ clientId: "quota", day: dayOf(Date.now()), used: 15, dailyQuota: 15 })
          const after = sampleValue(yield* scrape(b), "sms_quota_rejections_total", {
            client: "quota",
            source: "http"
          })
          expect(after).toBe(before + 25)
        })
    )

    it.effect(
      "the NATS intake enforces the same quota: over it, a reject naming clientId and no message",
      () =>
        Effect.gen(function* () {
          const { a, nats } = yield* Env
          const key = yield* addClient("mixed", "client", 3)
          const admin = yield* adminKey
          // two through HTTP, then NATS producers with the same client id
          expect((yield* send(a, key)).status).toBe(202)
          expect((yield* send(a, key)).status).toBe(202)
          const publish = (idempotencyKey: string) =>
            Effect.promise(() =>
              nats.js.publish(
                "sms.commands.send",
                JSON.stringify({ clientId: "mixed", idempotencyKey, to: TO, body: "from nats" })
              )
            )
          const third = randomUUID()
          const fourth = randomUUID()
          yield* publish(third)
          yield* awaitIntakeIdle
          yield* publish(fourth)
          yield* awaitIntakeIdle
          const thirdId = messageIdFor("mixed", third)
          yield* eventually(
            Effect.flatMap(statusOf(a, admin, thirdId), (r) =>
              r.status === 200 ? Effect.void : Effect.fail(r)
            )
          )
          expect((yield* statusOf(a, admin, messageIdFor("mixed", fourth))).status).toBe(404)
          const rejects = yield* Effect.promise(async () => {
            const info = await nats.jsm.streams.info("SMS_REJECTS")
            const found: Array<{ error: { field: string; reason: string }; payload: string }> = []
            for (let seq = info.state.first_seq; seq <= info.state.last_seq && seq > 0; seq++) {
              const msg = await nats.jsm.streams.getMessage("SMS_REJECTS", { seq })
              if (msg !== null) found.push(JSON.parse(new TextDecoder().decode(msg.data)))
            }
            return found
          })
          expect(rejects.find((r) => r.payload.includes(fourth))?.error).toEqual({
            field: "clientId",
            reason: "daily quota exceeded"
          })
          expect((yield* call(`${a}/v1/clients/mixed/usage`, { key })).body.used).toBe(3)
          expect((yield* send(a, key)).status).toBe(429)
        })
    )

    it.effect("/metrics parses as Prometheus text and its counters move; /ready is ready", () =>
      Effect.gen(function* () {
        const { a } = yield* Env
        const key = yield* addClient("metered", "client")
        const accepted = { method: "POST", route: "/v1/messages", status: "202" }
        const first = yield* scrape(a)
        const before = sampleValue(first, "sms_http_requests_total", accepted) ?? 0
        const acceptedBefore =
          sampleValue(first, "sms_messages_accepted_total", { source: "http", duplicate: "false" }) ?? 0
        const id = (yield* send(a, key)).body.messageId as string
        const second = yield* scrape(a)
        expect(sampleValue(second, "sms_http_requests_total", accepted)).toBe(before + 1)
        expect(
          sampleValue(second, "sms_messages_accepted_total", { source: "http", duplicate: "false" })
        ).toBe(acceptedBefore + 1)
        expect(second.get("sms_http_request_duration_seconds")?.type).toBe("histogram")
        expect(
          sampleValue(second, "sms_consumer_pending_messages", { stream: "SMS_COMMANDS", consumer: "intake" })
        ).toBeTypeOf("number")
        expect(sampleValue(second, "sms_circuit_breaker_state", { provider: "sim" })).toBe(0)
        // recorded events (stats projection) move as the message is delivered
        yield* eventually(
          Effect.flatMap(statusOf(a, key, id), (r) =>
            r.body.status === "delivered" ? Effect.void : Effect.fail(r)
          )
        )
        yield* eventually(
          Effect.flatMap(scrape(a), (families) =>
            (sampleValue(families, "sms_projection_lag_appends", { projection: "message-status" }) ?? -1) >=
              0 &&
            (sampleValue(families, "sms_recorded_events_total", { type: "SmsDelivered", provider: "sim" }) ??
              0) > 0
              ? Effect.void
              : Effect.fail("not yet")
          )
        )
        const ready = yield* call(`${a}/ready`)
        expect(ready.status).toBe(200)
        expect(ready.body).toMatchObject({
          status: "ready",
          checks: { nats: { ok: true }, eventStore: { ok: true } }
        })
      })
    )

    it.effect(
      "a log line for a message carries its id, tracking id and a masked number; no number in clear",
      () =>
        Effect.gen(function* () {
          const { a, logs } = yield* Env
          const key = yield* addClient("logged", "client")
          const answer = yield* call(`${a}/v1/messages`, {
            key,
            idempotencyKey: randomUUID(),
            body: { to: TO, body: "log me", trackingId: "order-77" }
          })
          const id = answer.body.messageId as string
          const entries = () =>
            logs
              .map((line) => JSON.parse(line) as Record<string, unknown>)
              .filter((entry) => entry.messageId === id && entry.to === maskNumber(TO))
          yield* eventually(
            Effect.suspend(() => (entries().length >= 2 ? Effect.void : Effect.fail("no lines yet")))
          )
          expect(entries().map((e) => e.message)).toEqual(
            expect.arrayContaining(["message accepted", "message requested"])
          )
          for (const entry of entries()) expect(entry.trackingId).toBe("order-77")
          expect(logs.some((line) => line.includes(TO) || line.includes(TO.slice(1)))).toBe(false)
          expect(logs.some((line) => line.includes(key.split(".")[1] ?? "missing"))).toBe(false)
        })
    )

    it.effect("issue 12: oversized bodies are 413 before they are read whole, on every route", () =>
      Effect.gen(function* () {
        const { a } = yield* Env
        const key = yield* addClient("bulky", "client")
        const huge = JSON.stringify({ to: TO, body: "x", metadata: { blob: "x".repeat(1_048_000) } })
        const tooLarge = yield* call(`${a}/v1/messages`, { key, idempotencyKey: randomUUID(), raw: huge })
        expect(tooLarge.status).toBe(413)
        expect(tooLarge.body).toMatchObject({ _tag: "PayloadTooLarge" })
        // without a content-length (chunked): 411 before any of it is read, and the next one is answered
        const chunked = yield* Effect.promise(async () => {
          const body = new ReadableStream({
            start(controller) {
              for (let i = 0; i < 40; i++) controller.enqueue(new TextEncoder().encode("x".repeat(4096)))
              controller.close()
            }
          })
          const response = await fetch(`${a}/v1/messages`, {
            method: "POST",
            headers: {
              "content-type": "application/json",
              "x-api-key": key,
              "idempotency-key": randomUUID()
            },
            body,
            duplex: "half",
            signal: AbortSignal.timeout(10_000)
          } as RequestInit)
          return { status: response.status, body: (await response.json()) as unknown }
        })
        expect(chunked.status).toBe(411)
        expect(chunked.body).toMatchObject({ _tag: "LengthRequired" })
        const after = yield* send(a, key)
        expect(after.status).toBe(202)
        const report = yield* call(`${a}/v1/providers/sim/delivery-reports`, { raw: huge })
        expect(report.status).toBe(413)
      })
    )

    it.effect(
      "issue 12: bounded fields, deep JSON and a non-header tracking id are 400s naming the field",
      () =>
        Effect.gen(function* () {
          const { a } = yield* Env
          const key = yield* addClient("bounded", "client")
          const metadata = yield* send(a, key, randomUUID(), {
            to: TO,
            body: "x",
            metadata: { note: "n".repeat(600) }
          })
          expect(metadata.status).toBe(400)
          expect(metadata.body).toMatchObject({ _tag: "InvalidRequest", field: "metadata.note" })
          const providers = yield* send(a, key, randomUUID(), {
            to: TO,
            body: "x",
            providers: Array.from({ length: 10_000 }, () => "sim")
          })
          expect(providers.status).toBe(400)
          expect(providers.body).toMatchObject({ field: "providers" })
          const deep = `${"[".repeat(20_000)}${"]".repeat(20_000)}`
          const nested = yield* call(`${a}/v1/messages`, {
            key,
            idempotencyKey: randomUUID(),
            raw: `{"to":"${TO}","body":"x","metadata":${deep}}`
          })
          expect(nested.status).toBe(400)
          const nestedReport = yield* call(`${a}/v1/providers/sim/delivery-reports`, { raw: `{"a":${deep}}` })
          expect(nestedReport.status).toBeGreaterThanOrEqual(400)
          expect(nestedReport.status).toBeLessThan(500)
          const euro = yield* send(a, key, randomUUID(), { to: TO, body: "x", trackingId: "Bestellung-€42" })
          expect(euro.status).toBe(400)
          expect(euro.body).toMatchObject({ field: "trackingId" })
          const nul = yield* send(a, key, randomUUID(), { to: TO, body: "x", from: "Shop\u0000" })
          expect(nul.body).toMatchObject({ field: "from", reason: "must not contain control characters" })
        })
    )

    it.effect("issue 12: a client id in a path that is not one is a 400, not a 503", () =>
      Effect.gen(function* () {
        const { a } = yield* Env
        const answer = yield* call(`${a}/v1/clients/..%2Fx/usage`, { key: yield* adminKey })
        expect(answer.status).toBe(400)
        expect(answer.body).toMatchObject({ _tag: "InvalidRequest", field: "clientId" })
      })
    )
  })
})
