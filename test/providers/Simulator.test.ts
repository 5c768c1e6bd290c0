import { createServer as createHttpServer } from "node:http"
import { connect } from "node:net"
import { HttpClient, HttpClientRequest } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, Either, Queue } from "effect"
import * as GenericHttp from "../../src/providers/GenericHttp.js"
import type {
  DeliveryReport,
  InvalidDeliveryReport,
  OutboundSms,
  ProviderAdapter
} from "../../src/providers/ProviderAdapter.js"
import * as Simulator from "../../src/providers/Simulator.js"
import * as Twilio from "../../src/providers/Twilio.js"
import { serveOnLoopback } from "../support/httpServer.js"

const apiKey = "sim-api-key"
const webhookSecret = "sim-webhook-secret"

type Received = Either.Either<DeliveryReport, InvalidDeliveryReport>

/**
 * The gateway's side of the webhook, reduced to its core: verify with `parseDeliveryReport`,
 * answer 204 or 401. The first `failFirst` requests get a 500 to exercise the simulator's retries.
 */
const startReceiver = (adapter: ProviderAdapter, failFirst = 0) =>
  Effect.gen(function* () {
    const received = yield* Queue.unbounded<Received>()
    let seen = 0
    const server = createHttpServer((req, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (chunk: Buffer) => chunks.push(chunk))
      req.on("end", () => {
        if (seen++ < failFirst) {
          res.writeHead(500).end()
          return
        }
        const headers: Record<string, string | undefined> = {}
        for (const [key, value] of Object.entries(req.headers)) {
          headers[key] = Array.isArray(value) ? value.join(", ") : value
        }
        const report = adapter.parseDeliveryReport({
          headers,
          body: Buffer.concat(chunks).toString("utf8"),
          url: req.url ?? ""
        })
        Queue.unsafeOffer(received, report)
        res.writeHead(Either.isRight(report) ? 204 : 401).end()
      })
    })
    const port = yield* serveOnLoopback(server)
    return { received, callbackUrl: `http://127.0.0.1:${port}/webhooks/dlr/sim` }
  })

const outbound = (messageId: string, callbackUrl: string, to = "+447700900123"): OutboundSms => ({
  messageId,
  to,
  body: `body of ${messageId}`,
  callbackUrl
})

/** A simulator, an adapter for it, and a verifying receiver for its DLRs. */
const setup = (options: Partial<Simulator.SimulatorOptions> = {}, failFirst = 0) =>
  Effect.gen(function* () {
    const sim = yield* Simulator.start({ apiKey, webhookSecret, seed: 1, ...options })
    const adapter = yield* GenericHttp.make({ id: "sim", baseUrl: sim.url, apiKey, webhookSecret })
    const receiver = yield* startReceiver(adapter, failFirst)
    return { sim, adapter, ...receiver }
  })

const accepted = (adapter: ProviderAdapter, sms: OutboundSms) =>
  Effect.flatMap(adapter.submit(sms), (result) =>
    result._tag === "Accepted" ? Effect.succeed(result.providerMessageId) : Effect.dieMessage(result._tag)
  )

const rawPost = (url: string, body: string, key = apiKey) =>
  Effect.flatMap(HttpClient.HttpClient, (client) =>
    client.execute(
      HttpClientRequest.post(url).pipe(
        HttpClientRequest.bearerToken(key),
        HttpClientRequest.bodyText(body, "application/json")
      )
    )
  )

const getJson = (url: string) =>
  Effect.flatMap(HttpClient.HttpClient, (client) =>
    Effect.flatMap(client.get(url), (response) => response.json)
  )

/** A request line no HTTP parser accepts, over a bare socket. */
const sendGarbage = (port: number) =>
  Effect.async<string>((resume) => {
    const socket = connect(port, "127.0.0.1", () => socket.write("NOT HTTP AT ALL\r\n\r\n"))
    let answer = ""
    socket.on("data", (chunk) => {
      answer += chunk.toString()
    })
    socket.on("close", () => resume(Effect.succeed(answer)))
    socket.on("error", () => resume(Effect.succeed(answer)))
  })

