/**
 * The `vonage` provider adapter: Vonage's SMS API (the `/sms/json` endpoint, formerly Nexmo).
 *
 * Submit: `POST {baseUrl}/sms/json`, `Content-Type: application/x-www-form-urlencoded`
 *   body     `api_key`, `api_secret`, `from` (the message's sender, else `from` from the config),
 *            `to` (digits, no plus), `text`, `type` (`unicode` when the text needs UCS-2, else
 *            `text`), `client-ref` (our message id, echoed in the DLR), `callback` (our DLR URL),
 *            `status-report-req=1`
 *   answers  HTTP 200 `{ "message-count", "messages": [{ "status", "message-id", "error-text"? }] }`
 *            (one entry per part). A part with status "0" -> Accepted with its message-id;
 *            otherwise the first part's status decides:
 *              1 throttled, 10 too many binds               -> Transient throttled
 *              5 internal error                             -> Transient http_5xx
 *              9 out of credit                              -> Transient provider_unavailable (the
 *                                                              account, not the message: fail over)
 *              6 invalid message (unrecognised prefix),
 *              33 number de-activated, 3 invalid parameters
 *              naming the `to` address                      -> Permanent invalid_number
 *              4 bad credentials, 14 invalid signature      -> Permanent rejected, code "auth"
 *              any other (2 missing params, 7 barred, 15 invalid sender, 29 non-whitelisted, ...)
 *                                                           -> Permanent rejected, code = the status
 *            HTTP 401/403 -> Permanent rejected "auth"; 408/no answer -> Transient timeout;
 *            429 -> Transient throttled (`Retry-After`); 5xx -> Transient http_5xx;
 *            1xx/3xx/404/405/2xx without messages -> Transient provider_unavailable;
 *            other 4xx -> Permanent rejected; connection errors -> Transient network.
 *
 * DLR (Vonage -> us): the delivery receipt's parameters, as a JSON object (Vonage's "POST-JSON"
 * webhook method, which the simulator uses), a form body ("POST"), or the URL's query ("GET").
 * Fields: `messageId`, `msisdn`, `to`, `network-code`, `price`, `status`, `scts`, `err-code`,
 * `api-key`, `client-ref`, `message-timestamp`, and with signed webhooks `timestamp`, `nonce`, `sig`.
 *
 * Signature (Vonage "Signing Messages" guide, developer.vonage.com/getting-started/concepts/
 * signing-messages, as implemented by Vonage's own SDKs: `SMS.verifySignature` in
 * vonage-node-sdk packages/sms/lib/sms.ts and `Client.check_signature` in vonage-python-sdk):
 *   1. take every parameter except `sig`, sorted by name;
 *   2. in each value replace every `&` and `=` with `_`;
 *   3. concatenate `&name=value` for each (note the leading `&`);
 *   4. `md5hash` (the dashboard's default): hex MD5 of that string followed by the signature secret;
 *      `md5`/`sha1`/`sha256`/`sha512`: hex HMAC of that string keyed by the signature secret;
 *   5. compare with `sig` ignoring case (done here in constant time).
 *   `timestamp` (Unix seconds, itself signed) must be within 5 minutes of our clock.
 *   Signed webhooks must be enabled on the Vonage account: an unsigned DLR is refused.
 *
 * Status mapping: delivered -> delivered; accepted/buffered/unknown -> pending; expired ->
 * failed undeliverable; failed/rejected -> failed by `err-code`: 3 (absent subscriber, permanent),
 * 12 (destination unreachable) -> invalid_number; 4 (barred by user), 6 (anti-spam), 9 (user
 * opted out of the service), 14 (blocked by carrier), 50-54 (filters, regulation) -> rejected;
 * otherwise a `rejected` status -> rejected, else undeliverable.
 *
 * Status query (at a report deadline): the synchronous Reports API, `GET {reportsBaseUrl}/v2/reports/
 * records?account_id={apiKey}&product=SMS&direction=outbound&id={message-id}` (default
 * `https://api.nexmo.com`), `Authorization: Basic base64(apiKey:apiSecret)`; the answer's `records`
 * hold the message's record, whose `status` and `error_code` read as a receipt's `status` and
 * `err-code`: delivered, failed, rejected, expired are final; anything else (submitted, accepted,
 * buffered, unknown, deleted) is not. An id Vonage does not know is listed in `ids_not_found`.
 * (The Reports API is a paid product on the Vonage account; without it the query answers 401/403,
 * and the message is recorded unknown as it would have been without a query.)
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto"
import { Duration, Effect, Either, Schema, type Scope } from "effect"
import { segmentsOf } from "../domain/Segments.js"
import {
  defaultTimeoutMs,
  fieldAt,
  nonEmpty,
  parseRetryAfter,
  signatureToleranceSeconds
} from "./GenericHttp.js"
import {
  adapterCalls,
  adapterClock,
  type MakeOptions,
  makeSubmitter,
  permanent,
  type ProviderAnswer,
  transient
} from "./HttpSubmit.js"
import {
  type DeliveryReport,
  type InboundWebhook,
  InvalidDeliveryReport,
  type OutboundSms,
  type ProviderAdapter,
  type QueriedStatus,
  type StatusQueryError,
  type SubmitResult
} from "./ProviderAdapter.js"
import { httpFailure, makeStatusGetter, malformedAnswer, queriedStatusOf } from "./StatusQuery.js"

export const defaultBaseUrl = "https://rest.nexmo.com"
/** where Vonage's Reports API answers status queries */
export const defaultReportsBaseUrl = "https://api.nexmo.com"

