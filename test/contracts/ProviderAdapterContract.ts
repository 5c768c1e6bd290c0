/**
 * The provider adapter contract: every adapter (generic-http, twilio, vonage) runs this suite, so
 * the behaviours they share are tested once and cannot drift apart. A harness says how to make the
 * adapter against a base URL, how its wire format answers each case, and how its provider signs a
 * delivery report; the suite does the rest against real sockets on 127.0.0.1: a tiny scripted
 * server per case (one port each, closed with the case), and the simulator speaking the harness's
 * wire format for what it already simulates. No mock of undici anywhere.
 *
 * Cases: accepted (the provider's message id read, our reference sent, one call per attempt),
 * permanent (invalid number, rejected, bad credentials; never the number in a detail), throttled
 * with Retry-After (seconds, HTTP date, none, unreadable), 5xx (with and without Retry-After),
 * timeout (no answer within timeoutMs), stall mid-body (headers sent, body never finished),
 * connection reset (before the answer and mid-body), closed port; and the delivery-report webhook:
 * a good report verifies, a forged, altered, unsigned or garbled one is refused, a stale one too
 * where the format signs a timestamp, and a signed report without id or status is Malformed.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import { createServer as createNetServer } from "node:net"
import { describe, expect, it, layer } from "@effect/vitest"
import { Effect, Either, Layer, type Scope } from "effect"
import type {
  InboundWebhook,
  OutboundSms,
  ProviderAdapter,
  SubmitResult
} from "../../src/providers/ProviderAdapter.js"
import * as Simulator from "../../src/providers/Simulator.js"
import { serveOnLoopback } from "../support/httpServer.js"

/** One HTTP answer in the adapter's wire format. */
export interface WireAnswer {
  readonly status: number
  readonly headers?: Readonly<Record<string, string>>
  readonly body: string
}

/** A request the scripted server received. */
export interface ReceivedRequest {
  readonly method: string
  readonly path: string
  readonly headers: Readonly<Record<string, string | Array<string> | undefined>>
  readonly body: string
}

/** The fields of a delivery report the suite asks a harness to sign; a field left out is not sent. */
export interface ReportFields {
  readonly providerMessageId?: string
  /** our message id, carried as the wire format carries it (a body field, or the callback URL) */
  readonly reference: string
  readonly status?: string
}

export interface ProviderAdapterHarness {
  readonly type: ProviderAdapter["type"]
  /**
   * The adapter against `baseUrl`, with the harness's credentials ("wrong": one of them altered).
   * `now` fixes the adapter's clock (signature freshness, `Retry-After` dates).
   */
  readonly make: (
    baseUrl: string,
    options: {
      readonly timeoutMs?: number
      readonly now?: () => number
      readonly credentials?: "ours" | "wrong"
    }
  ) => Effect.Effect<ProviderAdapter, never, Scope.Scope>
  /** the path the adapter posts a submission to */
  readonly submitPath: string
  /** our message id as the adapter sent it in a submission (so the provider can echo it) */
  readonly referenceOf: (request: ReceivedRequest) => string | undefined
  /** the wire format's answers */
  readonly answers: {
    readonly accepted: (providerMessageId: string) => WireAnswer
    /** a refusal because of the number, which the answer repeats, and the code the adapter keeps */
    readonly invalidNumber: (to: string) => { readonly answer: WireAnswer; readonly code: string }
    /** a refusal of the message for another reason, and the code the adapter keeps */
    readonly rejected: { readonly answer: WireAnswer; readonly code: string }
    /** the answer to bad credentials */
    readonly unauthorized: WireAnswer
    /** an HTTP 429, with these extra headers */
    readonly throttled: (headers: Readonly<Record<string, string>>) => WireAnswer
    /** an HTTP 503, with these extra headers */
    readonly unavailable: (headers: Readonly<Record<string, string>>) => WireAnswer
  }
  /** the simulator speaking this wire format, with the harness's credentials */
  readonly simulator: {
    readonly options: Simulator.SimulatorOptions
    /** the shape of the message ids it hands out */
    readonly acceptedId: RegExp
    /** what its answer to a number with an invalid prefix classifies as */
    readonly invalidNumber: { readonly code: string; readonly detail?: string }
    /** what its throttling answer classifies as: `Retry-After` where its wire format sends one */
    readonly throttled: { readonly retryAfterMs: number | undefined; readonly detail?: string }
  }
  /**
   * The wire format's status query (at a report deadline), where its API has one: the answer for
   * a delivered message. Without it, the adapter must have no `queryStatus`.
   */
  readonly statusQuery?: {
    readonly delivered: (providerMessageId: string) => WireAnswer
  }
  /** the provider's delivery-report webhook */
  readonly reports: {
    /** a report signed as the provider signs it, at `atSeconds`, with our secret or another one */
    readonly sign: (
      fields: ReportFields,
      options: { readonly atSeconds: number; readonly secret: "ours" | "another" }
    ) => InboundWebhook
    /** the webhook without its signature */
    readonly unsigned: (webhook: InboundWebhook) => InboundWebhook
    /** the webhook with a signature that is not even well-formed */
    readonly garbled: (webhook: InboundWebhook) => InboundWebhook
    /** whether the signature covers a timestamp (a replay window is then enforced) */
    readonly timestamped: boolean
    /** the field a Malformed refusal names when the provider's message id is missing */
    readonly idField: string
  }
}

