/**
 * The provider simulator: a real HTTP server speaking one provider's wire format (`format`:
 * `generic-http`, the default, see GenericHttp.ts; `twilio`, see Twilio.ts; `vonage`, see
 * Vonage.ts), with configurable latency (uniform, with an optional long tail), 503s, 429s,
 * requests that never get an answer, connection resets, invalid-number prefixes and signed DLR
 * callbacks (random delay, hence shuffled; duplicates; a report before the submit answer), and a
 * log of every submission received.
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
 */
import { randomUUID } from "node:crypto"
import http from "node:http"
import https from "node:https"
import type { AddressInfo } from "node:net"
import { Effect, Schema, type Scope } from "effect"
import { signDeliveryReport } from "./GenericHttp.js"
import * as Twilio from "./Twilio.js"
import * as Vonage from "./Vonage.js"

export interface Range {
  readonly min: number
  readonly max: number
}

/**
 * Uniform between min and max; with `p99` (> max), 98% are uniform between min and max and the
 * slowest 2% follow an exponential tail beyond max whose median is p99, so 1% take longer than p99.
 */
export interface LatencyRange extends Range {
  readonly p99?: number
}

export type SimulatorFormat = "generic-http" | "twilio" | "vonage"

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
  /** posts of a refused report after the first (waits double from 50 ms, at most 5 s); default 5 */
  readonly retries?: number
  /**
   * share of accepted submissions whose report is sent before the submit answer: the answer waits
   * until the receiver has answered the report's first post (and for the drawn latency)
   */
  readonly earlyRate?: number
  /** share of accepted submissions whose report is never sent, as real providers lose some */
  readonly loseRate?: number
}

