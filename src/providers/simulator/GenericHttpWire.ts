/** The simulator's `generic-http` wire format (see GenericHttp.ts). */
import { randomUUID } from "node:crypto"
import { signDeliveryReport } from "../GenericHttp.js"
import type { SimulatorOptions } from "./Options.js"
import { isHttpUrl, malformed, tooLarge, type ValidSubmission, type Wire } from "./Wire.js"

export const errorBody = (code: string, message: string) => ({ error: { code, message } })

export const genericWire = (options: SimulatorOptions): Wire => ({
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
