/**
 * The provider simulator: a real HTTP server speaking the `generic-http` wire format (see
 * GenericHttp.ts), with configurable latency, 503s, 429s, invalid-number prefixes and signed DLR
 * callbacks (random delay, hence shuffled; duplicates), and a log of every submission received.
 *
 * Plain node:http with callbacks and timers: the benchmark runs it beside the gateway on two
 * cores, so it must cost next to nothing per message. Every random decision comes from one
 * injectable RNG and a fixed number of draws per submission, so a seed replays the same run.
 *
 *   POST /messages        the provider API (Bearer api key)
 *   GET  /_submissions    the log as a JSON array; `?reference=<our message id>` filters
 *   GET  /_stats          counters
 *   POST /_reset          clears the log and the counters (DLRs in flight still settle)
 */
import { randomUUID } from "node:crypto"
import http from "node:http"
import https from "node:https"
import type { AddressInfo } from "node:net"
import { Effect, Schema, type Scope } from "effect"
import { signDeliveryReport } from "./GenericHttp.js"

export interface Range {
  readonly min: number
  readonly max: number
}

/** The DLR statuses the simulator reports; "invalid" carries code "invalid_number". */
export type DlrStatus = "delivered" | "failed" | "undelivered" | "rejected" | "expired" | "invalid"

export interface DlrOptions {
  /** default true */
  readonly enabled?: boolean
  /** delay after the answer, drawn uniformly; default 0..0 */
  readonly delayMs?: Range
  /** relative weights of the final statuses; default `{ delivered: 1 }` */
  readonly outcomes?: Partial<Record<DlrStatus, number>>
  /** shorthand when `outcomes` is absent: this share "undelivered", the rest "delivered" */
  readonly failRate?: number
  /** share of reports sent twice (the copy with its own delay) */
  readonly duplicateRate?: number
}

export interface SimulatorOptions {
  /** 0 (default) picks a free port */
  readonly port?: number
  /** default 127.0.0.1 */
  readonly host?: string
  readonly apiKey: string
  readonly webhookSecret: string
  /** answer delay, drawn uniformly; default 0..0 */
  readonly latencyMs?: Range
  /** share of submissions answered 503 */
  readonly errorRate?: number
  /** share of submissions answered 429 with `Retry-After: 1` */
  readonly throttleRate?: number
  /** numbers starting with one of these are answered 400 invalid_number */
  readonly invalidPrefixes?: ReadonlyArray<string>
  readonly dlr?: DlrOptions
  /** where DLRs go; default: each submission's callbackUrl */
  readonly dlrUrl?: string
  /** seeds the RNG (ignored when `random` is given); default: a random seed */
  readonly seed?: number
  /** the RNG, uniform in [0, 1) */
  readonly random?: () => number
  /** the log keeps the newest entries up to this count; default 1,000,000 */
  readonly maxLogEntries?: number
}

export type SubmissionOutcome =
  | "accepted"
  | "error_503"
  | "throttled"
  | "invalid_number"
  | "unauthorized"
  | "malformed"

export interface Submission {
  readonly seq: number
  /** the provider message id, for accepted submissions */
  readonly messageId?: string
  readonly reference?: string
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
  /** DLR posts answered 2xx (duplicates included) */
  readonly dlrSent: number
  /** DLR posts given up after the last retry */
  readonly dlrFailed: number
  /** DLR posts scheduled or in flight */
  readonly dlrPending: number
  readonly dlrRetried: number
  readonly dlrDuplicates: number
}

