import { createServer as createHttpServer } from "node:http"
import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, Either, Layer, Queue } from "effect"
import type {
  DeliveryReport,
  InboundWebhook,
  InvalidDeliveryReport,
  OutboundSms,
  ProviderAdapter
} from "../../src/providers/ProviderAdapter.js"
import * as Simulator from "../../src/providers/Simulator.js"
import * as Vonage from "../../src/providers/Vonage.js"
import { serveOnLoopback } from "../support/httpServer.js"

const apiKey = "abcd1234"
const apiSecret = "test-api-secret"
const signatureSecret = "test-signature-secret"

const sms: OutboundSms = {
  messageId: "msg-1",
  to: "+447700900123",
  from: "ACME",
  body: "hello",
  callbackUrl: "http://127.0.0.1:9/dlr"
}

const config = (baseUrl: string, overrides: Partial<Vonage.VonageConfig> = {}): Vonage.VonageConfig => ({
  id: "vonage",
  baseUrl,
  apiKey,
  apiSecret,
  signatureSecret,
  ...overrides
})

const startSim = (options: Partial<Simulator.SimulatorOptions> = {}) =>
  Simulator.start({
    format: "vonage",
    apiKey: apiSecret,
    webhookSecret: signatureSecret,
    account: apiKey,
    seed: 11,
    dlr: { enabled: false },
    ...options
  })

const submitAgainst = (
  options: Partial<Simulator.SimulatorOptions>,
  overrides: Partial<Vonage.VonageConfig> = {},
  message: OutboundSms = sms
) =>
  Effect.gen(function* () {
    const sim = yield* startSim(options)
    const adapter = yield* Vonage.make(config(sim.url, overrides))
    return yield* adapter.submit(message)
  })

/** The gateway's webhook reduced to its core: verify with `parseDeliveryReport`, answer 204 or 401. */
const startReceiver = (adapter: ProviderAdapter) =>
  Effect.gen(function* () {
    const received = yield* Queue.unbounded<Either.Either<DeliveryReport, InvalidDeliveryReport>>()
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
          url: req.url ?? ""
        })
        Queue.unsafeOffer(received, report)
        res.writeHead(Either.isRight(report) ? 204 : 401).end()
      })
    })
    const port = yield* serveOnLoopback(server)
    return { received, callbackUrl: `http://127.0.0.1:${port}/v1/providers/vonage/delivery-reports` }
  })

