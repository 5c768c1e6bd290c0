/**
 * The `twilio` provider adapter: Twilio's Programmable Messaging wire format.
 *
 * Submit: `POST {baseUrl}/2010-04-01/Accounts/{accountSid}/Messages.json`
 *   headers  `Authorization: Basic base64(accountSid:authToken)`,
 *            `Content-Type: application/x-www-form-urlencoded`
 *   body     `To`, `From` (the message's sender, else `from` from the config) and/or
 *            `MessagingServiceSid`, `Body`, `StatusCallback` = our callback URL with
 *            `?ref=<our message id>` appended (Twilio echoes no client reference, so the reference
 *            travels in the URL it calls back, and the signature covers it)
 *   answers  2xx `{ "sid", "status" }`                     -> Accepted (sid)
 *            2xx without a sid                             -> Transient provider_unavailable
 *            4xx `{ "code", "message", "status" }`:
 *              code 21211, 21217, 21401, 21407, 21614      -> Permanent invalid_number (code = Twilio code)
 *              code 20429                                  -> Transient throttled
 *              401, or 403 without a code / code 20003     -> Permanent rejected, code "auth"
 *              any other code (21610 unsubscribed, ...)    -> Permanent rejected, code = Twilio code
 *            408 or no answer within timeoutMs             -> Transient timeout
 *            429                                           -> Transient throttled (retryAfterMs if `Retry-After`)
 *            5xx                                           -> Transient http_5xx (retryAfterMs if `Retry-After`)
 *            1xx/3xx/404/405                               -> Transient provider_unavailable (a wrong base
 *                                                             URL or account sid, not the message's fault)
 *            connection errors                             -> Transient network
 *
 * Status callback (Twilio -> us): `POST` form `MessageSid`, `MessageStatus` (`SmsSid`/`SmsStatus`
 * in older callbacks), `ErrorCode`, `AccountSid`, `From`, `To`, ...; header `X-Twilio-Signature` =
 * base64(HMAC-SHA1(authToken, fullUrl + every POST parameter name and value, sorted by name)), a
 * repeated parameter contributing each distinct value in sorted order. As Twilio's own validator
 * does, the URL is tried as received, without its port and with the scheme's default port (and
 * the same once WHATWG-normalised). Twilio
 * signs no timestamp, so there is no replay window to check: a replayed status is a duplicate,
 * and the delivery-report pipeline is idempotent.
 *   delivered/read -> delivered; failed/undelivered/canceled -> failed: ErrorCode 30005 (unknown
 *   destination), 30006 (landline), 21211/21217/21401/21407/21614 -> invalid_number; 21610
 *   (unsubscribed), 30004 (blocked), 30007 (filtered) -> rejected; any other -> undeliverable;
 *   anything else (accepted, queued, sending, sent, scheduled, ...) -> pending.
 *   `reference` is the `ref` query parameter of the URL called.
 *
 * Status query (at a report deadline): `GET {baseUrl}/2010-04-01/Accounts/{accountSid}/Messages/
 * {sid}.json`, the same Basic auth; the Message resource's `status` and `error_code` (a number, or
 * null) read as a status callback's `MessageStatus` and `ErrorCode`: delivered/read, failed/
 * undelivered/canceled are final, anything else (queued, sending, sent, accepted, scheduled, ...) is
 * not. 404 (code 20404): not found; 401/403: auth; 429: throttled; 5xx: http_5xx.
 */
import { createHmac, timingSafeEqual } from "node:crypto"
import { Duration, Effect, Either, Schema, type Scope } from "effect"
import { defaultTimeoutMs, fieldAt, header, nonEmpty, parseRetryAfter } from "./GenericHttp.js"
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

export const defaultBaseUrl = "https://api.twilio.com"

export const TwilioConfig = Schema.Struct({
  id: Schema.String.pipe(Schema.pattern(/^[a-z0-9][a-z0-9_-]{0,31}$/)),
  /** default `https://api.twilio.com` */
  baseUrl: Schema.optional(
    Schema.String.pipe(Schema.pattern(/^https?:\/\/\S+$/, { message: () => "must be an http(s) URL" }))
  ),
  accountSid: Schema.String.pipe(
    Schema.pattern(/^AC[0-9a-fA-F]{32}$/, { message: () => "must be AC followed by 32 hex digits" })
  ),
  /** secret: authenticates the API calls and signs the status callbacks */
  authToken: Schema.NonEmptyString,
  /** the sender when a message names none */
  from: Schema.optional(Schema.NonEmptyString),
  /** sends through a Messaging Service (its sender pool) */
  messagingServiceSid: Schema.optional(
    Schema.String.pipe(
      Schema.pattern(/^MG[0-9a-fA-F]{32}$/, { message: () => "must be MG followed by 32 hex digits" })
    )
  ),
  /** default 10000 */
  timeoutMs: Schema.optional(Schema.Int.pipe(Schema.positive()))
})
export type TwilioConfig = typeof TwilioConfig.Type

