/**
 * Status queries (issue 14: a lost report, asked for at the report deadline): Twilio's Message
 * resource and Vonage's Reports API read as the delivery report they stand for (final answers), a
 * status that is not final yet, or an error (HTTP failures, malformed answers); and the same calls
 * against the simulator, which answers them from the status it decided for each submission.
 */
import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, Either, Layer } from "effect"
import { decodeProvidersFile } from "../../src/providers/ProviderConfig.js"
import type { OutboundSms, QueriedStatus, StatusQueryError } from "../../src/providers/ProviderAdapter.js"
import * as Simulator from "../../src/providers/Simulator.js"
import * as Twilio from "../../src/providers/Twilio.js"
import * as Vonage from "../../src/providers/Vonage.js"

const ok = (body: unknown, status = 200) => ({ status, headers: {}, text: JSON.stringify(body) })

const right = (result: Either.Either<QueriedStatus, StatusQueryError>) => {
  if (Either.isLeft(result))
    throw new Error(`expected an answer, got ${result.left.reason}: ${result.left.message}`)
  return result.right
}
const reasonOf = (result: Either.Either<QueriedStatus, StatusQueryError>) =>
  Either.isLeft(result) ? result.left.reason : `answered ${JSON.stringify(result.right)}`

// ---------------------------------------------------------------------------------------------

describe("Twilio.parseMessageStatus", () => {
  const sid = `SM${"ab".repeat(16)}`
  const resource = (fields: Record<string, unknown>) => ok({ sid, account_sid: "AC1", ...fields })

  it("reads delivered, read, and failures with their error code, as a status callback reads them", () => {
    expect(
      right(Twilio.parseMessageStatus(sid, resource({ status: "delivered", error_code: null })))
    ).toEqual({
      _tag: "Final",
      report: { providerMessageId: sid, rawStatus: "delivered", outcome: "delivered" }
    })
    expect(right(Twilio.parseMessageStatus(sid, resource({ status: "read" })))).toMatchObject({
      _tag: "Final",
      report: { outcome: "delivered", rawStatus: "read" }
    })
    const failures: ReadonlyArray<readonly [string, unknown, string, string | undefined]> = [
      ["undelivered", 30005, "invalid_number", "30005"],
      ["undelivered", "30006", "invalid_number", "30006"],
      ["failed", 30007, "rejected", "30007"],
      ["failed", 21610, "rejected", "21610"],
      ["undelivered", 30003, "undeliverable", "30003"],
      ["failed", null, "undeliverable", undefined],
      ["failed", 0, "undeliverable", undefined],
      ["canceled", null, "undeliverable", undefined]
    ]
    for (const [status, errorCode, failureReason, code] of failures) {
      const answer = right(Twilio.parseMessageStatus(sid, resource({ status, error_code: errorCode })))
      expect(answer).toEqual({
        _tag: "Final",
        report: {
          providerMessageId: sid,
          rawStatus: status,
          outcome: "failed",
          failureReason,
          ...(code === undefined ? {} : { code })
        }
      })
    }
  })

  it("says a status that is not final yet is not final", () => {
    for (const status of ["queued", "sending", "sent", "accepted", "scheduled", "receiving"]) {
      expect(right(Twilio.parseMessageStatus(sid, resource({ status, error_code: null })))).toEqual({
        _tag: "NotFinal",
        rawStatus: status
      })
    }
  })

  it("refuses a malformed answer", () => {
    const malformed = [
      { status: 200, headers: {}, text: "not json" },
      ok([{ sid, status: "delivered" }]),
      resource({}),
      resource({ status: "" }),
      resource({ status: 3 }),
      ok({ sid: `SM${"cd".repeat(16)}`, status: "delivered" })
    ]
    for (const answer of malformed) expect(reasonOf(Twilio.parseMessageStatus(sid, answer))).toBe("malformed")
  })

  it("reads the HTTP status of an answer that is not 2xx", () => {
    const cases: ReadonlyArray<readonly [number, string]> = [
      [404, "not_found"],
      [401, "auth"],
      [403, "auth"],
      [429, "throttled"],
      [500, "http_5xx"],
      [503, "http_5xx"],
      [302, "unexpected"],
      [400, "unexpected"]
    ]
    for (const [status, reason] of cases) {
      const answer = ok({ code: 20404, message: "The requested resource was not found", status }, status)
      expect(reasonOf(Twilio.parseMessageStatus(sid, answer))).toBe(reason)
    }
    const notFound = Twilio.parseMessageStatus(sid, ok({ code: 20404, message: "nope" }, 404))
    expect(Either.isLeft(notFound) && notFound.left.message).toBe("HTTP 404: nope (code 20404)")
  })

  it("asks for the message's resource", () => {
    expect(Twilio.messageUrl("https://api.twilio.com/", "AC1", "SM2")).toBe(
      "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/SM2.json"
    )
  })
})