layer(Layer.empty, { excludeTestServices: true })("Vonage.submit against the simulator", (it) => {
  it("builds the SMS API form: plus-less to, client-ref, callback, unicode when needed", () => {
    const form = Vonage.submitForm({ apiKey, apiSecret }, sms)
    expect(Object.fromEntries(form)).toEqual({
      api_key: apiKey,
      api_secret: apiSecret,
      from: "ACME",
      to: "447700900123",
      text: "hello",
      type: "text",
      "client-ref": "msg-1",
      callback: sms.callbackUrl,
      "status-report-req": "1"
    })
    expect(Vonage.submitForm({ apiKey, apiSecret }, { ...sms, body: "Привет ☃" }).get("type")).toBe("unicode")
    const fallback = Vonage.submitForm({ apiKey, apiSecret, from: "DEFAULT" }, { ...sms, from: undefined })
    expect(fallback.get("from")).toBe("DEFAULT")
  })

  it.scoped("no sender is Permanent rejected with Vonage's status 2", () =>
    Effect.gen(function* () {
      const result = yield* submitAgainst({}, {}, { ...sms, from: undefined })
      expect(result).toMatchObject({ _tag: "Permanent", reason: "rejected", code: "2" })
    })
  )

  // a wrong api secret is the contract's (test/contracts/); a key of another account is Vonage's own
  it.scoped("another account's api key is Permanent rejected (auth)", () =>
    Effect.gen(function* () {
      expect(yield* submitAgainst({}, { apiKey: "another" })).toMatchObject({
        _tag: "Permanent",
        reason: "rejected",
        code: "auth"
      })
    })
  )

  it.scoped("the simulator's signed DLRs verify, reference included, for every signature method", () =>
    Effect.gen(function* () {
      for (const signatureMethod of ["md5hash", "sha256", "sha512"] as const) {
        yield* Effect.scoped(
          Effect.gen(function* () {
            const sim = yield* startSim({
              signatureMethod,
              dlr: { outcomes: { delivered: 1, undelivered: 1, invalid: 1, rejected: 1, expired: 1 } }
            })
            const adapter = yield* Vonage.make(config(sim.url, { signatureMethod }))
            const { received, callbackUrl } = yield* startReceiver(adapter)
            const ids = ["msg-1", "msg-2", "msg-3", "msg-4", "msg-5", "msg-6"]
            const byReference = new Map<string, string>()
            for (const messageId of ids) {
              const result = yield* adapter.submit({ ...sms, messageId, callbackUrl })
              if (result._tag === "Accepted") byReference.set(messageId, result.providerMessageId)
            }
            const reports = yield* Effect.forEach(ids, () => Effect.flatMap(Queue.take(received), (r) => r))
            for (const report of reports) {
              expect(byReference.get(report.reference ?? "")).toBe(report.providerMessageId)
              const expected = {
                delivered: { outcome: "delivered" },
                rejected: { outcome: "failed", failureReason: "rejected", code: "6" },
                expired: { outcome: "failed", failureReason: "undeliverable", code: "1" }
              }[report.rawStatus]
              if (report.rawStatus === "failed") {
                expect(report).toMatchObject(
                  report.code === "3"
                    ? { outcome: "failed", failureReason: "invalid_number" }
                    : { outcome: "failed", failureReason: "undeliverable", code: "2" }
                )
              } else expect(report).toMatchObject(expected ?? { rawStatus: "unexpected" })
            }
            yield* sim.awaitIdle
            expect(sim.stats()).toMatchObject({ dlrSent: ids.length, dlrFailed: 0 })
          })
        )
      }
    })
  )
})

describe("Vonage.classifyResponse", () => {
  const now = Date.UTC(2025, 0, 1, 12, 0, 0)
  const answer = (...parts: Array<Record<string, string>>) =>
    JSON.stringify({ "message-count": String(parts.length), messages: parts })
  const part = (status: string, errorText?: string) => ({
    status,
    ...(errorText !== undefined ? { "error-text": errorText } : {})
  })

  it("maps each per-message status", () => {
    const classify = (status: string, errorText?: string) =>
      Vonage.classifyResponse(200, {}, answer(part(status, errorText)), now)
    expect(classify("1")).toMatchObject({ _tag: "Transient", reason: "throttled" })
    expect(classify("10")).toMatchObject({ _tag: "Transient", reason: "throttled" })
    expect(classify("5")).toMatchObject({ _tag: "Transient", reason: "http_5xx" })
    expect(classify("9", "Partner quota exceeded")).toMatchObject({
      _tag: "Transient",
      reason: "provider_unavailable"
    })
    expect(classify("4", "Bad Credentials")).toMatchObject({
      _tag: "Permanent",
      reason: "rejected",
      code: "auth"
    })
    expect(classify("6")).toMatchObject({ _tag: "Permanent", reason: "invalid_number", code: "6" })
    expect(classify("33")).toMatchObject({ _tag: "Permanent", reason: "invalid_number", code: "33" })
    expect(classify("3", "Invalid to address")).toMatchObject({ reason: "invalid_number", code: "3" })
    expect(classify("3", "Invalid from address")).toMatchObject({ reason: "rejected", code: "3" })
    for (const status of ["2", "7", "8", "15", "29"]) {
      expect(classify(status)).toMatchObject({ _tag: "Permanent", reason: "rejected", code: status })
    }
  })

  it("accepts a message when any part went through", () => {
    expect(
      Vonage.classifyResponse(
        200,
        {},
        answer({ status: "0", "message-id": "0A1" }, { status: "0", "message-id": "0A2" }),
        now
      )
    ).toEqual({ _tag: "Accepted", providerMessageId: "0A1" })
    expect(Vonage.classifyResponse(200, {}, "{}", now)).toMatchObject({
      _tag: "Transient",
      reason: "provider_unavailable"
    })
  })

  it("reads the HTTP status when there is no per-message answer", () => {
    expect(Vonage.classifyResponse(429, { "retry-after": "2" }, "", now)).toMatchObject({
      _tag: "Transient",
      reason: "throttled",
      retryAfterMs: 2000
    })
    expect(Vonage.classifyResponse(502, {}, "", now)).toMatchObject({ _tag: "Transient", reason: "http_5xx" })
    expect(Vonage.classifyResponse(401, {}, "", now)).toMatchObject({ _tag: "Permanent", code: "auth" })
    expect(Vonage.classifyResponse(404, {}, "", now)).toMatchObject({ reason: "provider_unavailable" })
  })
})

