import { createServer as createHttpServer } from "node:http"
import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, Either, Layer, Queue } from "effect"
import twilio from "twilio"
import type {
  DeliveryReport,
  InboundWebhook,
  InvalidDeliveryReport,
  OutboundSms,
  ProviderAdapter
} from "../../src/providers/ProviderAdapter.js"
import * as Simulator from "../../src/providers/Simulator.js"
import * as Twilio from "../../src/providers/Twilio.js"
import { serveOnLoopback } from "../support/httpServer.js"

const accountSid = `AC${"0123456789abcdef".repeat(2)}`
const authToken = "test-auth-token"

const sms: OutboundSms = {
  messageId: "msg-1",
  to: "+447700900123",
  from: "+15005550006",
  body: "hello",
  callbackUrl: "http://127.0.0.1:9/dlr"
}

const config = (baseUrl: string, overrides: Partial<Twilio.TwilioConfig> = {}): Twilio.TwilioConfig => ({
  id: "twilio",
  baseUrl,
  accountSid,
  authToken,
  ...overrides
})

const startSim = (options: Partial<Simulator.SimulatorOptions> = {}) =>
  Simulator.start({
    format: "twilio",
    apiKey: authToken,
    webhookSecret: "unused-by-twilio",
    account: accountSid,
    seed: 7,
    dlr: { enabled: false },
    ...options
  })

/** One simulator per scenario, DLRs off: these tests are about the submit answer. */
const submitAgainst = (
  options: Partial<Simulator.SimulatorOptions>,
  overrides: Partial<Twilio.TwilioConfig> = {},
  message: OutboundSms = sms
) =>
  Effect.gen(function* () {
    const sim = yield* startSim(options)
    const adapter = yield* Twilio.make(config(sim.url, overrides))
    return yield* adapter.submit(message)
  })

/** The gateway's webhook reduced to its core: the full URL called, the headers, the raw body. */
const startReceiver = (adapter: ProviderAdapter) =>
  Effect.gen(function* () {
    const received = yield* Queue.unbounded<Either.Either<DeliveryReport, InvalidDeliveryReport>>()
    let port = 0
    const server = createHttpServer((req, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (chunk: Buffer) => chunks.push(chunk))
      req.on("end", () => {
        const headers: Record<string, string | undefined> = {}
        for (const [key, value] of Object.entries(req.headers)) {
          headers[key] = Array.isArray(value) ? value.join(", ") : value
        }
        const report = adapter.parseDeliveryReport({
          headers,
          body: Buffer.concat(chunks).toString("utf8"),
          url: `http://127.0.0.1:${port}${req.url ?? ""}`
        })
        Queue.unsafeOffer(received, report)
        res.writeHead(Either.isRight(report) ? 204 : 401).end()
      })
    })
    port = yield* serveOnLoopback(server)
    return { received, callbackUrl: `http://127.0.0.1:${port}/v1/providers/twilio/delivery-reports` }
  })

