/**
 * The provider simulator: a real HTTP server speaking one provider's wire format (`format`:
 * `generic-http`, the default, see GenericHttp.ts; `twilio`, see Twilio.ts; `vonage`, see
 * Vonage.ts), with configurable latency (uniform, with an optional long tail), 503s, 429s,
 * requests that never get an answer, connection resets, invalid-number prefixes and signed DLR
 * callbacks (random delay, hence shuffled; duplicates; a report before the submit answer), and a
 * log of every submission received.
 *
 * Each wire format is a `Wire` of its own in `simulator/` (routes, answers, reports, status queries);
 * this module is the engine they share (its decisions, timers, report retries and log work on one
 * state, hence one module of some 600 lines) and the public API.
 *
 * Plain node:http with callbacks and timers: the benchmark runs it beside the gateway on two
 * cores, so it must cost next to nothing per message. Every random decision comes from one
 * injectable RNG and a fixed number of draws per submission, so a seed replays the same run.
 *
 *   POST /messages                                      generic-http (Bearer api key)
 *   POST /2010-04-01/Accounts/{sid}/Messages.json       twilio (Basic sid:auth token)
 *   POST /sms/json                                      vonage (api_key, api_secret in the body)
 *   GET  /2010-04-01/Accounts/{sid}/Messages/{sid}.json twilio status query (Basic sid:auth token)
 *   GET  /v2/reports/records?account_id=&product=SMS&direction=outbound&id=
 *                                                       vonage status query, the Reports API
 *                                                       (Basic api_key:api_secret)
 *   GET  /_submissions    the log as a JSON array; `?reference=<our message id>` filters
 *   GET  /_stats          counters
 *   POST /_reset          clears the log and the counters (DLRs in flight still settle)
 *
 * Credentials per format: `apiKey` is the secret the client authenticates with (generic-http: the
 * bearer key; twilio: the auth token; vonage: the `api_secret`). `account`, when set, is the
 * identity it must go with (twilio: the account sid in the path and the Basic user; vonage: the
 * `api_key`); unset, any identity is accepted. DLRs are signed as the real provider signs them:
 * generic-http with `webhookSecret` (`X-Signature`), twilio with the auth token, that is `apiKey`
 * (`X-Twilio-Signature`, `webhookSecret` unused), vonage with `webhookSecret` as the signature
 * secret and `signatureMethod` (default sha256).
 *
 * DLRs as each format sends them: generic-http JSON; twilio a form POST to the `StatusCallback`
 * URL; vonage a POST with a JSON body (Vonage's "POST-JSON" webhook method) to the `callback` URL.
 * The simulator's DLR statuses become: twilio delivered -> delivered, undelivered -> undelivered
 * 30003, failed -> failed 30008, rejected -> failed 30007, expired -> undelivered 30003 (Twilio has
 * no expired status), invalid -> undelivered 30005; vonage delivered -> delivered 0, undelivered ->
 * failed 2, failed -> failed 1, rejected -> rejected 6, expired -> expired 1, invalid -> failed 3.
 * A status query answers the status decided for the submission (its report's, sent or lost or
 * disabled), once the report's drawn delay has passed; before that twilio `sent`, vonage `accepted`.
 *
 * Its size (over 400 lines) is the engine alone (the wire formats are in `simulator/`): one state
 * machine of answers, report scheduling and the submission log.
 */
import http from "node:http"
import https from "node:https"
import type { AddressInfo } from "node:net"
import { Effect, Schema, type Scope } from "effect"
import * as Vonage from "./Vonage.js"

import { errorBody, genericWire } from "./simulator/GenericHttpWire.js"
import type {
  DlrOptions,
  DlrStatus,
  LatencyRange,
  Range,
  SimulatorFormat,
  SimulatorOptions
} from "./simulator/Options.js"
import { twilioWire } from "./simulator/TwilioWire.js"
import { vonageWire } from "./simulator/VonageWire.js"
import {
  type Answer,
  type Decided,
  type DlrPost,
  type Decoded,
  isHttpUrl,
  type ValidSubmission,
  type Wire
} from "./simulator/Wire.js"

export type { DlrOptions, DlrStatus, LatencyRange, Range, SimulatorFormat, SimulatorOptions }

export type SubmissionOutcome =
  | "accepted"
  | "error_503"
  | "throttled"
  | "invalid_number"
  | "unauthorized"
  | "malformed"
  | "timeout"
  | "reset"