// live services: DLRs arrive on real timers and are signed with the real clock
layer(NodeHttpClient.layerUndici, { excludeTestServices: true })("Simulator", (it) => {
  it.scoped("delivers signed DLRs that parseDeliveryReport verifies", () =>
    Effect.gen(function* () {
      const { sim, adapter, received, callbackUrl } = yield* setup({ dlr: { delayMs: { min: 0, max: 20 } } })
      const ids = yield* Effect.forEach(["msg-1", "msg-2", "msg-3"], (id) =>
        accepted(adapter, outbound(id, callbackUrl))
      )

      const reports = yield* Effect.forEach(ids, () => Effect.flatMap(Queue.take(received), (r) => r))
      const byReference = new Map(reports.map((report) => [report.reference, report]))
      expect([...byReference.keys()].sort()).toEqual(["msg-1", "msg-2", "msg-3"])
      for (const [i, providerMessageId] of ids.entries()) {
        expect(byReference.get(`msg-${i + 1}`)).toEqual({
          providerMessageId,
          reference: `msg-${i + 1}`,
          outcome: "delivered",
          rawStatus: "delivered"
        })
      }

      yield* sim.awaitIdle
      expect(sim.stats()).toMatchObject({
        submissions: 3,
        accepted: 3,
        dlrSent: 3,
        dlrFailed: 0,
        dlrPending: 0,
        dlrRetried: 0
      })
    })
  )

  it.scoped("logs every submission and counts each outcome exactly", () =>
    Effect.gen(function* () {
      const { sim, adapter, callbackUrl } = yield* setup({
        invalidPrefixes: ["+1555"],
        dlr: { enabled: false }
      })
      const intruder = yield* GenericHttp.make({ id: "sim", baseUrl: sim.url, apiKey: "nope", webhookSecret })

      yield* accepted(adapter, outbound("msg-1", callbackUrl))
      yield* adapter.submit(outbound("msg-2", callbackUrl, "+15555550100"))
      yield* intruder.submit(outbound("msg-3", callbackUrl))
      yield* rawPost(`${sim.url}/messages`, "{oops")
      yield* accepted(adapter, outbound("msg-4", callbackUrl))

      expect(sim.submissions().map((s) => [s.seq, s.reference, s.outcome])).toEqual([
        [1, "msg-1", "accepted"],
        [2, "msg-2", "invalid_number"],
        [3, undefined, "unauthorized"],
        [4, undefined, "malformed"],
        [5, "msg-4", "accepted"]
      ])
      const expected = {
        submissions: 5,
        accepted: 2,
        errors: 0,
        throttled: 0,
        invalid: 1,
        unauthorized: 1,
        malformed: 1,
        dlrSent: 0,
        dlrFailed: 0,
        dlrPending: 0
      }
      expect(sim.stats()).toMatchObject(expected)
      expect(yield* getJson(`${sim.url}/_stats`)).toMatchObject(expected)
      expect(yield* getJson(`${sim.url}/_submissions?reference=msg-4`)).toMatchObject([
        { seq: 5, reference: "msg-4", to: "+447700900123", body: "body of msg-4", outcome: "accepted" }
      ])

      const reset = yield* rawPost(`${sim.url}/_reset`, "")
      expect(reset.status).toBe(204)
      expect(sim.submissions()).toEqual([])
      expect(sim.stats()).toMatchObject({ submissions: 0, accepted: 0 })
    })
  )

  it.scoped("makes the same decisions from the same seed", () =>
    Effect.gen(function* () {
      const run = Effect.gen(function* () {
        const { sim, adapter, callbackUrl } = yield* setup({
          seed: 42,
          errorRate: 0.3,
          throttleRate: 0.3,
          dlr: { enabled: false }
        })
        const results = yield* Effect.forEach(
          Array.from({ length: 20 }, (_, i) => `msg-${i}`),
          (id) => adapter.submit(outbound(id, callbackUrl))
        )
        const stats = sim.stats()
        expect(stats.accepted + stats.errors + stats.throttled).toBe(20)
        return results.map((result) => (result._tag === "Transient" ? result.reason : result._tag))
      })
      const first = yield* Effect.scoped(run)
      const second = yield* Effect.scoped(run)
      expect(second).toEqual(first)
      expect(new Set(first)).toEqual(new Set(["Accepted", "http_5xx", "throttled"]))
    })
  )

  it.scoped("sends every report twice when duplicateRate is 1", () =>
    Effect.gen(function* () {
      const { sim, adapter, received, callbackUrl } = yield* setup({ dlr: { duplicateRate: 1 } })
      const ids = yield* Effect.forEach(["msg-1", "msg-2"], (id) =>
        accepted(adapter, outbound(id, callbackUrl))
      )

      const reports = yield* Effect.forEach([1, 2, 3, 4], () =>
        Effect.flatMap(Queue.take(received), (r) => r)
      )
      expect(reports.map((r) => r.providerMessageId).sort()).toEqual([...ids, ...ids].sort())

      yield* sim.awaitIdle
      expect(sim.stats()).toMatchObject({ accepted: 2, dlrDuplicates: 2, dlrSent: 4, dlrPending: 0 })
      expect(yield* Queue.size(received)).toBe(0)
    })
  )

  it.scoped("never sends the report of a submission it loses (loseRate 1), and counts it", () =>
    Effect.gen(function* () {
      const { sim, adapter, received, callbackUrl } = yield* setup({ dlr: { loseRate: 1 } })
      yield* Effect.forEach(["msg-1", "msg-2"], (id) => accepted(adapter, outbound(id, callbackUrl)))
      yield* sim.awaitIdle
      expect(sim.stats()).toMatchObject({ accepted: 2, dlrLost: 2, dlrSent: 0, dlrPending: 0 })
      expect(yield* Queue.size(received)).toBe(0)
    })
  )

  it.scoped("retries a DLR the receiver refused", () =>
    Effect.gen(function* () {
      const { sim, adapter, received, callbackUrl } = yield* setup({}, 2)
      const id = yield* accepted(adapter, outbound("msg-1", callbackUrl))

      expect((yield* Effect.flatMap(Queue.take(received), (r) => r)).providerMessageId).toBe(id)
      yield* sim.awaitIdle
      expect(sim.stats()).toMatchObject({ dlrSent: 1, dlrRetried: 2, dlrFailed: 0, dlrPending: 0 })
    })
  )

  it.scoped("reports the configured outcome", () =>
    Effect.gen(function* () {
      const { adapter, received, callbackUrl } = yield* setup({ dlr: { outcomes: { invalid: 1 } } })
      yield* accepted(adapter, outbound("msg-1", callbackUrl))
      const report = yield* Effect.flatMap(Queue.take(received), (r) => r)
      expect(report).toMatchObject({
        outcome: "failed",
        failureReason: "invalid_number",
        code: "invalid_number"
      })
    })
  )

  it.scoped("answers malformed requests with 4xx and keeps serving", () =>
    Effect.gen(function* () {
      const { sim, adapter, callbackUrl } = yield* setup({ dlr: { enabled: false } })

      const badJson = yield* rawPost(`${sim.url}/messages`, "{not json")
      expect(badJson.status).toBe(400)
      expect(yield* badJson.json).toMatchObject({ error: { code: "invalid_request" } })
      expect((yield* rawPost(`${sim.url}/messages`, "[1,2]")).status).toBe(400)
      expect((yield* rawPost(`${sim.url}/messages`, JSON.stringify({ to: 5, body: "x" }))).status).toBe(400)
      expect((yield* rawPost(`${sim.url}/messages`, "x".repeat(70_000))).status).toBe(413)
      expect((yield* rawPost(`${sim.url}/nowhere`, "{}")).status).toBe(404)
      expect(yield* sendGarbage(sim.port)).toMatch(/^HTTP\/1\.1 400/)

      yield* accepted(adapter, outbound("msg-1", callbackUrl))
      expect(sim.stats()).toMatchObject({ submissions: 5, malformed: 4, accepted: 1 })
    })
  )

  it.scoped("refuses invalid options", () =>
    Effect.gen(function* () {
      const invalid = [
        { errorRate: 2 },
        { timeoutRate: -0.1 },
        { resetRate: 1.5 },
        { dlr: { earlyRate: 2 } },
        { latencyMs: { min: 10, max: 20, p99: 15 } },
        { format: "smpp" as Simulator.SimulatorFormat },
        { signatureMethod: "crc32" as "sha256" }
      ]
      for (const options of invalid) {
        const error = yield* Effect.flip(Simulator.start({ apiKey, webhookSecret, ...options }))
        expect(error).toMatchObject({ _tag: "SimulatorError", reason: "InvalidOptions" })
      }
    })
  )

  it.scoped("timeoutRate leaves the request unanswered until the client gives up", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.start({ apiKey, webhookSecret, seed: 3, timeoutRate: 1 })
      const adapter = yield* GenericHttp.make({
        id: "sim",
        baseUrl: sim.url,
        apiKey,
        webhookSecret,
        timeoutMs: 100
      })
      const result = yield* adapter.submit(outbound("msg-1", "http://127.0.0.1:9/dlr"))
      expect(result).toMatchObject({ _tag: "Transient", reason: "timeout" })
      // a hung request is not an answer in flight: awaitIdle does not wait for it
      yield* sim.awaitIdle
      expect(sim.submissions().map((s) => [s.reference, s.outcome])).toEqual([["msg-1", "timeout"]])
      expect(sim.stats()).toMatchObject({
        submissions: 1,
        timeouts: 1,
        accepted: 0,
        dlrPending: 0,
        dlrSent: 0
      })
    })
  )

  it.scoped("resetRate destroys the connection instead of answering", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.start({
        apiKey,
        webhookSecret,
        seed: 3,
        resetRate: 1,
        latencyMs: { min: 5, max: 5 }
      })
      const adapter = yield* GenericHttp.make({ id: "sim", baseUrl: sim.url, apiKey, webhookSecret })
      const result = yield* adapter.submit(outbound("msg-1", "http://127.0.0.1:9/dlr"))
      expect(result).toMatchObject({ _tag: "Transient", reason: "network" })
      yield* sim.awaitIdle
      expect(sim.submissions().map((s) => s.outcome)).toEqual(["reset"])
      expect(sim.stats()).toMatchObject({ submissions: 1, resets: 1, accepted: 0 })
      // the server keeps serving on new connections
      expect(yield* getJson(`${sim.url}/_stats`)).toMatchObject({ resets: 1 })
    })
  )

  it.scoped("earlyRate delivers the report before the submit answer", () =>
    Effect.gen(function* () {
      const { sim, adapter, received, callbackUrl } = yield* setup({
        latencyMs: { min: 0, max: 5 },
        dlr: { earlyRate: 1, duplicateRate: 1 }
      })
      for (const id of ["msg-1", "msg-2", "msg-3"]) {
        const before = yield* Queue.size(received)
        const providerMessageId = yield* accepted(adapter, outbound(id, callbackUrl))
        // the receiver has already answered the report when the submit answer arrives
        expect(yield* Queue.size(received)).toBeGreaterThan(before)
        const reports = yield* Effect.forEach(yield* Queue.takeAll(received), (r) => r)
        // duplicates may be among them too: this message's report is there already
        expect(reports.find((r) => r.reference === id)).toEqual({
          providerMessageId,
          reference: id,
          outcome: "delivered",
          rawStatus: "delivered"
        })
      }
      yield* sim.awaitIdle
      expect(sim.stats()).toMatchObject({
        accepted: 3,
        dlrEarly: 3,
        dlrDuplicates: 3,
        dlrSent: 6,
        dlrPending: 0
      })
    })
  )

  it.scoped(
    "speaks Twilio: signed form callbacks to the StatusCallback URL, or to dlrUrl with the ref kept",
    () =>
      Effect.gen(function* () {
        const token = "twilio-auth-token"
        const accountSid = `AC${"1".repeat(32)}`
        const twilioConfig = { id: "tw", accountSid, authToken: token, from: "+15005550006" }
        const probe = yield* Twilio.make({ ...twilioConfig, baseUrl: "http://127.0.0.1:9" })
        // the receiver hands over the path; Twilio signs the full URL it called
        let origin = ""
        const verifying = yield* startReceiver({
          ...probe,
          parseDeliveryReport: (webhook) =>
            probe.parseDeliveryReport({ ...webhook, url: `${origin}${webhook.url}` })
        })
        origin = new URL(verifying.callbackUrl).origin

        for (const dlrUrl of [undefined, verifying.callbackUrl]) {
          const sim = yield* Simulator.start({
            format: "twilio",
            apiKey: token,
            webhookSecret,
            seed: 5,
            ...(dlrUrl !== undefined ? { dlrUrl } : {})
          })
          expect(sim.format).toBe("twilio")
          const adapter = yield* Twilio.make({ ...twilioConfig, baseUrl: sim.url })
          const target = dlrUrl === undefined ? verifying.callbackUrl : "http://127.0.0.1:9/nobody-listens"
          const sid = yield* accepted(adapter, outbound("msg-tw", target))
          const report = yield* Effect.flatMap(Queue.take(verifying.received), (r) => r)
          expect(report).toEqual({
            providerMessageId: sid,
            reference: "msg-tw",
            outcome: "delivered",
            rawStatus: "delivered"
          })
          expect(yield* getJson(`${sim.url}/_submissions?reference=msg-tw`)).toMatchObject([
            { reference: "msg-tw", messageId: sid, outcome: "accepted" }
          ])
        }
      })
  )
})