export const SignatureMethod = Schema.Literal("md5hash", "md5", "sha1", "sha256", "sha512")
export type SignatureMethod = typeof SignatureMethod.Type

export const VonageConfig = Schema.Struct({
  id: Schema.String.pipe(Schema.pattern(/^[a-z0-9][a-z0-9_-]{0,31}$/)),
  /** default `https://rest.nexmo.com` */
  baseUrl: Schema.optional(
    Schema.String.pipe(Schema.pattern(/^https?:\/\/\S+$/, { message: () => "must be an http(s) URL" }))
  ),
  /** the Reports API, which status queries ask; default `https://api.nexmo.com` */
  reportsBaseUrl: Schema.optional(
    Schema.String.pipe(Schema.pattern(/^https?:\/\/\S+$/, { message: () => "must be an http(s) URL" }))
  ),
  apiKey: Schema.NonEmptyString,
  /** secret */
  apiSecret: Schema.NonEmptyString,
  /** secret: the account's signature secret, which signs the DLR webhooks */
  signatureSecret: Schema.NonEmptyString,
  /** as chosen in the Vonage dashboard; default sha256 (HMAC-SHA256) */
  signatureMethod: Schema.optional(SignatureMethod),
  /** the sender when a message names none (Vonage requires one) */
  from: Schema.optional(Schema.NonEmptyString),
  /** default 10000 */
  timeoutMs: Schema.optional(Schema.Int.pipe(Schema.positive()))
})
export type VonageConfig = typeof VonageConfig.Type