export interface Submission {
  readonly seq: number
  /** the provider message id, for accepted submissions */
  readonly messageId?: string
  readonly reference?: string
  /** E.164 (vonage's plus-less `to` gets its plus back) */
  readonly to?: string
  readonly body?: string
  readonly receivedAt: string
  readonly outcome: SubmissionOutcome
}

export interface SimulatorStats {
  readonly submissions: number
  readonly accepted: number
  readonly errors: number
  readonly throttled: number
  readonly invalid: number
  readonly unauthorized: number
  readonly malformed: number
  /** submissions left unanswered */
  readonly timeouts: number
  /** submissions whose connection was destroyed */
  readonly resets: number
  /** DLR posts answered 2xx (duplicates included) */
  readonly dlrSent: number
  /** DLR posts given up after the last retry */
  readonly dlrFailed: number
  /** DLR posts scheduled or in flight */
  readonly dlrPending: number
  readonly dlrRetried: number
  readonly dlrDuplicates: number
  /** reports sent before their submit answer */
  readonly dlrEarly: number
  /** reports never sent (`loseRate`) */
  readonly dlrLost: number
}

export interface RunningSimulator {
  /** base URL, e.g. `http://127.0.0.1:40123` (the adapter's `baseUrl`) */
  readonly url: string
  readonly port: number
  readonly format: SimulatorFormat
  readonly stats: () => SimulatorStats
  readonly submissions: (reference?: string) => ReadonlyArray<Submission>
  readonly reset: () => void
  /** completes when no submission awaits its answer and no DLR is pending (hung requests excepted) */
  readonly awaitIdle: Effect.Effect<void>
}