describe("Vonage.parseRecords", () => {
  const id = "0A0000001234ABCD"
  const records = (entries: ReadonlyArray<Record<string, unknown>>, extra: Record<string, unknown> = {}) =>
    ok({ request_status: "SUCCESS", account_id: "abcd1234", product: "SMS", records: entries, ...extra })
  const record = (fields: Record<string, unknown>) =>
    records([{ account_id: "abcd1234", message_id: id, direction: "outbound", ...fields }])

  it("reads delivered, and failed, rejected, expired with their error code, as a receipt reads them", () => {
    expect(right(Vonage.parseRecords(id, record({ status: "delivered", error_code: "0" })))).toEqual({
      _tag: "Final",
      report: { providerMessageId: id, rawStatus: "delivered", outcome: "delivered" }
    })
    const failures: ReadonlyArray<readonly [string, unknown, string, string | undefined]> = [
      ["failed", "3", "invalid_number", "3"],
      ["failed", 12, "invalid_number", "12"],
      ["failed", "6", "rejected", "6"],
      ["rejected", "99", "rejected", "99"],
      ["failed", "1", "undeliverable", "1"],
      ["failed", undefined, "undeliverable", undefined],
      ["expired", "1", "undeliverable", "1"]
    ]
    for (const [status, errorCode, failureReason, code] of failures) {
      const answer = right(Vonage.parseRecords(id, record({ status, error_code: errorCode })))
      expect(answer).toEqual({
        _tag: "Final",
        report: {
          providerMessageId: id,
          rawStatus: status,
          outcome: "failed",
          failureReason,
          ...(code === undefined ? {} : { code })
        }
      })
    }
  })

  it("says a status that is not final yet is not final", () => {
    for (const status of ["submitted", "accepted", "buffered", "unknown", "deleted"]) {
      expect(right(Vonage.parseRecords(id, record({ status, error_code: "0" })))).toEqual({
        _tag: "NotFinal",
        rawStatus: status
      })
    }
  })

  it("finds the message's record among others, or the only record when it names no id", () => {
    const mixed = records([
      { message_id: "OTHER", status: "failed", error_code: "3" },
      { message_id: id, status: "delivered" }
    ])
    expect(right(Vonage.parseRecords(id, mixed))).toMatchObject({
      _tag: "Final",
      report: { outcome: "delivered" }
    })
    expect(right(Vonage.parseRecords(id, records([{ status: "delivered" }])))).toMatchObject({
      _tag: "Final"
    })
  })

  it("an id Vonage does not know is not found", () => {
    expect(reasonOf(Vonage.parseRecords(id, records([], { ids_not_found: `OTHER,${id}` })))).toBe("not_found")
    expect(reasonOf(Vonage.parseRecords(id, records([])))).toBe("not_found")
  })

  it("refuses a malformed answer", () => {
    const malformed = [
      { status: 200, headers: {}, text: "not json" },
      ok({ request_status: "SUCCESS" }),
      ok({ records: "none" }),
      record({}),
      record({ status: 4 }),
      records([{ message_id: "OTHER", status: "delivered" }])
    ]
    for (const answer of malformed) expect(reasonOf(Vonage.parseRecords(id, answer))).toBe("malformed")
  })

  it("reads the HTTP status of an answer that is not 2xx", () => {
    const cases: ReadonlyArray<readonly [number, string]> = [
      [401, "auth"],
      [403, "auth"],
      [404, "not_found"],
      [429, "throttled"],
      [500, "http_5xx"],
      [400, "unexpected"]
    ]
    for (const [status, reason] of cases) {
      expect(reasonOf(Vonage.parseRecords(id, ok({ title: "Unauthorized" }, status)))).toBe(reason)
    }
  })

  it("asks the Reports API for the outbound SMS record, at api.nexmo.com unless configured", () => {
    expect(Vonage.defaultReportsBaseUrl).toBe("https://api.nexmo.com")
    expect(Vonage.recordsUrl("https://api.nexmo.com/", "abcd1234", id)).toBe(
      `https://api.nexmo.com/v2/reports/records?account_id=abcd1234&product=SMS&direction=outbound&id=${id}`
    )
  })

  it("takes reportsBaseUrl from the providers file, and refuses one that is not a URL", () => {
    const entry = {
      id: "vonage",
      type: "vonage",
      apiKeyEnv: "K",
      apiSecretEnv: "S",
      signatureSecretEnv: "G",
      from: "ACME"
    }
    const decoded = decodeProvidersFile(
      { providers: [{ ...entry, reportsBaseUrl: "http://127.0.0.1:9" }] },
      "t"
    )
    expect(Either.isRight(decoded) && decoded.right.providers[0]).toMatchObject({
      reportsBaseUrl: "http://127.0.0.1:9"
    })
    const plain = decodeProvidersFile({ providers: [entry] }, "t")
    expect(Either.isRight(plain) && plain.right.providers[0]).not.toHaveProperty("reportsBaseUrl")
    expect(decodeProvidersFile({ providers: [{ ...entry, reportsBaseUrl: "nexmo" }] }, "t")._tag).toBe("Left")
  })
})