/** The adapter holds a connection pool, closed with the scope. */
export const make = (
  config: TwilioConfig,
  options: MakeOptions = {}
): Effect.Effect<ProviderAdapter, never, Scope.Scope> =>
  Effect.gen(function* () {
    const now = yield* adapterClock(options)
    const timeout = Duration.millis(config.timeoutMs ?? defaultTimeoutMs)
    const url = messagesUrl(config.baseUrl ?? defaultBaseUrl, config.accountSid)
    const post = yield* makeSubmitter("twilio", timeout)
    const headers = {
      authorization: `Basic ${Buffer.from(`${config.accountSid}:${config.authToken}`).toString("base64")}`,
      "content-type": "application/x-www-form-urlencoded",
      accept: "application/json"
    }

    const calls = adapterCalls(post, (sms) => ({
      url,
      headers: headers,
      body: submitForm(config, sms).toString(),
      classify: (answer) => classifyResponse(answer.status, answer.headers, answer.text, now()),
      recipient: sms.to
    }))

    const get = yield* makeStatusGetter(timeout)
    const baseUrl = config.baseUrl ?? defaultBaseUrl
    const queryHeaders = { authorization: headers.authorization, accept: "application/json" }

    return {
      id: config.id,
      type: "twilio",
      ...calls,
      parseDeliveryReport: (webhook) => parseStatusCallback(config.authToken, webhook),
      queryStatus: (sid) =>
        Effect.flatMap(get(messageUrl(baseUrl, config.accountSid, sid), queryHeaders), (answer) =>
          parseMessageStatus(sid, answer)
        )
    } satisfies ProviderAdapter
  })

// ---------------------------------------------------------------------------------------------
// Submit

export const messagesUrl = (baseUrl: string, accountSid: string): string =>
  `${baseUrl.replace(/\/+$/, "")}/2010-04-01/Accounts/${encodeURIComponent(accountSid)}/Messages.json`

/** One message's resource: what a status query reads. */
export const messageUrl = (baseUrl: string, accountSid: string, sid: string): string =>
  `${baseUrl.replace(/\/+$/, "")}/2010-04-01/Accounts/${encodeURIComponent(accountSid)}/Messages/${encodeURIComponent(sid)}.json`

/** Our callback URL with our message id as its `ref` query parameter. */
export const statusCallbackUrl = (callbackUrl: string, messageId: string): string =>
  `${callbackUrl}${callbackUrl.includes("?") ? "&" : "?"}ref=${encodeURIComponent(messageId)}`

/** The form Twilio's Messages API expects. */
export const submitForm = (
  config: Pick<TwilioConfig, "from" | "messagingServiceSid">,
  sms: OutboundSms
): URLSearchParams => {
  const form = new URLSearchParams()
  form.set("To", sms.to)
  const from = sms.from ?? config.from
  if (from !== undefined) form.set("From", from)
  if (config.messagingServiceSid !== undefined) form.set("MessagingServiceSid", config.messagingServiceSid)
  form.set("Body", sms.body)
  form.set("StatusCallback", statusCallbackUrl(sms.callbackUrl, sms.messageId))
  return form
}

/** Twilio error codes that say the destination number itself is wrong. */
const invalidNumberCodes = new Set(["21211", "21217", "21401", "21407", "21614", "30005", "30006"])
/** Codes that say the recipient or a carrier refuses the message. */
const rejectedCodes = new Set(["21610", "30004", "30007"])

const decodeJson = Schema.decodeUnknownOption(Schema.parseJson())