export class SimulatorError extends Schema.TaggedError<SimulatorError>()("SimulatorError", {
  reason: Schema.Literal("InvalidOptions", "Listen"),
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {}

/** mulberry32: small, fast, and good enough to drive test scenarios. */
export const seededRandom = (seed: number): (() => number) => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export const start = (
  options: SimulatorOptions
): Effect.Effect<RunningSimulator, SimulatorError, Scope.Scope> =>
  Effect.gen(function* () {
    const problem = optionsProblem(options)
    if (problem !== undefined)
      return yield* new SimulatorError({ reason: "InvalidOptions", message: problem })
    const sim = new Sim(options)
    const port = yield* Effect.acquireRelease(sim.listen(), () => sim.close())
    const host = options.host ?? "127.0.0.1"
    return {
      url: `http://${host.includes(":") ? `[${host}]` : host}:${port}`,
      port,
      format: options.format ?? "generic-http",
      stats: () => ({ ...sim.counters }),
      submissions: (reference?: string) => sim.list(reference),
      reset: () => sim.reset(),
      awaitIdle: sim.awaitIdle
    }
  })

// ---------------------------------------------------------------------------------------------

const maxBodyBytes = 64 * 1024
const dlrRetries = 5
const dlrRetryBaseMs = 50
const dlrRetryMaxMs = 5_000
const dlrPostTimeoutMs = 10_000
const formats: ReadonlyArray<SimulatorFormat> = ["generic-http", "twilio", "vonage"]
const signatureMethods: ReadonlyArray<Vonage.SignatureMethod> = ["md5hash", "md5", "sha1", "sha256", "sha512"]

const isRate = (value: number | undefined) => value === undefined || (value >= 0 && value <= 1)
const isRange = (range: Range | undefined) =>
  range === undefined || (Number.isFinite(range.min) && range.min >= 0 && range.max >= range.min)

const optionsProblem = (options: SimulatorOptions): string | undefined => {
  const port = options.port ?? 0
  if (!Number.isInteger(port) || port < 0 || port > 65535) return "port must be an integer in 0..65535"
  if (options.format !== undefined && !formats.includes(options.format)) {
    return `format must be one of ${formats.join(", ")}`
  }
  if (options.apiKey.length === 0 || options.webhookSecret.length === 0) {
    return "apiKey and webhookSecret must not be empty"
  }
  if (options.account !== undefined && options.account.length === 0) return "account must not be empty"
  if (options.signatureMethod !== undefined && !signatureMethods.includes(options.signatureMethod)) {
    return `signatureMethod must be one of ${signatureMethods.join(", ")}`
  }
  const rates = [
    options.errorRate,
    options.throttleRate,
    options.timeoutRate,
    options.resetRate,
    options.dlr?.failRate,
    options.dlr?.duplicateRate,
    options.dlr?.earlyRate,
    options.dlr?.loseRate
  ]
  if (!rates.every(isRate)) return "rates must be within 0..1"
  if (!isRange(options.latencyMs) || !isRange(options.dlr?.delayMs)) return "ranges need 0 <= min <= max"
  const p99 = options.latencyMs?.p99
  if (p99 !== undefined && !(Number.isFinite(p99) && p99 >= (options.latencyMs?.max ?? 0))) {
    return "latencyMs.p99 must be a number >= latencyMs.max"
  }
  const weights = Object.values(options.dlr?.outcomes ?? {})
  if (weights.some((w) => w === undefined || !(w >= 0))) return "outcome weights must be >= 0"
  if (weights.length > 0 && weights.reduce((a, b) => a + (b ?? 0), 0) <= 0) return "outcome weights sum to 0"
  if (options.dlrUrl !== undefined && !isHttpUrl(options.dlrUrl)) return "dlrUrl must be an http(s) URL"
  if (options.maxLogEntries !== undefined && !(options.maxLogEntries >= 1))
    return "maxLogEntries must be >= 1"
  return undefined
}

const emptyCounters = (): Counters => ({
  submissions: 0,
  accepted: 0,
  errors: 0,
  throttled: 0,
  invalid: 0,
  unauthorized: 0,
  malformed: 0,
  timeouts: 0,
  resets: 0,
  dlrSent: 0,
  dlrFailed: 0,
  dlrPending: 0,
  dlrRetried: 0,
  dlrDuplicates: 0,
  dlrEarly: 0,
  dlrLost: 0
})

type Counters = { -readonly [K in keyof SimulatorStats]: SimulatorStats[K] }

const wireFor = (options: SimulatorOptions): Wire => {
  switch (options.format ?? "generic-http") {
    case "generic-http":
      return genericWire(options)
    case "twilio":
      return twilioWire(options)
    case "vonage":
      return vonageWire(options)
  }
}

// ---------------------------------------------------------------------------------------------

/** Always consumes one value, configured or not, so the draw sequence does not depend on options. */
const draw = (random: () => number, range: Range | undefined): number => {
  const value = random()
  return range === undefined ? 0 : range.min + value * (range.max - range.min)
}

/** One draw, like `draw`; see `LatencyRange` for the tail. */
export const drawLatency = (random: () => number, range: LatencyRange | undefined): number => {
  const value = random()
  if (range === undefined) return 0
  const { min, max, p99 } = range
  if (p99 === undefined || p99 <= max) return min + value * (max - min)
  if (value < 0.98) return min + (value / 0.98) * (max - min)
  const tail = (value - 0.98) / 0.02
  return max + ((p99 - max) * -Math.log(1 - tail)) / Math.LN2
}

class Sim {
  counters: Counters = emptyCounters()
  private log: Array<Submission> = []
  private byReference = new Map<string, Array<Submission>>()
  /** each accepted submission's decided status, for status queries (the newest, up to the log's size) */
  private readonly decided = new Map<string, Decided>()
  private seq = 0
  private answering = 0
  private closed = false
  private readonly timers = new Set<NodeJS.Timeout>()
  private readonly idleWaiters = new Set<() => void>()
  private readonly random: () => number
  private readonly outcomes: ReadonlyArray<readonly [DlrStatus, number]>
  private readonly maxLog: number
  private readonly wire: Wire
  private readonly agents = {
    http: new http.Agent({ keepAlive: true, maxSockets: 64 }),
    https: new https.Agent({ keepAlive: true, maxSockets: 64 })
  }
  private readonly server: http.Server

  constructor(private readonly options: SimulatorOptions) {
    this.random = options.random ?? seededRandom(options.seed ?? Math.floor(Math.random() * 2 ** 32))
    this.maxLog = options.maxLogEntries ?? 1_000_000
    this.wire = wireFor(options)
    const dlr = options.dlr ?? {}
    const weights: Partial<Record<DlrStatus, number>> = dlr.outcomes ?? {
      delivered: 1 - (dlr.failRate ?? 0),
      undelivered: dlr.failRate ?? 0
    }
    let total = 0
    const cumulative: Array<readonly [DlrStatus, number]> = []
    for (const [status, weight] of Object.entries(weights) as Array<[DlrStatus, number]>) {
      if (!(weight > 0)) continue
      total += weight
      cumulative.push([status, total])
    }
    this.outcomes = cumulative.map(([status, upTo]) => [status, upTo / total] as const)
    this.server = http.createServer((req, res) => this.route(req, res))
    this.server.keepAliveTimeout = 60_000
  }

  listen(): Effect.Effect<number, SimulatorError> {
    return Effect.async<number, SimulatorError>((resume) => {
      const onError = (cause: Error) =>
        resume(Effect.fail(new SimulatorError({ reason: "Listen", message: cause.message, cause })))
      this.server.once("error", onError)
      this.server.listen(this.options.port ?? 0, this.options.host ?? "127.0.0.1", () => {
        this.server.off("error", onError)
        // a late server error must not take the process down
        this.server.on("error", () => {})
        resume(Effect.succeed((this.server.address() as AddressInfo).port))
      })
    })
  }

  close(): Effect.Effect<void> {
    return Effect.async<void>((resume) => {
      this.closed = true
      for (const timer of this.timers) clearTimeout(timer)
      this.timers.clear()
      this.agents.http.destroy()
      this.agents.https.destroy()
      this.wakeIdle()
      // hung requests (timeoutRate) hold their connections: closing them all ends those too
      this.server.closeAllConnections()
      this.server.close(() => resume(Effect.void))
    })
  }

  readonly awaitIdle: Effect.Effect<void> = Effect.async<void>((resume) => {
    if (this.isIdle()) return resume(Effect.void)
    const wake = () => resume(Effect.void)
    this.idleWaiters.add(wake)
    return Effect.sync(() => this.idleWaiters.delete(wake))
  })

  list(reference?: string): ReadonlyArray<Submission> {
    return reference === undefined ? [...this.log] : [...(this.byReference.get(reference) ?? [])]
  }

  reset(): void {
    const pending = this.counters.dlrPending
    this.counters = { ...emptyCounters(), dlrPending: pending }
    this.log = []
    this.byReference = new Map()
  }

  // -------------------------------------------------------------------------------------------
  // HTTP

  private route(req: http.IncomingMessage, res: http.ServerResponse): void {
    req.on("error", () => res.destroy())
    const [path = "", query = ""] = (req.url ?? "").split("?", 2)
    if (this.wire.isSubmit(req.method, path)) {
      this.readBody(req, res, path)
      return
    }
    req.resume()
    const queried = this.wire.statusQuery?.(req, path, query, (id) => this.decided.get(id))
    send(res, queried ?? this.observe(req.method, path, query))
  }

  private observe(method: string | undefined, path: string, query: string): Answer {
    if (method === "GET" && path === "/_stats") return { status: 200, body: this.counters }
    if (method === "GET" && path === "/_submissions") {
      const reference = new URLSearchParams(query).get("reference") ?? undefined
      return { status: 200, body: this.list(reference) }
    }
    if (method === "POST" && path === "/_reset") {
      this.reset()
      return { status: 204, body: undefined }
    }
    return { status: 404, body: errorBody("not_found", "no such endpoint") }
  }

  private readBody(req: http.IncomingMessage, res: http.ServerResponse, path: string): void {
    const chunks: Array<Buffer> = []
    let size = 0
    req.on("data", (chunk: Buffer) => {
      size += chunk.length
      if (size <= maxBodyBytes) chunks.push(chunk)
    })
    req.on("end", () => {
      const text = size <= maxBodyBytes ? Buffer.concat(chunks).toString("utf8") : undefined
      this.submit(this.wire.decode(req, path, text), res)
    })
  }

  private submit(decoded: Decoded, res: http.ServerResponse): void {
    this.counters.submissions++
    const receivedAt = new Date().toISOString()
    if (decoded._tag === "Unauthorized") {
      this.counters.unauthorized++
      this.record({ receivedAt, outcome: "unauthorized" })
      send(res, this.wire.unauthorized)
      return
    }
    if (decoded._tag === "Malformed") {
      this.counters.malformed++
      this.record({ receivedAt, outcome: "malformed" })
      send(res, this.wire.malformed(decoded.status, decoded.code, decoded.problem))
      return
    }
    const sms = decoded.sms

    // a fixed number of draws per submission keeps runs comparable when one rate changes
    const latency = drawLatency(this.random, this.options.latencyMs)
    const errorDraw = this.random()
    const throttleDraw = this.random()
    const timeoutDraw = this.random()
    const resetDraw = this.random()
    const common = { receivedAt, to: sms.to, body: sms.body, reference: sms.reference }

    if (resetDraw < (this.options.resetRate ?? 0)) {
      this.counters.resets++
      this.record({ ...common, outcome: "reset" })
      this.answerLater(latency, () => res.destroy())
      return
    }
    if (timeoutDraw < (this.options.timeoutRate ?? 0)) {
      // never answered, and not awaited by awaitIdle: the client gives up, or close() ends it
      this.counters.timeouts++
      this.record({ ...common, outcome: "timeout" })
      return
    }
    let answer: Answer
    let accepted: string | undefined
    if (errorDraw < (this.options.errorRate ?? 0)) {
      this.counters.errors++
      this.record({ ...common, outcome: "error_503" })
      answer = this.wire.error
    } else if (throttleDraw < (this.options.throttleRate ?? 0)) {
      this.counters.throttled++
      this.record({ ...common, outcome: "throttled" })
      answer = this.wire.throttled
    } else if ((this.options.invalidPrefixes ?? []).some((prefix) => sms.to.startsWith(prefix))) {
      this.counters.invalid++
      this.record({ ...common, outcome: "invalid_number" })
      answer = this.wire.invalid(sms)
    } else {
      accepted = this.wire.messageId()
      this.counters.accepted++
      this.record({ ...common, messageId: accepted, outcome: "accepted" })
      answer = this.wire.accepted(accepted, sms)
    }
    const dlr = accepted === undefined ? undefined : this.planDlr(accepted, sms)
    const respond = () => {
      send(res, answer)
      // the provider accepted it even when the client gave up waiting: the report still comes
      if (dlr !== undefined) for (const [delay, post] of dlr.later) this.scheduleDlr(post, delay)
    }
    if (dlr?.early === undefined) {
      this.answerLater(latency, respond)
      return
    }
    // the report goes out first; the answer waits for the receiver's reply to it, and the latency
    this.counters.dlrEarly++
    let waiting = 2
    const oneDone = () => {
      if (--waiting === 0) respond()
    }
    this.counters.dlrPending++
    this.postDlr(dlr.early, 0, oneDone)
    this.answerLater(latency, oneDone)
  }

  /** Runs `answer` after `latency` ms, counted as an answer in flight meanwhile. */
  private answerLater(latency: number, answer: () => void): void {
    this.answering++
    const run = () => {
      this.answering--
      answer()
      if (this.isIdle()) this.wakeIdle()
    }
    if (latency > 0) this.later(run, latency)
    else run()
  }

  private planDlr(
    providerMessageId: string,
    sms: ValidSubmission
  ): { readonly early?: DlrPost; readonly later: ReadonlyArray<readonly [number, DlrPost]> } | undefined {
    const dlr = this.options.dlr ?? {}
    const delay = draw(this.random, dlr.delayMs)
    const status = this.pickStatus(this.random())
    const duplicate = this.random() < (dlr.duplicateRate ?? 0)
    const duplicateDelay = draw(this.random, dlr.delayMs)
    const early = this.random() < (dlr.earlyRate ?? 0)
    // drawn only when asked for, so seeded runs without losses keep their sequences
    const lost = (dlr.loseRate ?? 0) > 0 && this.random() < (dlr.loseRate ?? 0)
    this.remember(providerMessageId, {
      status,
      finalAt: Date.now() + (early ? 0 : delay),
      account: sms.account
    })
    const url = this.wire.dlrUrl(sms, this.options.dlrUrl)
    if (dlr.enabled === false || url === undefined) return undefined
    if (lost) {
      this.counters.dlrLost++
      return undefined
    }
    const post = this.wire.report(url, providerMessageId, sms, status)
    if (duplicate) this.counters.dlrDuplicates++
    const copies: Array<readonly [number, DlrPost]> = duplicate ? [[duplicateDelay, post]] : []
    return early ? { early: post, later: copies } : { later: [[delay, post], ...copies] }
  }

  /** What a status query will answer for this message, whatever becomes of its report. */
  private remember(providerMessageId: string, decided: Decided): void {
    this.decided.set(providerMessageId, decided)
    if (this.decided.size > this.maxLog) {
      const oldest = this.decided.keys().next()
      if (oldest.done !== true) this.decided.delete(oldest.value)
    }
  }

  private pickStatus(value: number): DlrStatus {
    for (const [status, upTo] of this.outcomes) if (value < upTo) return status
    return this.outcomes[this.outcomes.length - 1]?.[0] ?? "delivered"
  }

  // -------------------------------------------------------------------------------------------
  // DLR delivery

  private scheduleDlr(post: DlrPost, delay: number): void {
    if (this.closed) return
    this.counters.dlrPending++
    this.later(() => this.postDlr(post, 0), delay)
  }

  /** `firstSettled` runs once the first attempt has an answer (or failed), whatever the retries. */
  private postDlr(post: DlrPost, attempt: number, firstSettled?: () => void): void {
    let settled = false
    const settle = (ok: boolean) => {
      if (settled || this.closed) return
      settled = true
      firstSettled?.()
      if (ok) return this.dlrDone("dlrSent")
      if (attempt >= (this.options.dlr?.retries ?? dlrRetries)) return this.dlrDone("dlrFailed")
      this.counters.dlrRetried++
      this.later(
        () => this.postDlr(post, attempt + 1),
        Math.min(dlrRetryBaseMs * 2 ** attempt, dlrRetryMaxMs)
      )
    }
    // rendered per attempt: a retry hours later must still pass the receiver's freshness check
    const { body, headers } = post.render()
    const secure = post.url.startsWith("https:")
    try {
      const request = (secure ? https : http).request(
        post.url,
        {
          method: "POST",
          agent: secure ? this.agents.https : this.agents.http,
          timeout: dlrPostTimeoutMs,
          headers: { ...headers, "content-length": Buffer.byteLength(body) }
        },
        (response) => {
          response.resume()
          response.on("error", () => settle(false))
          response.on("end", () => {
            const status = response.statusCode ?? 0
            settle(status >= 200 && status < 300)
          })
        }
      )
      request.on("timeout", () => request.destroy(new Error("DLR post timed out")))
      request.on("error", () => settle(false))
      request.end(body)
    } catch {
      settle(false)
    }
  }

  private dlrDone(counter: "dlrSent" | "dlrFailed"): void {
    this.counters[counter]++
    this.counters.dlrPending = Math.max(0, this.counters.dlrPending - 1)
    if (this.isIdle()) this.wakeIdle()
  }

  // -------------------------------------------------------------------------------------------

  private record(entry: Omit<Submission, "seq">): void {
    const submission: Submission = { seq: ++this.seq, ...entry }
    this.log.push(submission)
    if (submission.reference !== undefined) {
      const entries = this.byReference.get(submission.reference)
      if (entries === undefined) this.byReference.set(submission.reference, [submission])
      else entries.push(submission)
    }
    if (this.log.length > this.maxLog) this.trimLog()
  }

  /** Drops the oldest tenth at once so trimming stays amortised O(1) per submission. */
  private trimLog(): void {
    const dropped = this.log.splice(0, Math.max(1, Math.ceil(this.maxLog / 10)))
    for (const old of dropped) {
      if (old.reference === undefined) continue
      const entries = this.byReference.get(old.reference)
      const rest = entries?.filter((entry) => entry.seq > old.seq) ?? []
      if (rest.length === 0) this.byReference.delete(old.reference)
      else this.byReference.set(old.reference, rest)
    }
  }

  private later(run: () => void, delayMs: number): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer)
      run()
    }, delayMs)
    this.timers.add(timer)
  }

  private isIdle(): boolean {
    return this.closed || (this.answering === 0 && this.counters.dlrPending === 0)
  }

  private wakeIdle(): void {
    const waiters = [...this.idleWaiters]
    this.idleWaiters.clear()
    for (const wake of waiters) wake()
  }
}

const send = (res: http.ServerResponse, answer: Answer): void => {
  if (res.destroyed || res.writableEnded) return
  const body = answer.body === undefined ? "" : JSON.stringify(answer.body)
  res.writeHead(answer.status, {
    ...answer.headers,
    ...(body.length > 0 ? { "content-type": "application/json" } : {}),
    "content-length": Buffer.byteLength(body)
  })
  res.end(body)
}