const sms: OutboundSms = {
  messageId: "msg-1",
  to: "+447700900123",
  from: "+15005550006",
  body: "hello",
  callbackUrl: "http://127.0.0.1:9/dlr"
}

/** A whole second, so an HTTP date (second precision) lands exactly. */
const nowMs = Date.UTC(2025, 0, 1, 12, 0, 0)
const nowSeconds = nowMs / 1000
const fixedClock = () => nowMs

/** Bounds of a call that must not have waited for a timeout (the adapters' default is 10 s). */
const prompt = 5_000
/** The timeout of the cases about one, and how late the answer may come past it. */
const timeoutMs = 150

// ---------------------------------------------------------------------------------------------
// The scripted provider

/** What the scripted server does with each submission. */
type Script =
  | { readonly _tag: "Answer"; readonly answer: WireAnswer }
  /** takes the request and never answers */
  | { readonly _tag: "Silent" }
  /** sends the status line, headers and half the body, then never finishes */
  | { readonly _tag: "Stall"; readonly answer: WireAnswer }
  /** destroys the connection with a TCP RST instead of answering */
  | { readonly _tag: "Reset" }
  /** sends the headers and half the body, then destroys the connection with a TCP RST */
  | { readonly _tag: "ResetMidBody"; readonly answer: WireAnswer }

const halfOf = (text: string) => text.slice(0, Math.max(1, Math.floor(text.length / 2)))

const startHead = (res: ServerResponse, answer: WireAnswer) =>
  res.writeHead(answer.status, {
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(answer.body)),
    ...answer.headers
  })

const play = (script: Script, req: IncomingMessage, res: ServerResponse) => {
  switch (script._tag) {
    case "Answer":
      startHead(res, script.answer)
      res.end(script.answer.body)
      return
    case "Silent":
      return
    case "Stall":
      startHead(res, script.answer)
      res.write(halfOf(script.answer.body))
      return
    case "Reset":
      req.socket.resetAndDestroy()
      return
    case "ResetMidBody":
      startHead(res, script.answer)
      res.write(halfOf(script.answer.body), () => {
        // let the headers and the first half reach the client before the reset
        setTimeout(() => req.socket.resetAndDestroy(), 20)
      })
      return
  }
}

/** A real HTTP server on a free loopback port playing `script`, closed (connections and all) with the scope. */
const scriptedProvider = (script: Script) =>
  Effect.gen(function* () {
    const received: Array<ReceivedRequest> = []
    const server = createServer((req, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (chunk: Buffer) => chunks.push(chunk))
      req.on("end", () => {
        received.push({
          method: req.method ?? "",
          path: (req.url ?? "").split("?", 1)[0] ?? "",
          headers: req.headers,
          body: Buffer.concat(chunks).toString("utf8")
        })
        play(script, req, res)
      })
    })
    const port = yield* serveOnLoopback(server)
    return { url: `http://127.0.0.1:${port}`, received }
  })