/** The adapter holds a connection pool, closed with the scope. */
export const make = (
  config: VonageConfig,
  options: MakeOptions = {}
): Effect.Effect<ProviderAdapter, never, Scope.Scope> =>
  Effect.gen(function* () {
    const now = yield* adapterClock(options)
    const timeout = Duration.millis(config.timeoutMs ?? defaultTimeoutMs)
    const url = `${(config.baseUrl ?? defaultBaseUrl).replace(/\/+$/, "")}/sms/json`
    const method = config.signatureMethod ?? "sha256"
    const post = yield* makeSubmitter("vonage", timeout)
    const headers = { "content-type": "application/x-www-form-urlencoded", accept: "application/json" }

    const calls = adapterCalls(post, (sms) => ({
      url,
      headers: headers,
      body: submitForm(config, sms).toString(),
      classify: (answer) => classifyResponse(answer.status, answer.headers, answer.text, now()),
      recipient: sms.to.replace(/^\+/, "")
    }))

    const get = yield* makeStatusGetter(timeout)
    const reportsBaseUrl = config.reportsBaseUrl ?? defaultReportsBaseUrl
    const queryHeaders = {
      authorization: `Basic ${Buffer.from(`${config.apiKey}:${config.apiSecret}`).toString("base64")}`,
      accept: "application/json"
    }

    return {
      id: config.id,
      type: "vonage",
      ...calls,
      parseDeliveryReport: (webhook) => parseDeliveryReceipt(config.signatureSecret, method, webhook, now()),
      queryStatus: (messageId) =>
        Effect.flatMap(get(recordsUrl(reportsBaseUrl, config.apiKey, messageId), queryHeaders), (answer) =>
          parseRecords(messageId, answer)
        )
    } satisfies ProviderAdapter
  })

// ---------------------------------------------------------------------------------------------
// Submit

/** The form Vonage's SMS API expects. */
export const submitForm = (
  config: Pick<VonageConfig, "apiKey" | "apiSecret" | "from">,
  sms: OutboundSms
): URLSearchParams => {
  const form = new URLSearchParams()
  form.set("api_key", config.apiKey)
  form.set("api_secret", config.apiSecret)
  const from = sms.from ?? config.from
  if (from !== undefined) form.set("from", from)
  form.set("to", sms.to.replace(/^\+/, ""))
  form.set("text", sms.body)
  form.set("type", segmentsOf(sms.body).encoding === "UCS-2" ? "unicode" : "text")
  form.set("client-ref", sms.messageId)
  form.set("callback", sms.callbackUrl)
  form.set("status-report-req", "1")
  return form
}

const decodeJson = Schema.decodeUnknownOption(Schema.parseJson())

const throttledStatuses = new Set(["1", "10"])
const invalidNumberStatuses = new Set(["6", "33"])
const authStatuses = new Set(["4", "14"])

/** A part's status and error text as a submit result. */
export const classifyStatus = (status: string, errorText: string | undefined): SubmitResult => {
  const detail = `status ${status}${errorText !== undefined ? `: ${errorText}` : ""}`
  if (throttledStatuses.has(status)) return transient("throttled", detail)
  if (status === "5") return transient("http_5xx", detail)
  if (status === "9") return transient("provider_unavailable", detail)
  if (authStatuses.has(status)) return permanent("rejected", "auth", detail)
  if (invalidNumberStatuses.has(status) || (status === "3" && /\bto\b/i.test(errorText ?? ""))) {
    return permanent("invalid_number", status, detail)
  }
  return permanent("rejected", status, detail)
}

export const classifyResponse = (
  status: number,
  headers: Readonly<Record<string, string | undefined>>,
  text: string,
  nowMs: number
): SubmitResult => {
  const answer = decodeJson(text)
  const json = answer._tag === "Some" ? answer.value : undefined
  if (status >= 200 && status < 300) {
    const parts = fieldAt(json, ["messages"])
    if (!Array.isArray(parts) || parts.length === 0) {
      return transient("provider_unavailable", `HTTP ${status} without messages`)
    }
    for (const part of parts) {
      const id = nonEmpty(fieldAt(part, ["message-id"]))
      if (nonEmpty(fieldAt(part, ["status"])) === "0" && id !== undefined) {
        return { _tag: "Accepted", providerMessageId: id }
      }
    }
    const first: unknown = parts[0]
    const partStatus = nonEmpty(fieldAt(first, ["status"]))
    return partStatus === undefined
      ? transient("provider_unavailable", `HTTP ${status} without a message status`)
      : classifyStatus(partStatus, nonEmpty(fieldAt(first, ["error-text"])))
  }
  const message = nonEmpty(fieldAt(json, ["error-text"])) ?? nonEmpty(fieldAt(json, ["title"]))
  const detail = `HTTP ${status}${message !== undefined ? `: ${message}` : ""}`
  const retryAfter = () => parseRetryAfter(headers["retry-after"], nowMs)
  if (status === 401 || status === 403) return permanent("rejected", "auth", detail)
  if (status === 408) return transient("timeout", detail)
  if (status === 429) return transient("throttled", detail, retryAfter())
  if (status >= 500) return transient("http_5xx", detail, retryAfter())
  if (status >= 400 && status !== 404 && status !== 405)
    return permanent("rejected", `http_${status}`, detail)
  return transient("provider_unavailable", detail)
}