// ---------------------------------------------------------------------------------------------

describe("Vonage signature", () => {
  // the published vectors of Vonage's own Node SDK (vonage-node-sdk packages/sms/__tests__/
  // __dataSets__/signature.ts), one per signature method
  const params = {
    "message-timestamp": "2013-11-21 15:27:30",
    messageId: "020000001B0FE827",
    msisdn: "14843472194",
    text: "Test again",
    timestamp: "1385047698",
    to: "13239877404",
    type: "text"
  }
  const secret = "my_secret_key_for_testing"
  const vectors: ReadonlyArray<readonly [Vonage.SignatureMethod, string]> = [
    ["md5hash", "d2e7b1dc968737c5998ad624e02f90b7"],
    ["md5", "DDEBD46008C2D4E93CCE578A332A52D5"],
    ["sha1", "27D0D05C2876C7CB1720DBCDBA4D492E1E55C09A"],
    ["sha256", "DDB8397C2B90AAC7F3882D306475C9A5058C92322EEF43C92B298B6E0FC0D330"],
    [
      "sha512",
      "E0D3C650F8C9D1A5C174D10DDDBFB003E561F59B265616208B0487C5D819481CD3C311D59CF6165ECD1139622D5BA3A256C0D763AC4A9AD9144B5A426B94FE82"
    ]
  ]

  it("matches Vonage's SDK vectors for every method", () => {
    for (const [method, signature] of vectors) {
      expect(Vonage.signParams(secret, method, params).toUpperCase()).toBe(signature.toUpperCase())
      expect(Vonage.signParams(secret, method, { ...params, sig: "ignored" })).toBe(
        Vonage.signParams(secret, method, params)
      )
    }
  })

  it("replaces & and = in values with _ before signing", () => {
    expect(Vonage.signParams(secret, "sha256", { text: "You & Me = Love" })).toBe(
      Vonage.signParams(secret, "sha256", { text: "You _ Me _ Love" })
    )
  })

  it("verifies the SDK's signed vector when the clock agrees (an inbound message, not a receipt)", () => {
    const webhook: InboundWebhook = {
      url: "/dlr",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        ...params,
        sig: "DDB8397C2B90AAC7F3882D306475C9A5058C92322EEF43C92B298B6E0FC0D330"
      })
    }
    const at = 1385047698 * 1000
    // the signature passes; the parameters carry no delivery status
    const fresh = Vonage.parseDeliveryReceipt(secret, "sha256", webhook, at)
    expect(Either.isLeft(fresh) && fresh.left).toMatchObject({
      reason: "Malformed",
      message: "status: is missing"
    })
    const stale = Vonage.parseDeliveryReceipt(secret, "sha256", webhook, at + 301_000)
    expect(Either.isLeft(stale) && stale.left.reason).toBe("BadSignature")
  })
})

const nowMs = Date.UTC(2025, 0, 1, 12, 0, 0)
const nowSeconds = String(nowMs / 1000)

const receipt = (
  status: string,
  errCode = "0",
  extra: Record<string, string> = {}
): Record<string, string> => ({
  msisdn: "447700900123",
  to: "ACME",
  "network-code": "23410",
  messageId: "0A0000001234567B",
  price: "0.03330000",
  status,
  scts: "2501011200",
  "err-code": errCode,
  "api-key": apiKey,
  "client-ref": "msg-1",
  "message-timestamp": "2025-01-01 12:00:00",
  timestamp: nowSeconds,
  nonce: "5f1b0b5e-0c43-4b8e-9d2d-7c2f0b0b7a11",
  ...extra
})