/** A port nobody listens on: bound, read, released. */
const closedPort = Effect.async<number>((resume) => {
  const server = createNetServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** An effect's result and how long it took; a call still running after `prompt` fails the case. */
const timedEffect = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function* () {
    const started = performance.now()
    const result = yield* Effect.timeoutFail(effect, {
      duration: prompt,
      onTimeout: () => new Error(`no result within ${prompt} ms: the adapter's own deadline did not hold`)
    })
    return { result, elapsedMs: performance.now() - started }
  })

/** The submission's result and how long it took. */
const timed = (adapter: ProviderAdapter, message: OutboundSms = sms) => timedEffect(adapter.submit(message))

/** No detail carries the recipient's number, with or without its plus. */
const expectNoNumber = (result: SubmitResult) => {
  if (result._tag === "Accepted") return
  expect(result.detail).not.toContain(sms.to)
  expect(result.detail).not.toContain(sms.to.slice(1))
}

// ---------------------------------------------------------------------------------------------

export const providerAdapterContract = (harness: ProviderAdapterHarness): void => {
  const { answers } = harness

  /** The adapter against a scripted provider; its result, time taken, and what the provider received. */
  const submitTo = (script: Script, options: { readonly timeoutMs?: number } = {}) =>
    Effect.gen(function* () {
      const provider = yield* scriptedProvider(script)
      const adapter = yield* harness.make(provider.url, { now: fixedClock, ...options })
      const { result, elapsedMs } = yield* timed(adapter)
      return { result, elapsedMs, received: provider.received }
    })

  const answer = (wire: WireAnswer) => submitTo({ _tag: "Answer", answer: wire })

  const startSimulator = (options: Partial<Simulator.SimulatorOptions> = {}) =>
    Simulator.start({ seed: 5, dlr: { enabled: false }, ...harness.simulator.options, ...options })

  describe(`provider adapter contract: ${harness.type}`, () => {
    // live services: timeouts and the simulator run on the real clock
    layer(Layer.empty, { excludeTestServices: true })("submit", (it) => {
      it.scoped("accepted: the provider's message id is read, our reference sent, in one call", () =>
        Effect.gen(function* () {
          const { result, received } = yield* answer(answers.accepted("prov-0001"))
          expect(result).toEqual({ _tag: "Accepted", providerMessageId: "prov-0001" })
          expect(received).toHaveLength(1)
          expect(received[0]).toMatchObject({ method: "POST", path: harness.submitPath })
          const [request] = received
          expect(request !== undefined && harness.referenceOf(request)).toBe(sms.messageId)
        })
      )

      it.scoped("submitNow (the batch path) classifies as submit does", () =>
        Effect.gen(function* () {
          const provider = yield* scriptedProvider({ _tag: "Answer", answer: answers.accepted("prov-0002") })
          const adapter = yield* harness.make(provider.url, { now: fixedClock })
          expect(adapter.type).toBe(harness.type)
          const result = yield* Effect.promise(() => adapter.submitNow(sms))
          expect(result).toEqual({ _tag: "Accepted", providerMessageId: "prov-0002" })
          const gone = yield* harness.make(`http://127.0.0.1:${yield* closedPort}`, {})
          expect(yield* Effect.promise(() => gone.submitNow(sms))).toMatchObject({
            _tag: "Transient",
            reason: "network"
          })
        })
      )

      it.scoped("permanent: an invalid number is invalid_number, without the number in the detail", () =>
        Effect.gen(function* () {
          const invalid = answers.invalidNumber(sms.to)
          const { result } = yield* answer(invalid.answer)
          expect(result).toMatchObject({ _tag: "Permanent", reason: "invalid_number", code: invalid.code })
          expectNoNumber(result)
        })
      )

      it.scoped("permanent: a rejected message is rejected with the provider's code", () =>
        Effect.gen(function* () {
          const { result } = yield* answer(answers.rejected.answer)
          expect(result).toMatchObject({ _tag: "Permanent", reason: "rejected", code: answers.rejected.code })
        })
      )

      it.scoped("permanent: bad credentials are rejected with code auth", () =>
        Effect.gen(function* () {
          const { result } = yield* answer(answers.unauthorized)
          expect(result).toMatchObject({ _tag: "Permanent", reason: "rejected", code: "auth" })
        })
      )

      it.scoped("throttled: Retry-After in seconds is retryAfterMs", () =>
        Effect.gen(function* () {
          const { result } = yield* answer(answers.throttled({ "retry-after": "3" }))
          expect(result).toMatchObject({ _tag: "Transient", reason: "throttled", retryAfterMs: 3_000 })
        })
      )

      it.scoped("throttled: Retry-After as an HTTP date is the time until it", () =>
        Effect.gen(function* () {
          const at = new Date(nowMs + 30_000).toUTCString()
          const { result } = yield* answer(answers.throttled({ "retry-after": at }))
          expect(result).toMatchObject({ _tag: "Transient", reason: "throttled", retryAfterMs: 30_000 })
          const past = new Date(nowMs - 30_000).toUTCString()
          const late = yield* answer(answers.throttled({ "retry-after": past }))
          expect(late.result).toMatchObject({ _tag: "Transient", reason: "throttled", retryAfterMs: 0 })
        })
      )

      it.scoped("throttled: without a readable Retry-After, no retryAfterMs", () =>
        Effect.gen(function* () {
          const unreadable: ReadonlyArray<Record<string, string>> = [{}, { "retry-after": "soon" }]
          for (const headers of unreadable) {
            const { result } = yield* answer(answers.throttled(headers))
            expect(result).toMatchObject({ _tag: "Transient", reason: "throttled" })
            expect(result._tag === "Transient" && result.retryAfterMs).toBeUndefined()
          }
        })
      )

      it.scoped("5xx: a 503 is http_5xx, with the Retry-After it gives", () =>
        Effect.gen(function* () {
          const plain = yield* answer(answers.unavailable({}))
          expect(plain.result).toMatchObject({ _tag: "Transient", reason: "http_5xx" })
          expect(plain.result._tag === "Transient" && plain.result.retryAfterMs).toBeUndefined()
          const paced = yield* answer(answers.unavailable({ "retry-after": "7" }))
          expect(paced.result).toMatchObject({ _tag: "Transient", reason: "http_5xx", retryAfterMs: 7_000 })
        })
      )

      it.scoped("timeout: no answer within timeoutMs is timeout, on time", () =>
        Effect.gen(function* () {
          const { result, elapsedMs, received } = yield* submitTo({ _tag: "Silent" }, { timeoutMs })
          expect(received).toHaveLength(1)
          expect(result).toMatchObject({ _tag: "Transient", reason: "timeout" })
          expect(elapsedMs).toBeGreaterThanOrEqual(timeoutMs - 5)
          expect(elapsedMs).toBeLessThan(prompt)
        })
      )

      it.scoped("stall mid-body: headers sent, body never finished, is timeout, on time", () =>
        Effect.gen(function* () {
          const { result, elapsedMs } = yield* submitTo(
            { _tag: "Stall", answer: answers.accepted("prov-0003") },
            { timeoutMs }
          )
          // without a deadline over the body this call would hang until the test's own timeout
          expect(result).toMatchObject({ _tag: "Transient", reason: "timeout" })
          expect(elapsedMs).toBeGreaterThanOrEqual(timeoutMs - 5)
          expect(elapsedMs).toBeLessThan(prompt)
        })
      )

      it.scoped("connection reset: a socket destroyed instead of an answer is network", () =>
        Effect.gen(function* () {
          const { result, elapsedMs, received } = yield* submitTo({ _tag: "Reset" })
          expect(received).toHaveLength(1)
          expect(result).toMatchObject({ _tag: "Transient", reason: "network" })
          expect(result._tag === "Transient" && result.detail).toBe("connection failed: ECONNRESET")
          expect(elapsedMs).toBeLessThan(prompt)
        })
      )

      it.scoped("connection reset mid-body: headers and half an answer, then destroyed, is network", () =>
        Effect.gen(function* () {
          const { result, elapsedMs } = yield* submitTo({
            _tag: "ResetMidBody",
            answer: answers.accepted("prov-0004")
          })
          expect(result).toMatchObject({ _tag: "Transient", reason: "network" })
          expect(result._tag === "Transient" && result.detail).toBe("connection failed: ECONNRESET")
          expect(elapsedMs).toBeLessThan(prompt)
        })
      )

      it.scoped("closed port: nothing listening is network (ECONNREFUSED), at once", () =>
        Effect.gen(function* () {
          const adapter = yield* harness.make(`http://127.0.0.1:${yield* closedPort}`, {})
          const { result, elapsedMs } = yield* timed(adapter)
          expect(result).toMatchObject({ _tag: "Transient", reason: "network" })
          expect(result._tag === "Transient" && result.detail).toContain("ECONNREFUSED")
          expect(elapsedMs).toBeLessThan(prompt)
        })
      )
    })

    layer(Layer.empty, { excludeTestServices: true })("submit against the simulator", (it) => {
      it.scoped("accepted: the simulator's message id, and the submission logged by our reference", () =>
        Effect.gen(function* () {
          const sim = yield* startSimulator()
          const adapter = yield* harness.make(sim.url, {})
          const result = yield* adapter.submit(sms)
          expect(result._tag).toBe("Accepted")
          if (result._tag === "Accepted")
            expect(result.providerMessageId).toMatch(harness.simulator.acceptedId)
          expect(sim.submissions(sms.messageId)).toMatchObject([
            { seq: 1, reference: sms.messageId, to: sms.to, body: sms.body, outcome: "accepted" }
          ])
        })
      )

      it.scoped("permanent: a number it does not route is invalid_number, without the number", () =>
        Effect.gen(function* () {
          const sim = yield* startSimulator({ invalidPrefixes: ["+4477009"] })
          const result = yield* (yield* harness.make(sim.url, {})).submit(sms)
          const { code, detail } = harness.simulator.invalidNumber
          expect(result).toMatchObject({ _tag: "Permanent", reason: "invalid_number", code })
          if (detail !== undefined) expect(result._tag !== "Accepted" && result.detail).toContain(detail)
          expectNoNumber(result)
        })
      )

      it.scoped("permanent: wrong credentials are rejected with code auth", () =>
        Effect.gen(function* () {
          const sim = yield* startSimulator()
          const result = yield* (yield* harness.make(sim.url, { credentials: "wrong" })).submit(sms)
          expect(result).toMatchObject({ _tag: "Permanent", reason: "rejected", code: "auth" })
          expect(sim.stats()).toMatchObject({ submissions: 1, unauthorized: 1, accepted: 0 })
        })
      )

      it.scoped("throttled: its throttling answer is throttled", () =>
        Effect.gen(function* () {
          const sim = yield* startSimulator({ throttleRate: 1 })
          const result = yield* (yield* harness.make(sim.url, {})).submit(sms)
          const { retryAfterMs, detail } = harness.simulator.throttled
          expect(result).toMatchObject({ _tag: "Transient", reason: "throttled" })
          expect(result._tag === "Transient" && result.retryAfterMs).toBe(retryAfterMs)
          if (detail !== undefined) expect(result._tag === "Transient" && result.detail).toContain(detail)
        })
      )

      it.scoped("5xx: its 503 is http_5xx", () =>
        Effect.gen(function* () {
          const sim = yield* startSimulator({ errorRate: 1 })
          const result = yield* (yield* harness.make(sim.url, {})).submit(sms)
          expect(result).toMatchObject({ _tag: "Transient", reason: "http_5xx" })
        })
      )

      it.scoped("timeout: a request it never answers is timeout", () =>
        Effect.gen(function* () {
          const sim = yield* startSimulator({ timeoutRate: 1 })
          const result = yield* (yield* harness.make(sim.url, { timeoutMs })).submit(sms)
          expect(result).toMatchObject({ _tag: "Transient", reason: "timeout" })
          expect(sim.stats()).toMatchObject({ submissions: 1, timeouts: 1, accepted: 0 })
        })
      )

      it.scoped("connection reset: a connection it destroys is network", () =>
        Effect.gen(function* () {
          const sim = yield* startSimulator({ resetRate: 1 })
          const result = yield* (yield* harness.make(sim.url, {})).submit(sms)
          expect(result).toMatchObject({ _tag: "Transient", reason: "network" })
          expect(sim.stats()).toMatchObject({ submissions: 1, resets: 1, accepted: 0 })
        })
      )
    })

    layer(Layer.empty, { excludeTestServices: true })("status query", (it) => {
      const statusQuery = harness.statusQuery
      if (statusQuery === undefined) {
        it.scoped("the wire format has no status query: the adapter offers none", () =>
          Effect.gen(function* () {
            const adapter = yield* harness.make("http://127.0.0.1:9", {})
            expect(adapter.queryStatus).toBeUndefined()
          })
        )
        return
      }

      /** The adapter's status query of prov-0001 against a scripted provider: its error reason, or its answer. */
      const queryTo = (script: Script, options: { readonly timeoutMs?: number } = {}) =>
        Effect.gen(function* () {
          const provider = yield* scriptedProvider(script)
          const adapter = yield* harness.make(provider.url, { now: fixedClock, ...options })
          if (adapter.queryStatus === undefined) return yield* Effect.dieMessage("no queryStatus")
          const { result, elapsedMs } = yield* timedEffect(Effect.either(adapter.queryStatus("prov-0001")))
          return {
            outcome: Either.match(result, { onLeft: (e) => e.reason, onRight: (answer) => answer }),
            elapsedMs,
            received: provider.received
          }
        })

      it.scoped("a delivered message's status is a final delivered report, in one GET", () =>
        Effect.gen(function* () {
          const { outcome, received } = yield* queryTo({
            _tag: "Answer",
            answer: statusQuery.delivered("prov-0001")
          })
          expect(outcome).toMatchObject({
            _tag: "Final",
            report: { providerMessageId: "prov-0001", outcome: "delivered", rawStatus: "delivered" }
          })
          expect(received).toHaveLength(1)
          expect(received[0]?.method).toBe("GET")
        })
      )

      it.scoped("5xx, 429 and bad credentials are http_5xx, throttled and auth", () =>
        Effect.gen(function* () {
          const unavailable = yield* queryTo({ _tag: "Answer", answer: answers.unavailable({}) })
          expect(unavailable.outcome).toBe("http_5xx")
          const throttled = yield* queryTo({
            _tag: "Answer",
            answer: answers.throttled({ "retry-after": "3" })
          })
          expect(throttled.outcome).toBe("throttled")
          const refused = yield* queryTo({ _tag: "Answer", answer: { status: 401, body: "{}" } })
          expect(refused.outcome).toBe("auth")
        })
      )

      it.scoped("timeout: no answer within timeoutMs is timeout, on time", () =>
        Effect.gen(function* () {
          const { outcome, elapsedMs } = yield* queryTo({ _tag: "Silent" }, { timeoutMs })
          expect(outcome).toBe("timeout")
          expect(elapsedMs).toBeGreaterThanOrEqual(timeoutMs - 5)
        })
      )

      it.scoped("stall mid-body: headers sent, body never finished, is timeout, on time", () =>
        Effect.gen(function* () {
          const { outcome, elapsedMs } = yield* queryTo(
            { _tag: "Stall", answer: statusQuery.delivered("prov-0001") },
            { timeoutMs }
          )
          expect(outcome).toBe("timeout")
          expect(elapsedMs).toBeGreaterThanOrEqual(timeoutMs - 5)
        })
      )

      it.scoped("connection reset, before the answer or mid-body, is network", () =>
        Effect.gen(function* () {
          expect((yield* queryTo({ _tag: "Reset" })).outcome).toBe("network")
          const midBody = yield* queryTo({ _tag: "ResetMidBody", answer: statusQuery.delivered("prov-0001") })
          expect(midBody.outcome).toBe("network")
        })
      )

      it.scoped("closed port: nothing listening is network, at once", () =>
        Effect.gen(function* () {
          const adapter = yield* harness.make(`http://127.0.0.1:${yield* closedPort}`, {})
          if (adapter.queryStatus === undefined) return yield* Effect.dieMessage("no queryStatus")
          const { result } = yield* timedEffect(Effect.flip(adapter.queryStatus("prov-0001")))
          expect(result).toMatchObject({ reason: "network" })
          expect(result.message).toContain("ECONNREFUSED")
        })
      )
    })

    describe("delivery-report signature", () => {
      const { reports } = harness
      const fields: ReportFields = { providerMessageId: "prov-0001", reference: "msg-1", status: "delivered" }
      const signed = (atSeconds = nowSeconds, extra: Partial<ReportFields> = {}) =>
        reports.sign({ ...fields, ...extra }, { atSeconds, secret: "ours" })
      const parse = (webhook: InboundWebhook) =>
        Effect.map(harness.make("http://127.0.0.1:9", { now: fixedClock }), (adapter) =>
          adapter.parseDeliveryReport(webhook)
        )
      const refusal = (webhook: InboundWebhook) =>
        Effect.map(parse(webhook), (parsed) =>
          Either.match(parsed, { onLeft: (e) => e.reason, onRight: () => "accepted" })
        )

      it.scoped("a report signed as the provider signs it verifies and is read", () =>
        Effect.gen(function* () {
          const parsed = yield* parse(signed())
          expect(Either.getOrThrow(parsed)).toMatchObject({
            providerMessageId: "prov-0001",
            reference: "msg-1",
            outcome: "delivered",
            rawStatus: "delivered"
          })
        })
      )

      it.scoped("a forged report (signed with another secret) is refused: BadSignature", () =>
        Effect.gen(function* () {
          const forged = reports.sign(fields, { atSeconds: nowSeconds, secret: "another" })
          expect(yield* refusal(forged)).toBe("BadSignature")
        })
      )

      it.scoped("a report altered after signing is refused: BadSignature", () =>
        Effect.gen(function* () {
          const good = signed()
          const altered = { ...good, body: good.body.replace("delivered", "failed") }
          expect(altered.body).not.toBe(good.body)
          expect(yield* refusal(altered)).toBe("BadSignature")
        })
      )

      it.scoped("an unsigned report, or one with a garbled signature, is refused: BadSignature", () =>
        Effect.gen(function* () {
          expect(yield* refusal(reports.unsigned(signed()))).toBe("BadSignature")
          expect(yield* refusal(reports.garbled(signed()))).toBe("BadSignature")
        })
      )

      if (reports.timestamped) {
        it.scoped("a stale or future timestamp (over 5 minutes) is refused, within 5 minutes accepted", () =>
          Effect.gen(function* () {
            expect(yield* refusal(signed(nowSeconds - 301))).toBe("BadSignature")
            expect(yield* refusal(signed(nowSeconds + 301))).toBe("BadSignature")
            expect(yield* refusal(signed(nowSeconds - 299))).toBe("accepted")
            expect(yield* refusal(signed(nowSeconds + 299))).toBe("accepted")
          })
        )
      }

      it.scoped("a correctly signed report without the message id or status is Malformed", () =>
        Effect.gen(function* () {
          const noId = yield* parse(signed(nowSeconds, { providerMessageId: undefined }))
          const noStatus = yield* parse(signed(nowSeconds, { status: undefined }))
          expect(Either.isLeft(noId) && noId.left).toMatchObject({ reason: "Malformed" })
          expect(Either.isLeft(noId) && noId.left.message).toContain(reports.idField)
          expect(Either.isLeft(noStatus) && noStatus.left).toMatchObject({ reason: "Malformed" })
        })
      )
    })
  })
}