export interface RunningSimulator {
  /** base URL, e.g. `http://127.0.0.1:40123` (the generic-http `baseUrl`) */
  readonly url: string
  readonly port: number
  readonly stats: () => SimulatorStats
  readonly submissions: (reference?: string) => ReadonlyArray<Submission>
  readonly reset: () => void
  /** completes when no submission awaits its answer and no DLR is pending */
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
const dlrPostTimeoutMs = 10_000

const isRate = (value: number | undefined) => value === undefined || (value >= 0 && value <= 1)
const isRange = (range: Range | undefined) =>
  range === undefined || (Number.isFinite(range.min) && range.min >= 0 && range.max >= range.min)

const optionsProblem = (options: SimulatorOptions): string | undefined => {
  const port = options.port ?? 0
  if (!Number.isInteger(port) || port < 0 || port > 65535) return "port must be an integer in 0..65535"
  if (options.apiKey.length === 0 || options.webhookSecret.length === 0) {
    return "apiKey and webhookSecret must not be empty"
  }
  if (!isRate(options.errorRate) || !isRate(options.throttleRate)) return "rates must be within 0..1"
  if (!isRate(options.dlr?.failRate) || !isRate(options.dlr?.duplicateRate))
    return "rates must be within 0..1"
  if (!isRange(options.latencyMs) || !isRange(options.dlr?.delayMs)) return "ranges need 0 <= min <= max"
  const weights = Object.values(options.dlr?.outcomes ?? {})
  if (weights.some((w) => w === undefined || !(w >= 0))) return "outcome weights must be >= 0"
  if (weights.length > 0 && weights.reduce((a, b) => a + (b ?? 0), 0) <= 0) return "outcome weights sum to 0"
  if (options.dlrUrl !== undefined && !isHttpUrl(options.dlrUrl)) return "dlrUrl must be an http(s) URL"
  if (options.maxLogEntries !== undefined && !(options.maxLogEntries >= 1))
    return "maxLogEntries must be >= 1"
  return undefined
}

const isHttpUrl = (value: string): boolean => {
  try {
    const url = new URL(value)
    return url.protocol === "http:" || url.protocol === "https:"
  } catch {
    return false
  }
}

const emptyCounters = (): Counters => ({
  submissions: 0,
  accepted: 0,
  errors: 0,
  throttled: 0,
  invalid: 0,
  unauthorized: 0,
  malformed: 0,
  dlrSent: 0,
  dlrFailed: 0,
  dlrPending: 0,
  dlrRetried: 0,
  dlrDuplicates: 0
})

type Counters = { -readonly [K in keyof SimulatorStats]: SimulatorStats[K] }

interface ValidSubmission {
  readonly to: string
  readonly from?: string
  readonly body: string
  readonly reference?: string
  readonly callbackUrl?: string
}

type Answer = { readonly status: number; readonly body: unknown; readonly headers?: Record<string, string> }

const errorBody = (code: string, message: string) => ({ error: { code, message } })

/** Always consumes one value, configured or not, so the draw sequence does not depend on options. */
const draw = (random: () => number, range: Range | undefined): number => {
  const value = random()
  return range === undefined ? 0 : range.min + value * (range.max - range.min)
}

class Sim {
  counters: Counters = emptyCounters()
  private log: Array<Submission> = []
  private byReference = new Map<string, Array<Submission>>()
  private seq = 0
  private answering = 0
  private closed = false
  private readonly timers = new Set<NodeJS.Timeout>()
  private readonly idleWaiters = new Set<() => void>()
  private readonly random: () => number
  private readonly outcomes: ReadonlyArray<readonly [DlrStatus, number]>
  private readonly maxLog: number
  private readonly agents = {
    http: new http.Agent({ keepAlive: true, maxSockets: 64 }),
    https: new https.Agent({ keepAlive: true, maxSockets: 64 })
  }
  private readonly server: http.Server