// ---------------------------------------------------------------------------------------------
// DLR webhook

/** The `sig` Vonage computes over these parameters (any `sig` among them is left out). */
export const signParams = (
  secret: string,
  method: SignatureMethod,
  params: Readonly<Record<string, string>>
): string => {
  let query = ""
  for (const name of Object.keys(params).sort()) {
    if (name === "sig") continue
    query += `&${name}=${(params[name] ?? "").replace(/[&=]/g, "_")}`
  }
  return method === "md5hash"
    ? createHash("md5").update(`${query}${secret}`, "utf8").digest("hex")
    : createHmac(method, secret).update(query, "utf8").digest("hex")
}

/** The parameters of a DLR: a JSON object body, a form body, or (no body) the URL's query. */
export const receiptParams = (webhook: InboundWebhook): Record<string, string> | undefined => {
  const body = webhook.body.trim()
  const params: Record<string, string> = {}
  if (body.startsWith("{")) {
    const decoded = decodeJson(body)
    if (decoded._tag === "None") return undefined
    const json = decoded.value
    if (typeof json !== "object" || json === null || Array.isArray(json)) return undefined
    for (const [name, value] of Object.entries(json)) {
      if (typeof value === "string") params[name] = value
      else if (typeof value === "number" || typeof value === "boolean") params[name] = String(value)
    }
    return params
  }
  const query = webhook.url.indexOf("?")
  const form = body.length > 0 ? body : query === -1 ? "" : webhook.url.slice(query + 1).split("#", 1)[0]
  for (const [name, value] of new URLSearchParams(form)) params[name] = value
  return params
}

const invalid = (reason: "BadSignature" | "Malformed", message: string) =>
  Either.left(new InvalidDeliveryReport({ reason, message }))

const field = (params: Readonly<Record<string, string>>, name: string): string | undefined => {
  const value = Object.hasOwn(params, name) ? params[name] : undefined
  return value !== undefined && value.length > 0 ? value : undefined
}

const invalidNumberErrors = new Set(["3", "12"])
const rejectedErrors = new Set(["4", "6", "9", "14", "50", "51", "52", "53", "54"])

/** Verifies the signature (and its freshness against `nowMs`), then parses the receipt. */
export const parseDeliveryReceipt = (
  signatureSecret: string,
  method: SignatureMethod,
  webhook: InboundWebhook,
  nowMs: number
): Either.Either<DeliveryReport, InvalidDeliveryReport> => {
  const params = receiptParams(webhook)
  if (params === undefined) return invalid("BadSignature", "no signed parameters in the body")
  const sig = field(params, "sig")
  const timestamp = field(params, "timestamp")
  if (sig === undefined || timestamp === undefined) return invalid("BadSignature", "missing sig or timestamp")
  if (!/^\d{1,12}$/.test(timestamp)) return invalid("BadSignature", "malformed signature timestamp")
  if (Math.abs(nowMs / 1000 - Number(timestamp)) > signatureToleranceSeconds) {
    return invalid("BadSignature", "signature timestamp outside the 5 minute window")
  }
  const expected = Buffer.from(signParams(signatureSecret, method, params), "hex")
  const given = /^[0-9a-fA-F]+$/.test(sig) && sig.length % 2 === 0 ? Buffer.from(sig, "hex") : Buffer.alloc(0)
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return invalid("BadSignature", "signature mismatch")
  }

  const providerMessageId = field(params, "messageId") ?? field(params, "message-id")
  const rawStatus = field(params, "status")
  if (providerMessageId === undefined) return invalid("Malformed", "messageId: is missing")
  if (rawStatus === undefined) return invalid("Malformed", "status: is missing")
  const errCode = field(params, "err-code")
  const code = errCode !== undefined && errCode !== "0" ? errCode : undefined
  const reference = field(params, "client-ref")
  const base = {
    providerMessageId,
    rawStatus,
    ...(reference !== undefined ? { reference } : {}),
    ...(code !== undefined ? { code } : {})
  }
  return Either.right(withOutcome(base, rawStatus, code))
}

