/**
 * The `generic-http` provider adapter: our own JSON wire format, for providers (and the simulator)
 * integrated through a thin HTTP bridge.
 *
 * Submit: `POST {baseUrl}{path}` (path default `/messages`)
 *   headers  `Authorization: Bearer <apiKey>`, `Content-Type: application/json`
 *   body     `{ "to", "from"?, "body", "reference": <our message id>, "callbackUrl" }`
 *   answers  2xx `{ "messageId" }`                       -> Accepted (`idField` names another field,
 *                                                           or a dotted path such as `data.id`)
 *            2xx without a messageId                     -> Transient provider_unavailable
 *            400/422 `{ "error": { "code", "message" } }` -> Permanent invalid_number (code
 *                                                           "invalid_number") or rejected (code = error code)
 *            401/403                                     -> Permanent rejected, code "auth"
 *            408 or no answer within timeoutMs           -> Transient timeout
 *            429 (`Retry-After`: seconds or HTTP date)   -> Transient throttled, retryAfterMs
 *            5xx                                         -> Transient http_5xx (retryAfterMs if given)
 *            other 4xx                                   -> Permanent rejected, code "http_<status>"
 *            1xx/3xx/404/405                             -> Transient provider_unavailable: a bridge or
 *                                                           configuration fault, not the message's
 *            connection errors                           -> Transient network
 *
 * DLR webhook (provider -> us): `POST` JSON
 *   `{ "messageId", "reference"?, "status", "code"?, "timestamp"?: ISO }`
 *   headers `X-Signature-Timestamp: <unix seconds>`,
 *           `X-Signature: sha256=<hex HMAC-SHA256(webhookSecret, timestamp + "." + rawBody)>`
 *   A timestamp more than 5 minutes from now is refused (replay protection).
 *   status delivered -> delivered; failed/undelivered/expired -> failed undeliverable;
 *   rejected -> failed rejected; status "invalid" or a failure with code "invalid_number" ->
 *   failed invalid_number; anything else (accepted, queued, sent, ...) -> pending.
 *   `statusMap` adds or overrides entries (status compared in lower case), e.g.
 *   `{ "DELIVRD": "delivered", "UNDELIV": "undeliverable", "REJECTD": "rejected" }` for a
 *   Digital Virgo-style bridge that forwards SMPP-like statuses.
 */
import { createHmac, timingSafeEqual } from "node:crypto"
import { Duration, Effect, Either, ParseResult, Schema, type Scope } from "effect"
import {
  adapterCalls,
  adapterClock,
  type MakeOptions,
  makeSubmitter,
  permanent,
  transient
} from "./HttpSubmit.js"
import {
  type DeliveryReport,
  type InboundWebhook,
  InvalidDeliveryReport,
  type ProviderAdapter,
  type SubmitResult
} from "./ProviderAdapter.js"

/** What a DLR status means: delivered, still pending, or failed for this reason. */
export const DlrOutcome = Schema.Literal(
  "delivered",
  "pending",
  "undeliverable",
  "rejected",
  "invalid_number",
  "recipient_inactive",
  "expired"
)
export type DlrOutcome = typeof DlrOutcome.Type

/** The statuses our own wire format (and the simulator) uses; anything else is pending. */
export const defaultStatusMap: Readonly<Record<string, DlrOutcome>> = {
  delivered: "delivered",
  failed: "undeliverable",
  undelivered: "undeliverable",
  expired: "undeliverable",
  rejected: "rejected",
  invalid: "invalid_number"
}

