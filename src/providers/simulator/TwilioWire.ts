/** The simulator's `twilio` wire format (see Twilio.ts), with its status query. */
import { randomUUID } from "node:crypto"
import * as Twilio from "../Twilio.js"
import type { DlrStatus, SimulatorOptions } from "./Options.js"
import { type Answer, basicCredentials, isHttpUrl, malformed, tooLarge, type Wire } from "./Wire.js"

const twilioRoute = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\.json$/
const twilioMessageRoute = /^\/2010-04-01\/Accounts\/([^/]+)\/Messages\/([^/]+)\.json$/

const twilioError = (status: number, code: number, message: string): Answer => ({
  status,
  body: { code, message, more_info: `errors/${code}`, status }
})

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

export const twilioWire = (options: SimulatorOptions): Wire => ({
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