/** A Vonage status (and error code) as our outcome: the one mapping of receipts and queries. */
const withOutcome = (
  base: Omit<DeliveryReport, "outcome" | "failureReason">,
  rawStatus: string,
  code: string | undefined
): DeliveryReport => {
  const status = rawStatus.toLowerCase()
  if (status === "delivered") return { ...base, outcome: "delivered" }
  if (status === "expired") return { ...base, outcome: "failed", failureReason: "undeliverable" }
  if (status !== "failed" && status !== "rejected") return { ...base, outcome: "pending" }
  const failureReason =
    code !== undefined && invalidNumberErrors.has(code)
      ? "invalid_number"
      : (code !== undefined && rejectedErrors.has(code)) || status === "rejected"
        ? "rejected"
        : "undeliverable"
  return { ...base, outcome: "failed", failureReason }
}

// ---------------------------------------------------------------------------------------------
// Status query (Reports API)

/** The synchronous Reports API's records of one outbound SMS. */
export const recordsUrl = (reportsBaseUrl: string, apiKey: string, messageId: string): string => {
  const query = new URLSearchParams({
    account_id: apiKey,
    product: "SMS",
    direction: "outbound",
    id: messageId
  })
  return `${reportsBaseUrl.replace(/\/+$/, "")}/v2/reports/records?${query.toString()}`
}

/** Reads the Reports API's answer for `messageId`: its record's status, as a receipt would give it. */
export const parseRecords = (
  messageId: string,
  answer: ProviderAnswer
): Either.Either<QueriedStatus, StatusQueryError> => {
  const decoded = decodeJson(answer.text)
  const json = decoded._tag === "Some" ? decoded.value : undefined
  if (answer.status < 200 || answer.status >= 300) {
    const detail =
      nonEmpty(fieldAt(json, ["title"])) ??
      nonEmpty(fieldAt(json, ["detail"])) ??
      nonEmpty(fieldAt(json, ["error-text"])) ??
      ""
    return Either.left(httpFailure(answer.status, detail))
  }
  const records = fieldAt(json, ["records"])
  const notFound = nonEmpty(fieldAt(json, ["ids_not_found"]))
  if (notFound?.split(",").some((id) => id.trim() === messageId)) {
    return Either.left(httpFailure(404, `${messageId} is in ids_not_found`))
  }
  if (!Array.isArray(records)) return Either.left(malformedAnswer(`HTTP ${answer.status} without records`))
  const record =
    records.find((entry) => nonEmpty(fieldAt(entry, ["message_id"])) === messageId) ??
    (records.length === 1 && fieldAt(records[0], ["message_id"]) === undefined ? records[0] : undefined)
  if (record === undefined) {
    return Either.left(
      records.length === 0
        ? httpFailure(404, `no record of ${messageId}`)
        : malformedAnswer(`no record of ${messageId} among ${records.length}`)
    )
  }
  return queriedStatusOf(record, messageId, "records[].", withOutcome)
}
