import { createServer as createHttpServer, type Server as HttpServer } from "node:http"
import { createServer } from "node:net"
import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, Either, FastCheck as fc, Layer, Schema } from "effect"
import * as GenericHttp from "../../src/providers/GenericHttp.js"
import type { InboundWebhook, OutboundSms } from "../../src/providers/ProviderAdapter.js"
import * as Simulator from "../../src/providers/Simulator.js"

const apiKey = "test-api-key"
const webhookSecret = "test-webhook-secret"

const sms: OutboundSms = {
  messageId: "msg-1",
  to: "+447700900123",
  body: "hello",
  callbackUrl: "http://127.0.0.1:9/dlr"
}

/** One simulator per scenario, DLRs off: these tests are about the submit answer. */
const submitAgainst = (
  options: Partial<Simulator.SimulatorOptions>,
  config: Partial<GenericHttp.GenericHttpConfig> = {},
  message: OutboundSms = sms
) =>
  Effect.gen(function* () {
    const sim = yield* Simulator.start({
      apiKey,
      webhookSecret,
      seed: 7,
      dlr: { enabled: false },
      ...options
    })
    const adapter = yield* GenericHttp.make({ id: "sim", baseUrl: sim.url, apiKey, webhookSecret, ...config })
    return yield* adapter.submit(message)
  })

