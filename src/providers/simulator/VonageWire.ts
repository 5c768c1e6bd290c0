/** The simulator's `vonage` wire format (see Vonage.ts), with the Reports API's status query. */
import { randomUUID } from "node:crypto"
import type http from "node:http"
import * as Vonage from "../Vonage.js"
import type { DlrStatus, SimulatorOptions } from "./Options.js"
import { type Answer, basicCredentials, isHttpUrl, malformed, tooLarge, type Wire } from "./Wire.js"

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

export const vonageWire = (options: SimulatorOptions): Wire => ({
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