// live services: the simulator runs on the real clock
layer(Layer.empty, { excludeTestServices: true })("Twilio.submit against the simulator", (it) => {
  it.scoped("sends the Messages API form with Basic auth and the reference in StatusCallback", () =>
    Effect.gen(function* () {
      const sim = yield* startSim()
      const adapter = yield* Twilio.make(config(`${sim.url}/`))
      expect(adapter.type).toBe("twilio")
      yield* adapter.submit(sms)
      expect(sim.submissions("msg-1")).toMatchObject([
        { seq: 1, reference: "msg-1", to: sms.to, body: "hello", outcome: "accepted" }
      ])
    })
  )

  it.scoped("sends through a Messaging Service when the message names no sender", () =>
    Effect.gen(function* () {
      const result = yield* submitAgainst(
        {},
        { messagingServiceSid: `MG${"a".repeat(32)}` },
        { ...sms, from: undefined }
      )
      expect(result._tag).toBe("Accepted")
    })
  )

  it.scoped("no sender at all is Permanent rejected with Twilio's code", () =>
    Effect.gen(function* () {
      const result = yield* submitAgainst({}, {}, { ...sms, from: undefined })
      expect(result).toMatchObject({ _tag: "Permanent", reason: "rejected", code: "21603" })
    })
  )

  // a wrong auth token is the contract's (test/contracts/); a wrong account sid is Twilio's own
  it.scoped("a wrong account sid is Permanent rejected (auth)", () =>
    Effect.gen(function* () {
      const sim = yield* startSim()
      const wrongAccount = yield* Twilio.make(config(sim.url, { accountSid: `AC${"f".repeat(32)}` }))
      expect(yield* wrongAccount.submit(sms)).toMatchObject({
        _tag: "Permanent",
        reason: "rejected",
        code: "auth"
      })
      expect(sim.stats()).toMatchObject({ submissions: 1, unauthorized: 1, accepted: 0 })
    })
  )

  it.scoped("the simulator's signed status callbacks verify, reference included", () =>
    Effect.gen(function* () {
      const sim = yield* startSim({
        dlr: {
          outcomes: { delivered: 1, undelivered: 1, invalid: 1, rejected: 1 },
          delayMs: { min: 0, max: 10 }
        }
      })
      const adapter = yield* Twilio.make(config(sim.url))
      const { received, callbackUrl } = yield* startReceiver(adapter)
      const ids = ["msg-1", "msg-2", "msg-3", "msg-4", "msg-5", "msg-6", "msg-7", "msg-8"]
      const sids = new Map<string, string>()
      for (const messageId of ids) {
        const result = yield* adapter.submit({ ...sms, messageId, callbackUrl })
        if (result._tag === "Accepted") sids.set(messageId, result.providerMessageId)
      }
      expect(sids.size).toBe(ids.length)
      const reports = yield* Effect.forEach(ids, () => Effect.flatMap(Queue.take(received), (r) => r))
      for (const report of reports) {
        expect(report.reference).toBeDefined()
        expect(sids.get(report.reference ?? "")).toBe(report.providerMessageId)
        const expected = {
          delivered: { outcome: "delivered" },
          undelivered: { outcome: "failed", failureReason: "undeliverable", code: "30003" },
          failed: { outcome: "failed", failureReason: "rejected", code: "30007" }
        }[report.rawStatus]
        if (report.code === "30005")
          expect(report).toMatchObject({ outcome: "failed", failureReason: "invalid_number" })
        else expect(report).toMatchObject(expected ?? { rawStatus: "unexpected" })
      }
      yield* sim.awaitIdle
      expect(sim.stats()).toMatchObject({ accepted: ids.length, dlrSent: ids.length, dlrFailed: 0 })
    })
  )
})

describe("Twilio.classifyResponse", () => {
  const now = Date.UTC(2025, 0, 1, 12, 0, 0)
  const error = (code: number, message: string, status: number) => JSON.stringify({ code, message, status })

  it("maps Twilio's error codes", () => {
    expect(Twilio.classifyResponse(201, {}, JSON.stringify({ sid: "SM1", status: "queued" }), now)).toEqual({
      _tag: "Accepted",
      providerMessageId: "SM1"
    })
    expect(Twilio.classifyResponse(201, {}, "{}", now)).toMatchObject({
      _tag: "Transient",
      reason: "provider_unavailable"
    })
    expect(Twilio.classifyResponse(400, {}, error(21614, "not a mobile number", 400), now)).toMatchObject({
      _tag: "Permanent",
      reason: "invalid_number",
      code: "21614"
    })
    expect(Twilio.classifyResponse(400, {}, error(21610, "unsubscribed recipient", 400), now)).toMatchObject({
      _tag: "Permanent",
      reason: "rejected",
      code: "21610"
    })
    expect(Twilio.classifyResponse(401, {}, error(20003, "Authenticate", 401), now)).toMatchObject({
      _tag: "Permanent",
      reason: "rejected",
      code: "auth"
    })
    expect(Twilio.classifyResponse(404, {}, error(20404, "not found", 404), now)).toMatchObject({
      _tag: "Transient",
      reason: "provider_unavailable"
    })
    expect(Twilio.classifyResponse(500, {}, "oops", now)).toMatchObject({
      _tag: "Transient",
      reason: "http_5xx"
    })
  })

  it("honours Retry-After on a 429", () => {
    expect(
      Twilio.classifyResponse(429, { "retry-after": "3" }, error(20429, "Too Many Requests", 429), now)
    ).toEqual({
      _tag: "Transient",
      reason: "throttled",
      detail: "HTTP 429: Too Many Requests (code 20429)",
      retryAfterMs: 3000
    })
  })
})