export const classifyResponse = (
  status: number,
  headers: Readonly<Record<string, string | undefined>>,
  text: string,
  nowMs: number
): SubmitResult => {
  const answer = decodeJson(text)
  const json = answer._tag === "Some" ? answer.value : undefined
  const code = nonEmpty(fieldAt(json, ["code"]))
  const message = nonEmpty(fieldAt(json, ["message"]))
  const detail = `HTTP ${status}${message !== undefined ? `: ${message}` : ""}${code !== undefined ? ` (code ${code})` : ""}`
  const retryAfter = () => parseRetryAfter(headers["retry-after"], nowMs)

  if (status >= 200 && status < 300) {
    const sid = nonEmpty(fieldAt(json, ["sid"]))
    return sid === undefined
      ? transient("provider_unavailable", `HTTP ${status} without a sid`)
      : { _tag: "Accepted", providerMessageId: sid }
  }
  if (status === 429 || code === "20429") return transient("throttled", detail, retryAfter())
  if (status >= 500) return transient("http_5xx", detail, retryAfter())
  if (status === 408) return transient("timeout", detail)
  if (status === 401 || (status === 403 && (code === undefined || code === "20003"))) {
    return permanent("rejected", "auth", detail)
  }
  if (status >= 400 && status !== 404 && status !== 405) {
    return code !== undefined && invalidNumberCodes.has(code)
      ? permanent("invalid_number", code, detail)
      : permanent("rejected", code ?? `http_${status}`, detail)
  }
  return transient("provider_unavailable", detail)
}

// ---------------------------------------------------------------------------------------------
// Status callbacks

export type SignedParams = Readonly<Record<string, string | ReadonlyArray<string>>>

/** The `X-Twilio-Signature` Twilio sends when it calls `url` with these POST parameters. */
export const signStatusCallback = (authToken: string, url: string, params: SignedParams): string =>
  createHmac("sha1", authToken)
    .update(Buffer.from(signedData(url, params), "utf8"))
    .digest("base64")

const signedData = (url: string, params: SignedParams): string => {
  let data = url
  for (const name of Object.keys(params).sort()) {
    const value = params[name]
    if (typeof value === "string") data += name + value
    else if (value !== undefined) for (const each of [...new Set(value)].sort()) data += name + each
  }
  return data
}

/**
 * Checks a signature as Twilio's own `validateRequest` does: against the URL as received, without
 * its port and with the scheme's default port, then the same for the WHATWG-normalised URL.
 */
export const verifySignature = (
  authToken: string,
  signature: string,
  url: string,
  params: SignedParams
): boolean => {
  const given = Buffer.from(signature)
  const matches = (candidate: string) => {
    const expected = Buffer.from(signStatusCallback(authToken, candidate, params))
    return expected.length === given.length && timingSafeEqual(expected, given)
  }
  const tried = new Set<string>()
  for (const base of [url, normalised(url)]) {
    if (base === undefined) continue
    for (const candidate of [base, withoutPort(base), withDefaultPort(base)]) {
      if (tried.has(candidate)) continue
      tried.add(candidate)
      if (matches(candidate)) return true
    }
  }
  return false
}

const normalised = (url: string): string | undefined => {
  try {
    return new URL(url).href
  } catch {
    return undefined
  }
}

/** scheme://authority, split without normalising anything (the signature covers the exact text). */
const splitUrl = (url: string) => {
  const match = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)/i.exec(url)
  if (match === null) return undefined
  const [prefix = "", scheme = "", authority = ""] = match
  const at = authority.lastIndexOf("@")
  const hostAndPort = authority.slice(at + 1)
  // an IPv6 literal's colons are inside its brackets
  const colon = hostAndPort.indexOf(":", hostAndPort.lastIndexOf("]") + 1)
  return {
    scheme,
    userInfo: authority.slice(0, at + 1),
    host: colon === -1 ? hostAndPort : hostAndPort.slice(0, colon),
    port: colon === -1 ? "" : hostAndPort.slice(colon),
    rest: url.slice(prefix.length)
  }
}

const withoutPort = (url: string): string => {
  const parts = splitUrl(url)
  return parts === undefined ? url : `${parts.scheme}${parts.userInfo}${parts.host}${parts.rest}`
}

const withDefaultPort = (url: string): string => {
  const parts = splitUrl(url)
  if (parts === undefined || parts.port !== "") return url
  const port = parts.scheme.toLowerCase() === "https://" ? ":443" : ":80"
  return `${parts.scheme}${parts.userInfo}${parts.host}${port}${parts.rest}`
}