type Encoding = "json" | "form" | "query"

const signed = (
  params: Record<string, string>,
  options: { readonly method?: Vonage.SignatureMethod; readonly as?: Encoding } = {}
): InboundWebhook => {
  const sig = Vonage.signParams(signatureSecret, options.method ?? "sha256", params)
  const all = { ...params, sig }
  switch (options.as ?? "json") {
    case "json":
      return { url: "/dlr", headers: { "content-type": "application/json" }, body: JSON.stringify(all) }
    case "form":
      return {
        url: "/dlr",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams(all).toString()
      }
    case "query":
      return { url: `/dlr?${new URLSearchParams(all).toString()}`, headers: {}, body: "" }
  }
}

describe("Vonage.parseDeliveryReceipt", () => {
  const parse = (webhook: InboundWebhook, method: Vonage.SignatureMethod = "sha256") =>
    Vonage.parseDeliveryReceipt(signatureSecret, method, webhook, nowMs)
  const reasonOf = (webhook: InboundWebhook) =>
    Either.match(parse(webhook), { onLeft: (e) => e.reason, onRight: () => "accepted" })

  it("maps each status and err-code, with the client-ref as reference", () => {
    const report = (status: string, errCode?: string) =>
      Either.getOrThrow(parse(signed(receipt(status, errCode))))
    expect(report("delivered")).toEqual({
      providerMessageId: "0A0000001234567B",
      reference: "msg-1",
      outcome: "delivered",
      rawStatus: "delivered"
    })
    for (const pending of ["accepted", "buffered", "unknown"]) expect(report(pending).outcome).toBe("pending")
    expect(report("expired", "1")).toMatchObject({
      outcome: "failed",
      failureReason: "undeliverable",
      code: "1"
    })
    expect(report("failed", "2")).toMatchObject({
      outcome: "failed",
      failureReason: "undeliverable",
      code: "2"
    })
    expect(report("failed", "3")).toMatchObject({ failureReason: "invalid_number", code: "3" })
    expect(report("failed", "12")).toMatchObject({ failureReason: "invalid_number" })
    expect(report("rejected", "6")).toMatchObject({ failureReason: "rejected", code: "6" })
    expect(report("failed", "9")).toMatchObject({ failureReason: "rejected" })
    expect(report("rejected", "99")).toMatchObject({ failureReason: "rejected" })
    expect(report("failed", "99")).toMatchObject({ failureReason: "undeliverable" })
  })

  it("reads JSON, form and query receipts, with each signature method", () => {
    for (const as of ["json", "form", "query"] as const) {
      for (const method of ["md5hash", "md5", "sha1", "sha256", "sha512"] as const) {
        expect(Either.getOrThrow(parse(signed(receipt("delivered"), { as, method }), method))).toMatchObject({
          outcome: "delivered",
          reference: "msg-1"
        })
      }
    }
    const noRef = { ...receipt("delivered") }
    delete noRef["client-ref"]
    expect(Either.getOrThrow(parse(signed(noRef))).reference).toBeUndefined()
  })

  // unsigned, another secret, altered, a garbled sig, a stale or future timestamp: the contract's
  // (test/contracts/); what is Vonage's own is here
  it("refuses another signature method, a longer sig, a timestamp that is no number, no JSON", () => {
    const webhook = signed(receipt("delivered"))
    expect(reasonOf(signed(receipt("delivered"), { method: "sha512" }))).toBe("BadSignature")
    expect(reasonOf({ ...webhook, body: webhook.body.replace('"sig":"', '"sig":"00') })).toBe("BadSignature")
    expect(reasonOf(signed(receipt("delivered", "0", { timestamp: "soon" })))).toBe("BadSignature")
    expect(reasonOf({ url: "/dlr", headers: {}, body: "{not json" })).toBe("BadSignature")
    // the signature compares without regard to case
    const upper = {
      ...webhook,
      body: webhook.body.replace(/"sig":"([0-9a-f]+)"/, (_, hex: string) => `"sig":"${hex.toUpperCase()}"`)
    }
    expect(reasonOf(upper)).toBe("accepted")
  })
})