// ---------------------------------------------------------------------------------------------

const callbackUrl = "https://gateway.example/v1/providers/twilio/delivery-reports?ref=msg-1"

const callback = (
  params: Record<string, string>,
  options: { readonly url?: string; readonly signedUrl?: string } = {}
): InboundWebhook => {
  const url = options.url ?? callbackUrl
  return {
    url,
    body: new URLSearchParams(params).toString(),
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      "x-twilio-signature": Twilio.signStatusCallback(authToken, options.signedUrl ?? url, params)
    }
  }
}

const status = (messageStatus: string, errorCode?: string): Record<string, string> => ({
  AccountSid: accountSid,
  ApiVersion: "2010-04-01",
  From: "+15005550006",
  MessageSid: "SM123",
  MessageStatus: messageStatus,
  SmsSid: "SM123",
  SmsStatus: messageStatus,
  To: "+447700900123",
  ...(errorCode !== undefined ? { ErrorCode: errorCode } : {})
})

describe("Twilio.parseStatusCallback", () => {
  const parse = (webhook: InboundWebhook) => Twilio.parseStatusCallback(authToken, webhook)
  const reasonOf = (webhook: InboundWebhook) =>
    Either.match(parse(webhook), { onLeft: (e) => e.reason, onRight: () => "accepted" })

  it("maps each status and error code, and reads the reference from the URL", () => {
    const report = (messageStatus: string, errorCode?: string) =>
      Either.getOrThrow(parse(callback(status(messageStatus, errorCode))))

    expect(report("delivered")).toEqual({
      providerMessageId: "SM123",
      reference: "msg-1",
      outcome: "delivered",
      rawStatus: "delivered"
    })
    expect(report("read")).toMatchObject({ outcome: "delivered" })
    for (const pending of ["accepted", "queued", "sending", "sent", "scheduled"]) {
      const parsed = report(pending)
      expect(parsed.outcome).toBe("pending")
      expect(parsed.failureReason).toBeUndefined()
    }
    for (const code of ["30005", "30006", "21211"]) {
      expect(report("undelivered", code)).toMatchObject({
        outcome: "failed",
        failureReason: "invalid_number",
        code
      })
    }
    expect(report("undelivered", "30003")).toMatchObject({ failureReason: "undeliverable", code: "30003" })
    expect(report("failed", "30008")).toMatchObject({ failureReason: "undeliverable", code: "30008" })
    expect(report("failed")).toMatchObject({ outcome: "failed", failureReason: "undeliverable" })
    expect(report("failed", "21610")).toMatchObject({ failureReason: "rejected" })
    expect(report("undelivered", "30007")).toMatchObject({ failureReason: "rejected" })
    expect(report("delivered", "0").code).toBeUndefined()
  })

  it("reads older SmsSid/SmsStatus callbacks, and works without a reference", () => {
    const params = { SmsSid: "SM9", SmsStatus: "delivered", AccountSid: accountSid }
    const url = "https://gateway.example/dlr"
    expect(Either.getOrThrow(parse(callback(params, { url })))).toEqual({
      providerMessageId: "SM9",
      outcome: "delivered",
      rawStatus: "delivered"
    })
  })

  it("accepts the URL with or without the scheme's default port, as Twilio does", () => {
    const withPort = "https://gateway.example:443/v1/providers/twilio/delivery-reports?ref=msg-1"
    expect(reasonOf(callback(status("delivered"), { url: withPort, signedUrl: callbackUrl }))).toBe(
      "accepted"
    )
    expect(reasonOf(callback(status("delivered"), { url: callbackUrl, signedUrl: withPort }))).toBe(
      "accepted"
    )
  })

  // another token, no or an empty signature, an altered status: the contract's (test/contracts/)
  it("refuses a callback with a parameter added, or for another URL", () => {
    const signed = callback(status("delivered"))
    expect(reasonOf(signed)).toBe("accepted")
    expect(reasonOf({ ...signed, body: `${signed.body}&ErrorCode=30003` })).toBe("BadSignature")
    expect(reasonOf({ ...signed, url: callbackUrl.replace("msg-1", "msg-2") })).toBe("BadSignature")
    expect(reasonOf({ ...signed, url: callbackUrl.replace("https:", "http:") })).toBe("BadSignature")
  })
})