/** A form body as Twilio's signature sees it: a repeated name keeps all of its values. */
export const formParams = (body: string): Record<string, string | Array<string>> => {
  const params: Record<string, string | Array<string>> = {}
  for (const [name, value] of new URLSearchParams(body)) {
    const seen = Object.hasOwn(params, name) ? params[name] : undefined
    if (seen === undefined) params[name] = value
    else if (typeof seen === "string") params[name] = [seen, value]
    else seen.push(value)
  }
  return params
}

const single = (value: string | ReadonlyArray<string> | undefined): string | undefined => {
  const first = typeof value === "string" ? value : value?.[0]
  return first !== undefined && first.length > 0 ? first : undefined
}

const referenceOf = (url: string): string | undefined => {
  const query = url.indexOf("?")
  if (query === -1) return undefined
  const ref = new URLSearchParams(url.slice(query + 1).split("#", 1)[0]).get("ref")
  return ref !== null && ref.length > 0 ? ref : undefined
}

const invalid = (reason: "BadSignature" | "Malformed", message: string) =>
  Either.left(new InvalidDeliveryReport({ reason, message }))

/** Verifies `X-Twilio-Signature` over the full URL called and the form body, then parses it. */
export const parseStatusCallback = (
  authToken: string,
  webhook: InboundWebhook
): Either.Either<DeliveryReport, InvalidDeliveryReport> => {
  const signature = header(webhook.headers, "x-twilio-signature")
  if (signature === undefined || signature.length === 0)
    return invalid("BadSignature", "missing X-Twilio-Signature")
  const params = formParams(webhook.body)
  if (!verifySignature(authToken, signature.trim(), webhook.url, params)) {
    return invalid("BadSignature", "signature mismatch")
  }
  const providerMessageId = single(params.MessageSid) ?? single(params.SmsSid)
  const rawStatus = single(params.MessageStatus) ?? single(params.SmsStatus)
  if (providerMessageId === undefined) return invalid("Malformed", "MessageSid: is missing")
  if (rawStatus === undefined) return invalid("Malformed", "MessageStatus: is missing")
  const errorCode = single(params.ErrorCode)
  const code = errorCode !== undefined && errorCode !== "0" ? errorCode : undefined
  const reference = referenceOf(webhook.url)
  const base = {
    providerMessageId,
    rawStatus,
    ...(reference !== undefined ? { reference } : {}),
    ...(code !== undefined ? { code } : {})
  }
  return Either.right(withOutcome(base, rawStatus, code))
}

/** A Twilio status (and error code) as our outcome: the one mapping of callbacks and queries. */
const withOutcome = (
  base: Omit<DeliveryReport, "outcome" | "failureReason">,
  rawStatus: string,
  code: string | undefined
): DeliveryReport => {
  const status = rawStatus.toLowerCase()
  if (status === "delivered" || status === "read") return { ...base, outcome: "delivered" }
  if (status !== "failed" && status !== "undelivered" && status !== "canceled") {
    return { ...base, outcome: "pending" }
  }
  const failureReason =
    code !== undefined && invalidNumberCodes.has(code)
      ? "invalid_number"
      : code !== undefined && rejectedCodes.has(code)
        ? "rejected"
        : "undeliverable"
  return { ...base, outcome: "failed", failureReason }
}

// ---------------------------------------------------------------------------------------------
// Status query

/** Reads the Message resource Twilio answered for `sid`: its status, as a report would give it. */
export const parseMessageStatus = (
  sid: string,
  answer: ProviderAnswer
): Either.Either<QueriedStatus, StatusQueryError> => {
  const decoded = decodeJson(answer.text)
  const json = decoded._tag === "Some" ? decoded.value : undefined
  if (answer.status < 200 || answer.status >= 300) {
    const message = nonEmpty(fieldAt(json, ["message"]))
    const code = nonEmpty(fieldAt(json, ["code"]))
    return Either.left(
      httpFailure(answer.status, `${message ?? ""}${code !== undefined ? ` (code ${code})` : ""}`)
    )
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    return Either.left(malformedAnswer(`HTTP ${answer.status} without a JSON object`))
  }
  const answered = nonEmpty(fieldAt(json, ["sid"]))
  if (answered !== undefined && answered !== sid) {
    return Either.left(malformedAnswer(`asked for ${sid}, answered ${answered}`))
  }
  return queriedStatusOf(json, sid, "", withOutcome)
}