// ---------------------------------------------------------------------------------------------
// Against the simulator

const sms: OutboundSms = {
  messageId: "msg-1",
  to: "+447700900123",
  from: "ACME",
  body: "hello",
  callbackUrl: "http://127.0.0.1:9/dlr"
}

const accountSid = `AC${"0123456789abcdef".repeat(2)}`
const authToken = "test-auth-token"
const apiKey = "abcd1234"
const apiSecret = "test-api-secret"

const twilioSim = (dlr: Simulator.DlrOptions = {}) =>
  Simulator.start({
    format: "twilio",
    apiKey: authToken,
    webhookSecret: "unused",
    account: accountSid,
    seed: 3,
    dlr: { enabled: false, ...dlr }
  })

const vonageSim = (dlr: Simulator.DlrOptions = {}) =>
  Simulator.start({
    format: "vonage",
    apiKey: apiSecret,
    webhookSecret: "signature-secret",
    account: apiKey,
    seed: 3,
    dlr: { enabled: false, ...dlr }
  })

const twilioAdapter = (baseUrl: string, overrides: Partial<Twilio.TwilioConfig> = {}) =>
  Twilio.make({ id: "twilio", baseUrl, accountSid, authToken, ...overrides })

const vonageAdapter = (sim: string, overrides: Partial<Vonage.VonageConfig> = {}) =>
  Vonage.make({
    id: "vonage",
    baseUrl: sim,
    reportsBaseUrl: sim,
    apiKey,
    apiSecret,
    signatureSecret: "signature-secret",
    ...overrides
  })

/** Submits through the adapter and answers the provider's id. */
const accepted = (adapter: Effect.Effect.Success<ReturnType<typeof twilioAdapter>>) =>
  Effect.flatMap(adapter.submit(sms), (result) =>
    result._tag === "Accepted" ? Effect.succeed(result.providerMessageId) : Effect.dieMessage(result._tag)
  )

const query = (adapter: Effect.Effect.Success<ReturnType<typeof twilioAdapter>>, id: string) =>
  adapter.queryStatus === undefined
    ? Effect.dieMessage("no queryStatus")
    : Effect.either(adapter.queryStatus(id))