  constructor(private readonly options: SimulatorOptions) {
    this.random = options.random ?? seededRandom(options.seed ?? Math.floor(Math.random() * 2 ** 32))
    this.maxLog = options.maxLogEntries ?? 1_000_000
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
    if (req.method === "POST" && path === "/messages") {
      this.readBody(req, res)
      return
    }
    req.resume()
    send(res, this.observe(req.method, path, query))
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

  private readBody(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Array<Buffer> = []
    let size = 0
    req.on("data", (chunk: Buffer) => {
      size += chunk.length
      if (size <= maxBodyBytes) chunks.push(chunk)
    })
    req.on("end", () => {
      const authorized = req.headers.authorization === `Bearer ${this.options.apiKey}`
      const text = size <= maxBodyBytes ? Buffer.concat(chunks).toString("utf8") : undefined
      this.submit(authorized, text, res)
    })
  }

  private submit(authorized: boolean, text: string | undefined, res: http.ServerResponse): void {
    this.counters.submissions++
    const receivedAt = new Date().toISOString()
    if (!authorized) {
      this.counters.unauthorized++
      this.record({ receivedAt, outcome: "unauthorized" })
      send(res, { status: 401, body: errorBody("unauthorized", "missing or wrong api key") })
      return
    }
    const parsed = text === undefined ? "body too large" : validate(text)
    if (typeof parsed === "string") {
      this.counters.malformed++
      this.record({ receivedAt, outcome: "malformed" })
      send(res, { status: text === undefined ? 413 : 400, body: errorBody("invalid_request", parsed) })
      return
    }

    // a fixed number of draws per submission keeps runs comparable when one rate changes
    const latency = draw(this.random, this.options.latencyMs)
    const errorDraw = this.random()
    const throttleDraw = this.random()
    const common = { receivedAt, to: parsed.to, body: parsed.body, reference: parsed.reference }

    let answer: Answer
    let accepted: string | undefined
    if (errorDraw < (this.options.errorRate ?? 0)) {
      this.counters.errors++
      this.record({ ...common, outcome: "error_503" })
      answer = { status: 503, body: errorBody("unavailable", "simulated provider error") }
    } else if (throttleDraw < (this.options.throttleRate ?? 0)) {
      this.counters.throttled++
      this.record({ ...common, outcome: "throttled" })
      answer = { status: 429, body: errorBody("throttled", "slow down"), headers: { "retry-after": "1" } }
    } else if ((this.options.invalidPrefixes ?? []).some((prefix) => parsed.to.startsWith(prefix))) {
      this.counters.invalid++
      this.record({ ...common, outcome: "invalid_number" })
      answer = { status: 400, body: errorBody("invalid_number", "the number is not valid") }
    } else {
      accepted = `sim-${randomUUID()}`
      this.counters.accepted++
      this.record({ ...common, messageId: accepted, outcome: "accepted" })
      answer = { status: 200, body: { messageId: accepted } }
    }
    const dlr = accepted === undefined ? undefined : this.planDlr(accepted, parsed)

    const respond = () => {
      this.answering--
      send(res, answer)
      // the provider accepted it even when the client gave up waiting: the report still comes
      if (dlr !== undefined)
        for (const [delay, payload] of dlr.posts) this.scheduleDlr(dlr.url, payload, delay)
      if (this.isIdle()) this.wakeIdle()
    }
    this.answering++
    if (latency > 0) this.later(respond, latency)
    else respond()
  }

  private planDlr(
    providerMessageId: string,
    sms: ValidSubmission
  ): { readonly url: string; readonly posts: ReadonlyArray<readonly [number, string]> } | undefined {
    const dlr = this.options.dlr ?? {}
    const delay = draw(this.random, dlr.delayMs)
    const status = this.pickStatus(this.random())
    const duplicate = this.random() < (dlr.duplicateRate ?? 0)
    const duplicateDelay = draw(this.random, dlr.delayMs)
    const url = this.options.dlrUrl ?? sms.callbackUrl
    if (dlr.enabled === false || url === undefined) return undefined
    const payload = JSON.stringify({
      messageId: providerMessageId,
      reference: sms.reference,
      status,
      ...(status === "invalid" ? { code: "invalid_number" } : {}),
      timestamp: new Date().toISOString()
    })
    if (duplicate) this.counters.dlrDuplicates++
    return {
      url,
      posts: duplicate
        ? [
            [delay, payload],
            [duplicateDelay, payload]
          ]
        : [[delay, payload]]
    }
  }

  private pickStatus(value: number): DlrStatus {
    for (const [status, upTo] of this.outcomes) if (value < upTo) return status
    return this.outcomes[this.outcomes.length - 1]?.[0] ?? "delivered"
  }

  // -------------------------------------------------------------------------------------------
  // DLR delivery

  private scheduleDlr(url: string, payload: string, delay: number): void {
    if (this.closed) return
    this.counters.dlrPending++
    this.later(() => this.postDlr(url, payload, 0), delay)
  }

  private postDlr(url: string, payload: string, attempt: number): void {
    let settled = false
    const settle = (ok: boolean) => {
      if (settled || this.closed) return
      settled = true
      if (ok) return this.dlrDone("dlrSent")
      if (attempt >= dlrRetries) return this.dlrDone("dlrFailed")
      this.counters.dlrRetried++
      this.later(() => this.postDlr(url, payload, attempt + 1), dlrRetryBaseMs * 2 ** attempt)
    }
    // signed per attempt: a retry hours later must still pass the receiver's freshness check
    const timestamp = Math.floor(Date.now() / 1000)
    const secure = url.startsWith("https:")
    try {
      const request = (secure ? https : http).request(
        url,
        {
          method: "POST",
          agent: secure ? this.agents.https : this.agents.http,
          timeout: dlrPostTimeoutMs,
          headers: {
            "content-type": "application/json",
            "content-length": Buffer.byteLength(payload),
            "x-signature-timestamp": String(timestamp),
            "x-signature": signDeliveryReport(this.options.webhookSecret, payload, timestamp)
          }
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
      request.end(payload)
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

const validate = (text: string): ValidSubmission | string => {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    return "body is not valid JSON"
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) return "body must be a JSON object"
  const fields = json as Record<string, unknown>
  const { to, from, body, reference, callbackUrl } = fields
  if (typeof to !== "string" || to.length === 0) return "to: must be a non-empty string"
  if (typeof body !== "string") return "body: must be a string"
  if (from !== undefined && typeof from !== "string") return "from: must be a string"
  if (reference !== undefined && typeof reference !== "string") return "reference: must be a string"
  if (callbackUrl !== undefined && (typeof callbackUrl !== "string" || !isHttpUrl(callbackUrl))) {
    return "callbackUrl: must be an http(s) URL"
  }
  return { to, from, body, reference, callbackUrl }
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