describe("Simulator.drawLatency", () => {
  it("is uniform without p99, and puts 1% beyond p99 with one", () => {
    const at = (value: number, range?: Simulator.LatencyRange) => Simulator.drawLatency(() => value, range)
    expect(at(0.5)).toBe(0)
    expect(at(0.5, { min: 10, max: 20 })).toBe(15)
    expect(at(0, { min: 10, max: 20, p99: 200 })).toBe(10)
    expect(at(0.49, { min: 10, max: 20, p99: 200 })).toBe(15)
    expect(at(0.98, { min: 10, max: 20, p99: 200 })).toBe(20)
    // the tail's median is p99: the draw at 0.99 lands on it, everything above beyond it
    expect(at(0.99, { min: 10, max: 20, p99: 200 })).toBeCloseTo(200, 6)
    expect(at(0.999, { min: 10, max: 20, p99: 200 })).toBeGreaterThan(200)
    expect(Number.isFinite(at(1 - 2 ** -32, { min: 10, max: 20, p99: 200 }))).toBe(true)
  })
})

describe("GenericHttp options for Digital Virgo-style bridges", () => {
  const now = Date.UTC(2025, 0, 1, 12, 0, 0)

  it("idField reads the provider id from another field or a dotted path", () => {
    const body = JSON.stringify({ data: { id: "dv-1" }, messageId: "ignored" })
    expect(GenericHttp.classifyResponse(200, {}, body, now, ["data", "id"])).toEqual({
      _tag: "Accepted",
      providerMessageId: "dv-1"
    })
    expect(GenericHttp.classifyResponse(200, {}, body, now)).toEqual({
      _tag: "Accepted",
      providerMessageId: "ignored"
    })
    expect(GenericHttp.classifyResponse(200, {}, "{}", now, ["data", "id"])).toMatchObject({
      _tag: "Transient",
      detail: "HTTP 200 without a data.id"
    })
  })

  it("statusMap adds and overrides DLR statuses, in any case, and nothing from Object.prototype", () => {
    const nowSeconds = Math.floor(now / 1000)
    const statusMap = {
      ...GenericHttp.defaultStatusMap,
      delivrd: "delivered",
      undeliv: "undeliverable",
      expired: "expired"
    } as const
    const parse = (status: string, code?: string) => {
      const body = JSON.stringify({ messageId: "dv-1", status, ...(code !== undefined ? { code } : {}) })
      return Either.getOrThrow(
        GenericHttp.parseDeliveryReport(
          webhookSecret,
          {
            url: "/dlr",
            body,
            headers: {
              "x-signature-timestamp": String(nowSeconds),
              "x-signature": GenericHttp.signDeliveryReport(webhookSecret, body, nowSeconds)
            }
          },
          now,
          statusMap
        )
      )
    }
    expect(parse("DELIVRD")).toMatchObject({ outcome: "delivered", rawStatus: "DELIVRD" })
    expect(parse("UNDELIV")).toMatchObject({ outcome: "failed", failureReason: "undeliverable" })
    expect(parse("UNDELIV", "invalid_number")).toMatchObject({ failureReason: "invalid_number" })
    expect(parse("expired")).toMatchObject({ outcome: "failed", failureReason: "expired" })
    expect(parse("rejected")).toMatchObject({ outcome: "failed", failureReason: "rejected" })
    expect(parse("constructor")).toMatchObject({ outcome: "pending" })
    expect(parse("ENROUTE")).toMatchObject({ outcome: "pending" })
  })
})