describe("X-Twilio-Signature against the official twilio package", () => {
  const cases: ReadonlyArray<{ readonly url: string; readonly params: Record<string, string> }> = [
    { url: callbackUrl, params: status("delivered") },
    { url: callbackUrl, params: status("undelivered", "30003") },
    { url: "https://gateway.example/dlr", params: {} },
    {
      url: "http://127.0.0.1:8080/v1/providers/t/delivery-reports?ref=0b8e1c54-8c6c-5b7e-9d6a-1f0e2d3c4b5a",
      params: { Body: "héllo & ünïcode = ✓ + spaces", To: "+447700900123", Empty: "", a: "1", B: "2", _: "3" }
    },
    { url: "https://gateway.example/dlr?x=1&y=a%20b", params: { MessageSid: "SM1", MessageStatus: "sent" } }
  ]

  it("our signatures are the package's, and each side accepts the other's", () => {
    for (const { url, params } of cases) {
      const ours = Twilio.signStatusCallback(authToken, url, params)
      const theirs = twilio.getExpectedTwilioSignature(authToken, url, params)
      expect(ours).toBe(theirs)
      expect(twilio.validateRequest(authToken, ours, url, params)).toBe(true)
      expect(Twilio.verifySignature(authToken, theirs, url, params)).toBe(true)
      expect(twilio.validateRequest("another-token", ours, url, params)).toBe(false)
      expect(Twilio.verifySignature("another-token", theirs, url, params)).toBe(false)
    }
  })

  it("repeated parameters sign alike", () => {
    const params = { Tag: ["b", "a", "b"], MessageSid: "SM1" }
    const url = "https://gateway.example/dlr"
    expect(Twilio.signStatusCallback(authToken, url, params)).toBe(
      twilio.getExpectedTwilioSignature(authToken, url, params)
    )
    const body = "MessageSid=SM1&Tag=b&Tag=a&Tag=b"
    expect(Twilio.formParams(body)).toEqual({ MessageSid: "SM1", Tag: ["b", "a", "b"] })
  })

  it("both accept the other's port variants", () => {
    const url = "https://gateway.example/dlr?ref=msg-1"
    const withPort = "https://gateway.example:443/dlr?ref=msg-1"
    const params = status("delivered")
    const theirs = twilio.getExpectedTwilioSignature(authToken, withPort, params)
    expect(twilio.validateRequest(authToken, theirs, url, params)).toBe(true)
    expect(Twilio.verifySignature(authToken, theirs, url, params)).toBe(true)
  })

  it("both accept a URL that only normalisation makes match", () => {
    const received = "https://Gateway.Example/dlr?ref=msg-1"
    const params = status("delivered")
    const theirs = twilio.getExpectedTwilioSignature(
      authToken,
      "https://gateway.example/dlr?ref=msg-1",
      params
    )
    expect(twilio.validateRequest(authToken, theirs, received, params)).toBe(true)
    expect(Twilio.verifySignature(authToken, theirs, received, params)).toBe(true)
  })

  it("parseStatusCallback accepts a body signed by the package", () => {
    const params = status("delivered")
    const body = new URLSearchParams(params).toString()
    const webhook: InboundWebhook = {
      url: callbackUrl,
      body,
      headers: { "x-twilio-signature": twilio.getExpectedTwilioSignature(authToken, callbackUrl, params) }
    }
    expect(Either.getOrThrow(Twilio.parseStatusCallback(authToken, webhook))).toMatchObject({
      providerMessageId: "SM123",
      reference: "msg-1",
      outcome: "delivered"
    })
  })
})