export interface SimulatorOptions {
  /** the wire format this instance speaks; default generic-http */
  readonly format?: SimulatorFormat
  /** 0 (default) picks a free port */
  readonly port?: number
  /** default 127.0.0.1 */
  readonly host?: string
  /** the client's secret: generic-http bearer key, twilio auth token, vonage api_secret */
  readonly apiKey: string
  /** signs DLRs: generic-http webhook secret, vonage signature secret (twilio signs with apiKey) */
  readonly webhookSecret: string
  /** twilio account sid / vonage api_key the client must present; default: any */
  readonly account?: string
  /** vonage DLR signature method; default sha256 */
  readonly signatureMethod?: Vonage.SignatureMethod
  /** answer delay; default 0..0 */
  readonly latencyMs?: LatencyRange
  /** share of submissions answered 503 */
  readonly errorRate?: number
  /**
   * share of submissions throttled: generic-http and twilio 429 (generic-http with
   * `Retry-After: 1`), vonage status "1" (Throttled) in a 200 answer
   */
  readonly throttleRate?: number
  /** share of submissions never answered: the request hangs until the client gives up */
  readonly timeoutRate?: number
  /** share of submissions whose connection is destroyed instead of answered (after the latency) */
  readonly resetRate?: number
  /** numbers (E.164) starting with one of these are refused as invalid numbers */
  readonly invalidPrefixes?: ReadonlyArray<string>
  readonly dlr?: DlrOptions
  /** where DLRs go; default: each submission's callback URL (twilio keeps its `ref` query) */
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

interface ValidSubmission {
  /** E.164 */
  readonly to: string
  readonly from?: string
  readonly body: string
  readonly reference?: string
  readonly callbackUrl?: string
  /** the identity the client presented (twilio account sid, vonage api_key) */
  readonly account?: string
}

type Decoded =
  | { readonly _tag: "Valid"; readonly sms: ValidSubmission }
  | { readonly _tag: "Unauthorized" }
  | { readonly _tag: "Malformed"; readonly status: number; readonly code: string; readonly problem: string }

type Answer = { readonly status: number; readonly body: unknown; readonly headers?: Record<string, string> }

/** One DLR post: rendered per attempt, so a retry is signed afresh. */
interface DlrPost {
  readonly url: string
  readonly render: () => { readonly body: string; readonly headers: Record<string, string> }
}

/** What the simulator decided for an accepted submission: what a status query answers. */
interface Decided {
  readonly status: DlrStatus
  /** epoch ms: before it the message is still on its way (not final), as its report is not due yet */
  readonly finalAt: number
  /** the identity that submitted it (twilio account sid, vonage api_key): no one else sees it */
  readonly account?: string
}

/** What makes one provider's wire format: its route, its answers and its DLRs. */
interface Wire {
  readonly isSubmit: (method: string | undefined, path: string) => boolean
  readonly decode: (req: http.IncomingMessage, path: string, text: string | undefined) => Decoded
  readonly unauthorized: Answer
  readonly malformed: (status: number, code: string, problem: string) => Answer
  readonly error: Answer
  readonly throttled: Answer
  readonly invalid: (sms: ValidSubmission) => Answer
  readonly accepted: (messageId: string, sms: ValidSubmission) => Answer
  readonly messageId: () => string
  readonly dlrUrl: (sms: ValidSubmission, override: string | undefined) => string | undefined
  readonly report: (url: string, messageId: string, sms: ValidSubmission, status: DlrStatus) => DlrPost
  /** the answer to a status query, or undefined when the request is not one (formats that have one) */
  readonly statusQuery?: (
    req: http.IncomingMessage,
    path: string,
    query: string,
    decided: (messageId: string) => Decided | undefined
  ) => Answer | undefined
}

const malformed = (status: number, code: string, problem: string): Decoded => ({
  _tag: "Malformed",
  status,
  code,
  problem
})
const tooLarge = malformed(413, "too_large", "body too large")

// ---------------------------------------------------------------------------------------------
// generic-http

const errorBody = (code: string, message: string) => ({ error: { code, message } })

const genericWire = (options: SimulatorOptions): Wire => ({
  isSubmit: (method, path) => method === "POST" && path === "/messages",
  decode: (req, _path, text) => {
    if (req.headers.authorization !== `Bearer ${options.apiKey}`) return { _tag: "Unauthorized" }
    if (text === undefined) return tooLarge
    const parsed = validateGeneric(text)
    return typeof parsed === "string"
      ? malformed(400, "invalid_request", parsed)
      : { _tag: "Valid", sms: parsed }
  },
  unauthorized: { status: 401, body: errorBody("unauthorized", "missing or wrong api key") },
  malformed: (status, _code, problem) => ({ status, body: errorBody("invalid_request", problem) }),
  error: { status: 503, body: errorBody("unavailable", "simulated provider error") },
  throttled: { status: 429, body: errorBody("throttled", "slow down"), headers: { "retry-after": "1" } },
  invalid: () => ({ status: 400, body: errorBody("invalid_number", "the number is not valid") }),
  accepted: (messageId) => ({ status: 200, body: { messageId } }),
  messageId: () => `sim-${randomUUID()}`,
  dlrUrl: (sms, override) => override ?? sms.callbackUrl,
  report: (url, messageId, sms, status) => {
    const payload = JSON.stringify({
      messageId,
      reference: sms.reference,
      status,
      ...(status === "invalid" ? { code: "invalid_number" } : {}),
      timestamp: new Date().toISOString()
    })
    return {
      url,
      render: () => {
        const timestamp = Math.floor(Date.now() / 1000)
        return {
          body: payload,
          headers: {
            "content-type": "application/json",
            "x-signature-timestamp": String(timestamp),
            "x-signature": signDeliveryReport(options.webhookSecret, payload, timestamp)
          }
        }
      }
    }
  }
})

const validateGeneric = (text: string): ValidSubmission | string => {
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

// ---------------------------------------------------------------------------------------------
// twilio

const twilioRoute = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\.json$/
const twilioMessageRoute = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\/([^/]+)\.json$/

const twilioError = (status: number, code: number, message: string): Answer => ({
  status,
  body: { code, message, more_info: `errors/${code}`, status }
})

const basicCredentials = (value: string | undefined): { user: string; password: string } | undefined => {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(value ?? "")
  if (match === null) return undefined
  const decoded = Buffer.from(match[1] ?? "", "base64").toString("utf8")
  const colon = decoded.indexOf(":")
  return colon === -1 ? undefined : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) }
}

const safeDecode = (value: string): string | undefined => {
  try {
    return decodeURIComponent(value)
  } catch {
    return undefined
  }
}