export const GenericHttpConfig = Schema.Struct({
  id: Schema.String.pipe(Schema.pattern(/^[a-z0-9][a-z0-9_-]{0,31}$/)),
  baseUrl: Schema.String.pipe(
    Schema.pattern(/^https?:\/\/\S+$/, { message: () => "must be an http(s) URL" })
  ),
  apiKey: Schema.NonEmptyString,
  webhookSecret: Schema.NonEmptyString,
  /** default 10000 */
  timeoutMs: Schema.optional(Schema.Int.pipe(Schema.positive())),
  /** the submit path under `baseUrl`; default `/messages` */
  path: Schema.optional(
    Schema.String.pipe(Schema.pattern(/^\/[^\s?#]*$/, { message: () => "must be a path starting with /" }))
  ),
  /** the provider message id in a 2xx answer: a field name or a dotted path; default `messageId` */
  idField: Schema.optional(
    Schema.String.pipe(
      Schema.pattern(/^[A-Za-z0-9_$-]+(\.[A-Za-z0-9_$-]+)*$/, {
        message: () => "must be a field name or a dotted path"
      })
    )
  ),
  /** DLR status (any case) -> outcome, merged over `defaultStatusMap` */
  statusMap: Schema.optional(Schema.Record({ key: Schema.String, value: DlrOutcome }))
})
export type GenericHttpConfig = typeof GenericHttpConfig.Type

export const defaultTimeoutMs = 10_000
/** How far a DLR's signature timestamp may be from our clock. */
export const signatureToleranceSeconds = 300

/** The adapter holds a connection pool, closed with the scope. */
export const make = (
  config: GenericHttpConfig,
  options: MakeOptions = {}
): Effect.Effect<ProviderAdapter, never, Scope.Scope> =>
  Effect.gen(function* () {
    const now = yield* adapterClock(options)
    const timeout = Duration.millis(config.timeoutMs ?? defaultTimeoutMs)
    const url = `${config.baseUrl.replace(/\/+$/, "")}${config.path ?? "/messages"}`
    const idPath = (config.idField ?? "messageId").split(".")
    const statusMap = lowerKeys({ ...defaultStatusMap, ...lowerKeys(config.statusMap ?? {}) })
    // undici directly, with kept-alive connections: an HTTP call per message is the hot path, and
    // it cost about four times the CPU through the Effect HttpClient wrapper
    const post = yield* makeSubmitter("generic-http", timeout)
    const headers = {
      authorization: `Bearer ${config.apiKey}`,
      "content-type": "application/json",
      accept: "application/json"
    }

    const calls = adapterCalls(post, (sms) => ({
      url,
      headers: headers,
      body: JSON.stringify({
        to: sms.to,
        from: sms.from,
        body: sms.body,
        reference: sms.messageId,
        callbackUrl: sms.callbackUrl
      }),
      classify: (answer) => classifyResponse(answer.status, answer.headers, answer.text, now(), idPath),
      recipient: sms.to
    }))

    return {
      id: config.id,
      type: "generic-http",
      ...calls,
      parseDeliveryReport: (webhook) => parseDeliveryReport(config.webhookSecret, webhook, now(), statusMap)
    } satisfies ProviderAdapter
  })

const lowerKeys = <A>(record: Readonly<Record<string, A>>): Record<string, A> =>
  Object.fromEntries(Object.entries(record).map(([key, value]) => [key.toLowerCase(), value]))

/** JSON text to a value, or undefined: `Schema.parseJson()` did the same at several times the cost. */
const parseJsonOrUndefined = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** The value at a path of own object keys, or undefined. */
export const fieldAt = (value: unknown, path: ReadonlyArray<string>): unknown => {
  let at = value
  for (const key of path) {
    if (typeof at !== "object" || at === null || Array.isArray(at) || !Object.hasOwn(at, key))
      return undefined
    at = (at as Record<string, unknown>)[key]
  }
  return at
}

export const classifyResponse = (
  status: number,
  headers: Readonly<Record<string, string | undefined>>,
  text: string,
  nowMs: number,
  idPath: ReadonlyArray<string> = ["messageId"]
): SubmitResult => {
  const json = parseJsonOrUndefined(text)
  const errorCode = nonEmpty(fieldAt(json, ["error", "code"]))
  const errorMessage = nonEmpty(fieldAt(json, ["error", "message"]))
  const detail = `HTTP ${status}${errorMessage !== undefined ? `: ${errorMessage}` : errorCode !== undefined ? `: ${errorCode}` : ""}`

  if (status >= 200 && status < 300) {
    const providerMessageId = nonEmpty(fieldAt(json, idPath))
    return providerMessageId === undefined
      ? transient("provider_unavailable", `HTTP ${status} without a ${idPath.join(".")}`)
      : { _tag: "Accepted", providerMessageId }
  }
  if (status === 400 || status === 422) {
    return errorCode === "invalid_number"
      ? permanent("invalid_number", errorCode, detail)
      : permanent("rejected", errorCode ?? `http_${status}`, detail)
  }
  if (status === 401 || status === 403) return permanent("rejected", "auth", detail)
  if (status === 408) return transient("timeout", detail)
  if (status === 429) return transient("throttled", detail, parseRetryAfter(headers["retry-after"], nowMs))
  if (status >= 500) return transient("http_5xx", detail, parseRetryAfter(headers["retry-after"], nowMs))
  if (status >= 400 && status !== 404 && status !== 405) {
    return permanent("rejected", errorCode ?? `http_${status}`, detail)
  }
  return transient("provider_unavailable", detail)
}

export const nonEmpty = (value: unknown): string | undefined =>
  typeof value === "string" && value.length > 0
    ? value
    : typeof value === "number"
      ? String(value)
      : undefined

/** `Retry-After` is either delay-seconds or an HTTP date (RFC 9110 §10.2.3). */
export const parseRetryAfter = (value: string | undefined, nowMs: number): number | undefined => {
  if (value === undefined) return undefined
  const trimmed = value.trim()
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000)
  const at = Date.parse(trimmed)
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs)
}

// ---------------------------------------------------------------------------------------------
// DLR webhook

/** The `X-Signature` header value for a DLR body signed at `timestampSeconds`. */
export const signDeliveryReport = (
  secret: string,
  body: string | Uint8Array,
  timestampSeconds: number
): string => `sha256=${hmac(secret, String(timestampSeconds), body).toString("hex")}`

/** Over the bytes the provider sent: text decoded from invalid UTF-8 would no longer match them. */
const hmac = (secret: string, timestamp: string, body: string | Uint8Array): Buffer =>
  createHmac("sha256", secret).update(`${timestamp}.`).update(body).digest()

export const header = (headers: InboundWebhook["headers"], name: string): string | undefined => {
  const direct = headers[name]
  if (direct !== undefined) return direct
  for (const [key, value] of Object.entries(headers)) if (key.toLowerCase() === name) return value
  return undefined
}

const badSignature = (message: string) =>
  Either.left(new InvalidDeliveryReport({ reason: "BadSignature", message }))

/** The report's wire shape: the specification `leanWireReport` is held to (a test compares them). */
export const WireReport = Schema.Struct({
  messageId: Schema.NonEmptyString,
  reference: Schema.optional(Schema.String),
  status: Schema.NonEmptyString,
  code: Schema.optional(Schema.String),
  timestamp: Schema.optional(Schema.String)
})
const decodeReport = Schema.decodeUnknownEither(Schema.parseJson(WireReport), { errors: "first" })

const isString = (value: unknown): value is string => typeof value === "string"
const optionalString = (value: unknown) => value === undefined || typeof value === "string"

/**
 * `WireReport` decoded by plain checks: a report per message is the webhook's hot path, and the
 * Schema decoder cost more than verifying the signature. Undefined when the body is not a valid
 * report; the Schema then decodes it again to say precisely what is wrong (rare, so its cost is no
 * matter). Like the Schema, it keeps only the fields it knows.
 */
export const leanWireReport = (body: string): typeof WireReport.Type | undefined => {
  const json = parseJsonOrUndefined(body)
  if (typeof json !== "object" || json === null || Array.isArray(json)) return undefined
  const { messageId, reference, status, code, timestamp } = json as Record<string, unknown>
  if (!isString(messageId) || messageId.length === 0 || !isString(status) || status.length === 0)
    return undefined
  if (!optionalString(reference) || !optionalString(code) || !optionalString(timestamp)) return undefined
  const wire: { -readonly [K in keyof typeof WireReport.Type]: (typeof WireReport.Type)[K] } = {
    messageId,
    status
  }
  if (reference !== undefined) wire.reference = reference
  if (code !== undefined) wire.code = code
  if (timestamp !== undefined) wire.timestamp = timestamp
  return wire
}

/** Verifies the signature (and its freshness against `nowMs`), then parses the report. */
export const parseDeliveryReport = (
  webhookSecret: string,
  webhook: InboundWebhook,
  nowMs: number,
  statusMap: Readonly<Record<string, DlrOutcome>> = defaultStatusMap
): Either.Either<DeliveryReport, InvalidDeliveryReport> => {
  const timestamp = header(webhook.headers, "x-signature-timestamp")
  const signature = header(webhook.headers, "x-signature")
  if (timestamp === undefined || signature === undefined) return badSignature("missing signature headers")
  if (!/^\d{1,12}$/.test(timestamp)) return badSignature("malformed signature timestamp")
  if (Math.abs(nowMs / 1000 - Number(timestamp)) > signatureToleranceSeconds) {
    return badSignature("signature timestamp outside the 5 minute window")
  }
  const match = /^sha256=([0-9a-fA-F]{64})$/.exec(signature.trim())
  if (match === null) return badSignature("malformed signature")
  const expected = hmac(webhookSecret, timestamp, webhook.rawBody ?? webhook.body)
  if (!timingSafeEqual(Buffer.from(match[1] ?? "", "hex"), expected))
    return badSignature("signature mismatch")

  const lean = leanWireReport(webhook.body)
  if (lean !== undefined) return Either.right(toDeliveryReport(lean, statusMap))
  return Either.match(decodeReport(webhook.body), {
    onLeft: (error) => {
      const [issue] = ParseResult.ArrayFormatter.formatErrorSync(error)
      const where = issue !== undefined && issue.path.length > 0 ? `${issue.path.join(".")}: ` : ""
      return Either.left(
        new InvalidDeliveryReport({
          reason: "Malformed",
          message: `${where}${issue?.message ?? "invalid report"}`
        })
      )
    },
    onRight: (wire) => Either.right(toDeliveryReport(wire, statusMap))
  })
}

const toDeliveryReport = (
  wire: typeof WireReport.Type,
  statusMap: Readonly<Record<string, DlrOutcome>>
): DeliveryReport => {
  const status = wire.status.toLowerCase()
  // own keys only: a status such as "constructor" must not reach Object.prototype
  const outcome = Object.hasOwn(statusMap, status) ? (statusMap[status] ?? "pending") : "pending"
  const base = {
    providerMessageId: wire.messageId,
    rawStatus: wire.status,
    ...(wire.reference !== undefined && wire.reference.length > 0 ? { reference: wire.reference } : {}),
    ...(wire.code !== undefined ? { code: wire.code } : {})
  }
  if (outcome === "delivered" || outcome === "pending") return { ...base, outcome }
  const failureReason = wire.code === "invalid_number" ? "invalid_number" : outcome
  return { ...base, outcome: "failed", failureReason }
}