/** A port nobody listens on: bound, read, released. */
const closedPort = Effect.async<number>((resume) => {
  const server = createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

// live services: the timeout must run on the real clock, like the simulator's latency
layer(Layer.empty, { excludeTestServices: true })("GenericHttp.submit against the simulator", (it) => {
  it.scoped("an accepted message carries the provider's id", () =>
    Effect.gen(function* () {
      const result = yield* submitAgainst({})
      expect(result._tag).toBe("Accepted")
      if (result._tag === "Accepted") expect(result.providerMessageId).toMatch(/^sim-/)
    })
  )

  it.scoped("sends the wire format: bearer key, reference, callbackUrl", () =>
    Effect.gen(function* () {
      const sim = yield* Simulator.start({ apiKey, webhookSecret, dlr: { enabled: false } })
      const adapter = yield* GenericHttp.make({ id: "sim", baseUrl: `${sim.url}/`, apiKey, webhookSecret })
      yield* adapter.submit({ ...sms, from: "ACME" })
      const [logged] = sim.submissions("msg-1")
      expect(logged).toMatchObject({
        seq: 1,
        reference: "msg-1",
        to: sms.to,
        body: "hello",
        outcome: "accepted"
      })
    })
  )

  it.scoped("an invalid-number prefix is Permanent invalid_number", () =>
    Effect.gen(function* () {
      const result = yield* submitAgainst({ invalidPrefixes: ["+4477009"] })
      expect(result).toMatchObject({ _tag: "Permanent", reason: "invalid_number", code: "invalid_number" })
      if (result._tag === "Permanent") expect(result.detail).not.toContain(sms.to)
    })
  )

  it.scoped("a 503 is Transient http_5xx", () =>
    Effect.gen(function* () {
      expect(yield* submitAgainst({ errorRate: 1 })).toMatchObject({
        _tag: "Transient",
        reason: "http_5xx"
      })
    })
  )

  it.scoped("a 429 is Transient throttled with Retry-After in ms", () =>
    Effect.gen(function* () {
      const result = yield* submitAgainst({ throttleRate: 1 })
      expect(result).toMatchObject({ _tag: "Transient", reason: "throttled", retryAfterMs: 1000 })
    })
  )

  it.scoped("a wrong api key is Permanent rejected (auth)", () =>
    Effect.gen(function* () {
      const result = yield* submitAgainst({}, { apiKey: "wrong-key" })
      expect(result).toMatchObject({ _tag: "Permanent", reason: "rejected", code: "auth" })
    })
  )

  it.scoped("a closed port is Transient network", () =>
    Effect.gen(function* () {
      const port = yield* closedPort
      const adapter = yield* GenericHttp.make({
        id: "gone",
        baseUrl: `http://127.0.0.1:${port}`,
        apiKey,
        webhookSecret
      })
      const result = yield* adapter.submit(sms)
      expect(result).toMatchObject({ _tag: "Transient", reason: "network" })
      if (result._tag === "Transient") expect(result.detail).toContain("ECONNREFUSED")
    })
  )

  it.scoped("an answer slower than timeoutMs is Transient timeout", () =>
    Effect.gen(function* () {
      const result = yield* submitAgainst({ latencyMs: { min: 5_000, max: 5_000 } }, { timeoutMs: 50 })
      expect(result).toMatchObject({ _tag: "Transient", reason: "timeout" })
    })
  )

  it.scoped("a provider that sends its headers, then stalls mid-body, is Transient timeout too", () =>
    Effect.gen(function* () {
      const stalling = yield* Effect.acquireRelease(
        Effect.async<HttpServer>((resume) => {
          const server = createHttpServer((_req, res) => {
            res.writeHead(200, { "content-type": "application/json" })
            res.write('{"messageId": "sim-')
          })
          server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
        }),
        (server) =>
          Effect.sync(() => server.closeAllConnections()).pipe(
            Effect.zipRight(Effect.sync(() => server.close()))
          )
      )
      const address = stalling.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      const adapter = yield* GenericHttp.make({
        id: "stall",
        baseUrl: `http://127.0.0.1:${port}`,
        apiKey,
        webhookSecret,
        timeoutMs: 100
      })
      // without a deadline over the body this call would hang until the test's own timeout
      const result = yield* adapter.submit(sms)
      expect(result).toMatchObject({ _tag: "Transient", reason: "timeout" })
    })
  )
})

describe("GenericHttp.classifyResponse", () => {
  const now = Date.UTC(2025, 0, 1, 12, 0, 0)

  it("reads Retry-After as seconds or as an HTTP date", () => {
    expect(GenericHttp.parseRetryAfter("2", now)).toBe(2000)
    expect(GenericHttp.parseRetryAfter("Wed, 01 Jan 2025 12:00:30 GMT", now)).toBe(30_000)
    expect(GenericHttp.parseRetryAfter("soon", now)).toBeUndefined()
  })

  it("treats a 2xx without a messageId as provider_unavailable", () => {
    expect(GenericHttp.classifyResponse(200, {}, "{}", now)).toMatchObject({
      _tag: "Transient",
      reason: "provider_unavailable"
    })
    expect(GenericHttp.classifyResponse(202, {}, "not json", now)).toMatchObject({ _tag: "Transient" })
  })

  it("keeps the provider's error code for other rejections", () => {
    const body = JSON.stringify({ error: { code: "blocked_content", message: "no" } })
    expect(GenericHttp.classifyResponse(422, {}, body, now)).toMatchObject({
      _tag: "Permanent",
      reason: "rejected",
      code: "blocked_content"
    })
  })
})

// ---------------------------------------------------------------------------------------------

const nowMs = Date.UTC(2025, 0, 1, 12, 0, 0)
const nowSeconds = nowMs / 1000

const signed = (
  payload: string,
  options: { readonly secret?: string; readonly timestamp?: number; readonly body?: string } = {}
): InboundWebhook => {
  const timestamp = options.timestamp ?? nowSeconds
  return {
    url: "/webhooks/dlr/sim",
    body: options.body ?? payload,
    headers: {
      "content-type": "application/json",
      "x-signature-timestamp": String(timestamp),
      "x-signature": GenericHttp.signDeliveryReport(options.secret ?? webhookSecret, payload, timestamp)
    }
  }
}

const report = (status: string, extra: Record<string, string> = {}) =>
  JSON.stringify({
    messageId: "sim-1",
    reference: "msg-1",
    status,
    timestamp: "2025-01-01T12:00:00Z",
    ...extra
  })

describe("GenericHttp.parseDeliveryReport", () => {
  const adapter = GenericHttp.make(
    { id: "sim", baseUrl: "http://127.0.0.1:9", apiKey, webhookSecret },
    { now: () => nowMs }
  )

  it.scoped("maps each status to an outcome", () =>
    Effect.gen(function* () {
      const { parseDeliveryReport } = yield* adapter
      const parse = (status: string, extra?: Record<string, string>) =>
        Either.getOrThrow(parseDeliveryReport(signed(report(status, extra))))

      expect(parse("delivered")).toEqual({
        providerMessageId: "sim-1",
        reference: "msg-1",
        outcome: "delivered",
        rawStatus: "delivered"
      })
      for (const status of ["failed", "undelivered", "expired", "UNDELIVERED"]) {
        expect(parse(status)).toMatchObject({
          outcome: "failed",
          failureReason: "undeliverable",
          rawStatus: status
        })
      }
      expect(parse("rejected")).toMatchObject({ outcome: "failed", failureReason: "rejected" })
      expect(parse("invalid")).toMatchObject({ outcome: "failed", failureReason: "invalid_number" })
      expect(parse("failed", { code: "invalid_number" })).toMatchObject({
        outcome: "failed",
        failureReason: "invalid_number",
        code: "invalid_number"
      })
      for (const status of ["accepted", "queued", "sent", "buffered"]) {
        const parsed = parse(status)
        expect(parsed.outcome).toBe("pending")
        expect(parsed.failureReason).toBeUndefined()
      }
    })
  )

  it.scoped("accepts a timestamp within five minutes and header names in any case", () =>
    Effect.gen(function* () {
      const { parseDeliveryReport } = yield* adapter
      const webhook = signed(report("delivered"), { timestamp: nowSeconds - 299 })
      const shouting = {
        ...webhook,
        headers: {
          "X-Signature-Timestamp": webhook.headers["x-signature-timestamp"],
          "X-Signature": webhook.headers["x-signature"]
        }
      }
      expect(Either.isRight(parseDeliveryReport(webhook))).toBe(true)
      expect(Either.isRight(parseDeliveryReport(shouting))).toBe(true)
    })
  )

  it.scoped("refuses what is not signed with our secret, stale or altered", () =>
    Effect.gen(function* () {
      const { parseDeliveryReport } = yield* adapter
      const reasonOf = (webhook: InboundWebhook) =>
        Either.match(parseDeliveryReport(webhook), { onLeft: (e) => e.reason, onRight: () => "accepted" })
      const payload = report("delivered")

      expect(reasonOf(signed(payload, { secret: "someone-else" }))).toBe("BadSignature")
      expect(reasonOf(signed(payload, { timestamp: nowSeconds - 301 }))).toBe("BadSignature")
      expect(reasonOf(signed(payload, { timestamp: nowSeconds + 301 }))).toBe("BadSignature")
      expect(reasonOf(signed(payload, { body: payload.replace("delivered", "rejected") }))).toBe(
        "BadSignature"
      )
      expect(reasonOf({ ...signed(payload), headers: {} })).toBe("BadSignature")
      expect(
        reasonOf({ ...signed(payload), headers: { ...signed(payload).headers, "x-signature": "sha256=zz" } })
      ).toBe("BadSignature")
    })
  )

  it.scoped("a correctly signed body that is not a report is Malformed", () =>
    Effect.gen(function* () {
      const { parseDeliveryReport } = yield* adapter
      const notJson = parseDeliveryReport(signed("{not json"))
      const noId = parseDeliveryReport(signed(JSON.stringify({ status: "delivered" })))
      expect(Either.isLeft(notJson) && notJson.left.reason).toBe("Malformed")
      expect(Either.isLeft(noId) && noId.left).toMatchObject({ reason: "Malformed" })
      if (Either.isLeft(noId)) expect(noId.left.message).toContain("messageId")
    })
  )
})

describe("GenericHttp's signature covers the bytes the provider sent (issue 12)", () => {
  const adapter = GenericHttp.make(
    { id: "sim", baseUrl: "http://127.0.0.1:9", apiKey, webhookSecret },
    { now: () => nowMs }
  )
  // a report whose body holds a byte that is not UTF-8: decoding it to text changes the bytes
  const rawBody = Buffer.concat([
    Buffer.from('{"messageId":"sim-1","reference":"msg-1","status":"delivered","note":"'),
    Buffer.from([0xff]),
    Buffer.from('","timestamp":"2025-01-01T12:00:00Z"}')
  ])
  const headers = {
    "content-type": "application/json",
    "x-signature-timestamp": String(nowSeconds),
    "x-signature": GenericHttp.signDeliveryReport(webhookSecret, rawBody, nowSeconds)
  }

  it.scoped("a report signed over its raw bytes verifies against those bytes", () =>
    Effect.gen(function* () {
      const { parseDeliveryReport } = yield* adapter
      const parsed = parseDeliveryReport({ url: "/x", headers, body: rawBody.toString("utf8"), rawBody })
      expect(Either.isRight(parsed) && parsed.right.outcome).toBe("delivered")
    })
  )

  it.scoped("the decoded text alone no longer matches: the bytes are what was signed", () =>
    Effect.gen(function* () {
      const { parseDeliveryReport } = yield* adapter
      const parsed = parseDeliveryReport({ url: "/x", headers, body: rawBody.toString("utf8") })
      expect(Either.isLeft(parsed) && parsed.left.reason).toBe("BadSignature")
    })
  )
})

describe("generic-http: the lean report decoder against WireReport", () => {
  const schemaDecode = Schema.decodeUnknownEither(Schema.parseJson(GenericHttp.WireReport))
  const fieldValue = fc.oneof(
    fc.string(),
    fc.constant(""),
    fc.integer(),
    fc.boolean(),
    fc.constant(null),
    fc.array(fc.string(), { maxLength: 2 })
  )
  const anyBody = fc.oneof(
    // mostly objects with the report's keys, right or wrong, plus unknown ones
    fc
      .record(
        {
          messageId: fieldValue,
          reference: fieldValue,
          status: fieldValue,
          code: fieldValue,
          timestamp: fieldValue,
          other: fieldValue
        },
        { requiredKeys: [] }
      )
      .map((value) => JSON.stringify(value)),
    fc.json(),
    fc.string()
  )

  it("decodes exactly what the Schema decodes, to the same report, and refuses what it refuses", () =>
    fc.assert(
      fc.property(anyBody, (body) => {
        const lean = GenericHttp.leanWireReport(body)
        const schema = schemaDecode(body)
        if (Either.isRight(schema)) expect(lean).toStrictEqual(schema.right)
        else expect(lean).toBeUndefined()
      }),
      { numRuns: 3000 }
    ))

  it("a refused report still says which field is wrong (the Schema's words)", () => {
    const report = GenericHttp.parseDeliveryReport(
      webhookSecret,
      signed(JSON.stringify({ messageId: "p-1", status: "" })),
      nowMs
    )
    expect(Either.isLeft(report) && report.left.message).toMatch(/^status: /)
  })
})