const refOf = (url: string): string | undefined => {
  const query = url.indexOf("?")
  const ref = query === -1 ? null : new URLSearchParams(url.slice(query + 1)).get("ref")
  return ref !== null && ref.length > 0 ? ref : undefined
}

const twilioStatuses: Record<DlrStatus, readonly [string, string | undefined]> = {
  delivered: ["delivered", undefined],
  undelivered: ["undelivered", "30003"],
  failed: ["failed", "30008"],
  rejected: ["failed", "30007"],
  expired: ["undelivered", "30003"],
  invalid: ["undelivered", "30005"]
}

const twilioWire = (options: SimulatorOptions): Wire => ({
  isSubmit: (method, path) => method === "POST" && twilioRoute.test(path),
  decode: (req, path, text) => {
    const sid = safeDecode(twilioRoute.exec(path)?.[1] ?? "")
    const credentials = basicCredentials(req.headers.authorization)
    if (
      sid === undefined ||
      credentials === undefined ||
      credentials.user !== sid ||
      credentials.password !== options.apiKey ||
      (options.account !== undefined && sid !== options.account)
    ) {
      return { _tag: "Unauthorized" }
    }
    if (text === undefined) return tooLarge
    const form = new URLSearchParams(text)
    const to = form.get("To")
    const from = form.get("From")
    const body = form.get("Body")
    const callbackUrl = form.get("StatusCallback")
    if (to === null || to.length === 0) return malformed(400, "21604", "A 'To' phone number is required.")
    if (body === null) return malformed(400, "21602", "Message body is required.")
    if ((from === null || from.length === 0) && !form.get("MessagingServiceSid")) {
      return malformed(400, "21603", "A 'From' phone number is required.")
    }
    if (callbackUrl !== null && !isHttpUrl(callbackUrl)) {
      return malformed(400, "21609", "Invalid StatusCallback url")
    }
    const reference = callbackUrl === null ? undefined : refOf(callbackUrl)
    return {
      _tag: "Valid",
      sms: {
        to,
        body,
        account: sid,
        ...(from !== null && from.length > 0 ? { from } : {}),
        ...(reference !== undefined ? { reference } : {}),
        ...(callbackUrl !== null ? { callbackUrl } : {})
      }
    }
  },
  unauthorized: twilioError(401, 20003, "Authenticate"),
  malformed: (status, code, problem) => twilioError(status, Number(code) || 21600, problem),
  error: twilioError(503, 20503, "Service Unavailable"),
  throttled: twilioError(429, 20429, "Too Many Requests"),
  invalid: (sms) => twilioError(400, 21211, `The 'To' number ${sms.to} is not a valid phone number.`),
  accepted: (sid, sms) => ({
    status: 201,
    body: {
      sid,
      account_sid: sms.account,
      to: sms.to,
      from: sms.from ?? null,
      body: sms.body,
      status: "queued",
      direction: "outbound-api",
      api_version: "2010-04-01",
      num_segments: "1",
      date_created: new Date().toUTCString(),
      error_code: null,
      error_message: null,
      uri: `/2010-04-01/Accounts/${sms.account}/Messages/${sid}.json`
    }
  }),
  messageId: () => `SM${randomUUID().replaceAll("-", "")}`,
  // the ref travels in the callback URL: an overriding dlrUrl keeps it
  dlrUrl: (sms, override) =>
    override === undefined
      ? sms.callbackUrl
      : sms.reference === undefined
        ? override
        : Twilio.statusCallbackUrl(override, sms.reference),
  statusQuery: (req, path, _query, decided) => {
    const route = req.method === "GET" ? twilioMessageRoute.exec(path) : null
    if (route === null) return undefined
    const account = safeDecode(route[1] ?? "")
    const sid = safeDecode(route[2] ?? "") ?? ""
    const credentials = basicCredentials(req.headers.authorization)
    if (
      account === undefined ||
      credentials === undefined ||
      credentials.user !== account ||
      credentials.password !== options.apiKey ||
      (options.account !== undefined && account !== options.account)
    ) {
      return twilioError(401, 20003, "Authenticate")
    }
    const message = decided(sid)
    if (message === undefined || message.account !== account) {
      return twilioError(404, 20404, `The requested resource ${path} was not found`)
    }
    const [status, errorCode] =
      Date.now() < message.finalAt ? (["sent", undefined] as const) : twilioStatuses[message.status]
    return {
      status: 200,
      body: {
        sid,
        account_sid: account,
        status,
        direction: "outbound-api",
        api_version: "2010-04-01",
        error_code: errorCode === undefined ? null : Number(errorCode),
        error_message: null,
        date_updated: new Date().toUTCString(),
        uri: path
      }
    }
  },
  report: (url, sid, sms, status) => {
    const [messageStatus, errorCode] = twilioStatuses[status]
    const params: Record<string, string> = {
      AccountSid: sms.account ?? "",
      ApiVersion: "2010-04-01",
      From: sms.from ?? "",
      MessageSid: sid,
      MessageStatus: messageStatus,
      SmsSid: sid,
      SmsStatus: messageStatus,
      To: sms.to,
      ...(errorCode !== undefined ? { ErrorCode: errorCode } : {})
    }
    const body = new URLSearchParams(params).toString()
    const signature = Twilio.signStatusCallback(options.apiKey, url, params)
    return {
      url,
      render: () => ({
        body,
        headers: { "content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature }
      })
    }
  }
})

// ---------------------------------------------------------------------------------------------
// vonage

const vonageAnswer = (httpStatus: number, part: Record<string, string>): Answer => ({
  status: httpStatus,
  body: { "message-count": "1", messages: [part] }
})

const vonageStatuses: Record<DlrStatus, readonly [string, string]> = {
  delivered: ["delivered", "0"],
  undelivered: ["failed", "2"],
  failed: ["failed", "1"],
  rejected: ["rejected", "6"],
  expired: ["expired", "1"],
  invalid: ["failed", "3"]
}

/** A Vonage request's parameters: a JSON object or a form. */
const vonageParams = (req: http.IncomingMessage, text: string): Map<string, string> | undefined => {
  const params = new Map<string, string>()
  if ((req.headers["content-type"] ?? "").includes("json") || text.trimStart().startsWith("{")) {
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch {
      return undefined
    }
    if (typeof json !== "object" || json === null || Array.isArray(json)) return undefined
    for (const [name, value] of Object.entries(json)) {
      if (typeof value === "string" || typeof value === "number") params.set(name, String(value))
    }
    return params
  }
  for (const [name, value] of new URLSearchParams(text)) params.set(name, value)
  return params
}

const two = (n: number) => String(n).padStart(2, "0")

const vonageWire = (options: SimulatorOptions): Wire => ({
  isSubmit: (method, path) => method === "POST" && path === "/sms/json",
  decode: (req, _path, text) => {
    if (text === undefined) return tooLarge
    const params = vonageParams(req, text)
    if (params === undefined) return malformed(400, "3", "Invalid JSON body")
    const apiKey = params.get("api_key")
    if (
      apiKey === undefined ||
      apiKey.length === 0 ||
      params.get("api_secret") !== options.apiKey ||
      (options.account !== undefined && apiKey !== options.account)
    ) {
      return { _tag: "Unauthorized" }
    }
    const to = params.get("to")
    const from = params.get("from")
    const body = params.get("text")
    const callbackUrl = params.get("callback")
    const reference = params.get("client-ref")
    if (to === undefined || to.length === 0) return malformed(200, "2", "Missing to param")
    if (!/^\d{6,15}$/.test(to)) return malformed(200, "3", "Invalid to address")
    if (from === undefined || from.length === 0) return malformed(200, "2", "Missing from param")
    if (body === undefined) return malformed(200, "2", "Missing text param")
    if (callbackUrl !== undefined && !isHttpUrl(callbackUrl))
      return malformed(200, "23", "Invalid Callback Url")
    return {
      _tag: "Valid",
      sms: {
        to: `+${to}`,
        from,
        body,
        account: apiKey,
        ...(reference !== undefined && reference.length > 0 ? { reference } : {}),
        ...(callbackUrl !== undefined ? { callbackUrl } : {})
      }
    }
  },
  unauthorized: vonageAnswer(200, { status: "4", "error-text": "Bad Credentials" }),
  malformed: (status, code, problem) => vonageAnswer(status, { status: code, "error-text": problem }),
  error: { status: 503, body: { type: "about:blank", title: "Service Unavailable" } },
  throttled: vonageAnswer(200, {
    status: "1",
    "error-text": "Throughput Rate Exceeded - please wait [ 1000 ] and retry"
  }),
  invalid: () => vonageAnswer(200, { status: "6", "error-text": "Unroutable message - rejected" }),
  accepted: (messageId, sms) =>
    vonageAnswer(200, {
      to: sms.to.slice(1),
      "message-id": messageId,
      status: "0",
      "remaining-balance": "100.00000000",
      "message-price": "0.03330000",
      network: "23410",
      ...(sms.reference !== undefined ? { "client-ref": sms.reference } : {})
    }),
  messageId: () => randomUUID().replaceAll("-", "").slice(0, 16).toUpperCase(),
  dlrUrl: (sms, override) => override ?? sms.callbackUrl,
  statusQuery: (req, path, query, decided) => {
    if (req.method !== "GET" || path !== "/v2/reports/records") return undefined
    const problem = (status: number, title: string, detail: string): Answer => ({
      status,
      body: { type: "https://developer.vonage.com/api-errors", title, detail }
    })
    const credentials = basicCredentials(req.headers.authorization)
    if (
      credentials === undefined ||
      credentials.user.length === 0 ||
      credentials.password !== options.apiKey ||
      (options.account !== undefined && credentials.user !== options.account)
    ) {
      return problem(401, "Unauthorized", "missing or wrong api key and secret")
    }
    const params = new URLSearchParams(query)
    const account = params.get("account_id")
    const ids = (params.get("id") ?? "").split(",").filter((id) => id.length > 0)
    if (account !== credentials.user) return problem(403, "Forbidden", "account_id is not the api key's")
    if (params.get("product") !== "SMS" || params.get("direction") !== "outbound" || ids.length === 0) {
      return problem(400, "Bad Request", "product=SMS, direction=outbound and id are required")
    }
    const now = Date.now()
    const records: Array<Record<string, string>> = []
    const notFound: Array<string> = []
    for (const id of ids) {
      const message = decided(id)
      if (message === undefined || message.account !== account) {
        notFound.push(id)
        continue
      }
      const [status, errorCode] = now < message.finalAt ? ["accepted", "0"] : vonageStatuses[message.status]
      records.push({
        account_id: account,
        message_id: id,
        direction: "outbound",
        status,
        error_code: errorCode,
        error_code_description: status
      })
    }
    return {
      status: 200,
      body: {
        request_id: randomUUID(),
        request_status: "SUCCESS",
        received_at: new Date(now).toISOString(),
        account_id: account,
        product: "SMS",
        direction: "outbound",
        items_count: records.length,
        records,
        ...(notFound.length > 0 ? { ids_not_found: notFound.join(",") } : {})
      }
    }
  },
  report: (url, messageId, sms, status) => {
    const [vonageStatus, errCode] = vonageStatuses[status]
    const method = options.signatureMethod ?? "sha256"
    return {
      url,
      render: () => {
        const now = new Date()
        const params: Record<string, string> = {
          msisdn: sms.to.slice(1),
          to: sms.from ?? "",
          "network-code": "23410",
          messageId,
          price: "0.03330000",
          status: vonageStatus,
          scts: `${two(now.getUTCFullYear() % 100)}${two(now.getUTCMonth() + 1)}${two(now.getUTCDate())}${two(now.getUTCHours())}${two(now.getUTCMinutes())}`,
          "err-code": errCode,
          "api-key": sms.account ?? "",
          ...(sms.reference !== undefined ? { "client-ref": sms.reference } : {}),
          "message-timestamp": now.toISOString().slice(0, 19).replace("T", " "),
          timestamp: String(Math.floor(now.getTime() / 1000)),
          nonce: randomUUID()
        }
        const sig = Vonage.signParams(options.webhookSecret, method, params)
        return { body: JSON.stringify({ ...params, sig }), headers: { "content-type": "application/json" } }
      }
    }
  }
})

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