layer(Layer.empty, { excludeTestServices: true })("status queries against the simulator", (it) => {
  it.scoped("twilio: the decided status once final, `sent` before, failures with their code", () =>
    Effect.gen(function* () {
      const delivered = yield* twilioSim()
      const adapter = yield* twilioAdapter(delivered.url)
      const sid = yield* accepted(adapter)
      expect(right(yield* query(adapter, sid))).toEqual({
        _tag: "Final",
        report: { providerMessageId: sid, rawStatus: "delivered", outcome: "delivered" }
      })

      const invalid = yield* twilioSim({ outcomes: { invalid: 1 } })
      const invalidAdapter = yield* twilioAdapter(invalid.url)
      const failed = yield* accepted(invalidAdapter)
      expect(right(yield* query(invalidAdapter, failed))).toMatchObject({
        _tag: "Final",
        report: {
          outcome: "failed",
          failureReason: "invalid_number",
          code: "30005",
          rawStatus: "undelivered"
        }
      })

      // its report not due for a minute: still on its way
      const slow = yield* twilioSim({ delayMs: { min: 60_000, max: 60_000 } })
      const slowAdapter = yield* twilioAdapter(slow.url)
      const pending = yield* accepted(slowAdapter)
      expect(right(yield* query(slowAdapter, pending))).toEqual({ _tag: "NotFinal", rawStatus: "sent" })
    })
  )

  // a silent provider, a stall, a reset or a closed port: the contract's (test/contracts/)
  it.scoped(
    "twilio: an unknown sid is not found, another token is refused, another account sees nothing",
    () =>
      Effect.gen(function* () {
        const sim = yield* twilioSim()
        const adapter = yield* twilioAdapter(sim.url)
        const sid = yield* accepted(adapter)
        expect(reasonOf(yield* query(adapter, `SM${"0".repeat(32)}`))).toBe("not_found")
        const wrongToken = yield* twilioAdapter(sim.url, { authToken: "wrong" })
        expect(reasonOf(yield* query(wrongToken, sid))).toBe("auth")
        // another account does not see this account's messages
        const otherSim = yield* Simulator.start({ format: "twilio", apiKey: authToken, webhookSecret: "x" })
        const other = yield* twilioAdapter(otherSim.url)
        const ours = yield* accepted(other)
        const otherAccount = yield* twilioAdapter(otherSim.url, { accountSid: `AC${"f".repeat(32)}` })
        expect(reasonOf(yield* query(otherAccount, ours))).toBe("not_found")
      })
  )

  it.scoped("vonage: the decided status once final, `accepted` before, failures with their code", () =>
    Effect.gen(function* () {
      const delivered = yield* vonageSim()
      const adapter = yield* vonageAdapter(delivered.url)
      const id = yield* accepted(adapter)
      expect(right(yield* query(adapter, id))).toEqual({
        _tag: "Final",
        report: { providerMessageId: id, rawStatus: "delivered", outcome: "delivered" }
      })

      const rejected = yield* vonageSim({ outcomes: { rejected: 1 } })
      const rejectedAdapter = yield* vonageAdapter(rejected.url)
      const refused = yield* accepted(rejectedAdapter)
      expect(right(yield* query(rejectedAdapter, refused))).toMatchObject({
        _tag: "Final",
        report: { outcome: "failed", failureReason: "rejected", code: "6", rawStatus: "rejected" }
      })

      const slow = yield* vonageSim({ delayMs: { min: 60_000, max: 60_000 } })
      const slowAdapter = yield* vonageAdapter(slow.url)
      const pending = yield* accepted(slowAdapter)
      expect(right(yield* query(slowAdapter, pending))).toEqual({ _tag: "NotFinal", rawStatus: "accepted" })
    })
  )

  it.scoped("vonage: an unknown id is not found, another secret is refused", () =>
    Effect.gen(function* () {
      const sim = yield* vonageSim()
      const adapter = yield* vonageAdapter(sim.url)
      const id = yield* accepted(adapter)
      expect(reasonOf(yield* query(adapter, "0A00000000000000"))).toBe("not_found")
      const wrongSecret = yield* vonageAdapter(sim.url, { apiSecret: "wrong" })
      expect(reasonOf(yield* query(wrongSecret, id))).toBe("auth")
      // the Reports API is where reportsBaseUrl says, not the SMS API's base URL
      const elsewhere = yield* vonageAdapter(sim.url, { reportsBaseUrl: "http://127.0.0.1:1" })
      expect(reasonOf(yield* query(elsewhere, id))).toBe("network")
    })
  )
})
