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

// live services: the simulator runs on the real clock
layer(Layer.empty, { excludeTestServices: true })("GenericHttp.submit against the simulator", (it) => {
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
})

describe("GenericHttp.classifyResponse", () => {
  const now = Date.UTC(2025, 0, 1, 12, 0, 0)

  it("treats a 2xx without a messageId as provider_unavailable", () => {
    expect(GenericHttp.classifyResponse(200, {}, "{}", now)).toMatchObject({
      _tag: "Transient",
      reason: "provider_unavailable"
    })
    expect(GenericHttp.classifyResponse(202, {}, "not json", now)).toMatchObject({ _tag: "Transient" })
  })
})

// ---------------------------------------------------------------------------------------------

const nowMs = Date.UTC(2025, 0, 1, 12, 0, 0)
const nowSeconds = nowMs / 1000

/** A report signed now with our secret (refusals are the contract's: test/contracts/). */
const signed = (payload: string): InboundWebhook => ({
  url: "/webhooks/dlr/sim",
  body: payload,
  headers: {
    "content-type": "application/json",
    "x-signature-timestamp": String(nowSeconds),
    "x-signature": GenericHttp.signDeliveryReport(webhookSecret, payload, nowSeconds)
  }
})

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

  it.scoped("accepts the signature headers' names in any case", () =>
    Effect.gen(function* () {
      const { parseDeliveryReport } = yield* adapter
      const webhook = signed(report("delivered"))
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

  it.scoped("a correctly signed body that is not JSON is Malformed", () =>
    Effect.gen(function* () {
      const { parseDeliveryReport } = yield* adapter
      const notJson = parseDeliveryReport(signed("{not json"))
      expect(Either.isLeft(notJson) && notJson.left.reason).toBe("Malformed")
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
