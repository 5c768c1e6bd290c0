/**
 * The provider adapter contract (`ProviderAdapterContract.ts`) run against every adapter:
 * generic-http, twilio and vonage, each through a harness in its own wire format.
 */
import * as GenericHttp from "../../src/providers/GenericHttp.js"
import type { InboundWebhook } from "../../src/providers/ProviderAdapter.js"
import * as Twilio from "../../src/providers/Twilio.js"
import * as Vonage from "../../src/providers/Vonage.js"
import {
  type ProviderAdapterHarness,
  providerAdapterContract,
  type ReportFields,
  type WireAnswer
} from "./ProviderAdapterContract.js"

const json = (status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): WireAnswer => ({
  status,
  headers,
  body: JSON.stringify(body)
})

/** The fields that are set, as strings. */
const present = (params: Record<string, string | undefined>): Record<string, string> =>
  Object.fromEntries(
    Object.entries(params).filter((entry): entry is [string, string] => entry[1] !== undefined)
  )

// ---------------------------------------------------------------------------------------------
// generic-http: our own JSON wire format

const generic = { apiKey: "test-api-key", webhookSecret: "test-webhook-secret" }
const genericError = (code: string, message: string) => ({ error: { code, message } })

const genericHarness: ProviderAdapterHarness = {
  type: "generic-http",
  make: (baseUrl, { timeoutMs, now, credentials }) =>
    GenericHttp.make(
      {
        id: "generic",
        baseUrl,
        apiKey: credentials === "wrong" ? "wrong-key" : generic.apiKey,
        webhookSecret: generic.webhookSecret,
        ...(timeoutMs !== undefined ? { timeoutMs } : {})
      },
      now !== undefined ? { now } : {}
    ),
  submitPath: "/messages",
  referenceOf: (request) => {
    const body: unknown = JSON.parse(request.body)
    return GenericHttp.nonEmpty(GenericHttp.fieldAt(body, ["reference"]))
  },
  answers: {
    accepted: (messageId) => json(202, { messageId }),
    invalidNumber: (to) => ({
      answer: json(422, genericError("invalid_number", `${to} is not a mobile number`)),
      code: "invalid_number"
    }),
    rejected: {
      answer: json(422, genericError("blocked_content", "content refused")),
      code: "blocked_content"
    },
    unauthorized: json(401, genericError("unauthorized", "missing or wrong api key")),
    throttled: (headers) => json(429, genericError("throttled", "slow down"), headers),
    unavailable: (headers) => json(503, genericError("unavailable", "down for maintenance"), headers)
  },
  simulator: {
    options: { format: "generic-http", apiKey: generic.apiKey, webhookSecret: generic.webhookSecret },
    acceptedId: /^sim-/,
    invalidNumber: { code: "invalid_number" },
    throttled: { retryAfterMs: 1_000 }
  },
  reports: {
    sign: (fields, { atSeconds, secret }) => {
      const body = JSON.stringify(
        present({
          messageId: fields.providerMessageId,
          reference: fields.reference,
          status: fields.status,
          timestamp: new Date(atSeconds * 1000).toISOString()
        })
      )
      const key = secret === "ours" ? generic.webhookSecret : "someone-else"
      return {
        url: "/v1/providers/generic/delivery-reports",
        body,
        headers: {
          "content-type": "application/json",
          "x-signature-timestamp": String(atSeconds),
          "x-signature": GenericHttp.signDeliveryReport(key, body, atSeconds)
        }
      }
    },
    unsigned: (webhook) => ({ ...webhook, headers: { "content-type": "application/json" } }),
    garbled: (webhook) => ({ ...webhook, headers: { ...webhook.headers, "x-signature": "sha256=zz" } }),
    timestamped: true,
    idField: "messageId"
  }
}

// ---------------------------------------------------------------------------------------------
// twilio: Programmable Messaging

const twilio = {
  accountSid: `AC${"0123456789abcdef".repeat(2)}`,
  authToken: "test-auth-token",
  callbackUrl: "https://gateway.example/v1/providers/twilio/delivery-reports"
}
const twilioError = (status: number, code: number, message: string, headers = {}) =>
  json(status, { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status }, headers)

const twilioHarness: ProviderAdapterHarness = {
  type: "twilio",
  make: (baseUrl, { timeoutMs, now, credentials }) =>
    Twilio.make(
      {
        id: "twilio",
        baseUrl,
        accountSid: twilio.accountSid,
        authToken: credentials === "wrong" ? "wrong-token" : twilio.authToken,
        ...(timeoutMs !== undefined ? { timeoutMs } : {})
      },
      now !== undefined ? { now } : {}
    ),
  submitPath: `/2010-04-01/Accounts/${twilio.accountSid}/Messages.json`,
  referenceOf: (request) => {
    const callback = new URLSearchParams(request.body).get("StatusCallback")
    return callback === null ? undefined : (new URL(callback).searchParams.get("ref") ?? undefined)
  },
  answers: {
    accepted: (sid) => json(201, { sid, account_sid: twilio.accountSid, status: "queued" }),
    invalidNumber: (to) => ({
      answer: twilioError(400, 21211, `The 'To' number ${to} is not a valid phone number.`),
      code: "21211"
    }),
    rejected: { answer: twilioError(400, 21610, "Attempt to send to unsubscribed recipient"), code: "21610" },
    unauthorized: twilioError(401, 20003, "Authenticate"),
    throttled: (headers) => twilioError(429, 20429, "Too Many Requests", headers),
    unavailable: (headers) => twilioError(503, 20503, "Service Unavailable", headers)
  },
  simulator: {
    options: {
      format: "twilio",
      apiKey: twilio.authToken,
      webhookSecret: "unused-by-twilio",
      account: twilio.accountSid
    },
    acceptedId: /^SM[0-9a-f]{32}$/,
    invalidNumber: { code: "21211", detail: "not a valid phone number" },
    // the simulator's 429 sends no Retry-After; its code says why
    throttled: { retryAfterMs: undefined, detail: "20429" }
  },
  statusQuery: {
    delivered: (sid) =>
      json(200, { sid, account_sid: twilio.accountSid, status: "delivered", error_code: null })
  },
  reports: {
    sign: (fields, { secret }) => {
      const url = Twilio.statusCallbackUrl(twilio.callbackUrl, fields.reference)
      const params = present({
        AccountSid: twilio.accountSid,
        ApiVersion: "2010-04-01",
        From: "+15005550006",
        MessageSid: fields.providerMessageId,
        MessageStatus: fields.status,
        To: "+447700900123"
      })
      const token = secret === "ours" ? twilio.authToken : "someone-else"
      return {
        url,
        body: new URLSearchParams(params).toString(),
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          "x-twilio-signature": Twilio.signStatusCallback(token, url, params)
        }
      }
    },
    unsigned: (webhook) => ({ ...webhook, headers: { "content-type": "application/x-www-form-urlencoded" } }),
    garbled: (webhook) => ({ ...webhook, headers: { ...webhook.headers, "x-twilio-signature": "" } }),
    // Twilio signs no timestamp: a replayed callback is a duplicate, which the pipeline absorbs
    timestamped: false,
    idField: "MessageSid"
  }
}

// ---------------------------------------------------------------------------------------------
// vonage: the SMS API

const vonage = {
  apiKey: "abcd1234",
  apiSecret: "test-api-secret",
  signatureSecret: "test-signature-secret"
}
const vonageParts = (...parts: ReadonlyArray<Record<string, string>>) =>
  json(200, { "message-count": String(parts.length), messages: parts })

/** A JSON receipt ("POST-JSON", as the simulator sends them), its parameters with their `sig`. */
const vonageReceipt = (fields: ReportFields, atSeconds: number, secret: string): InboundWebhook => {
  const params = present({
    msisdn: "447700900123",
    to: "ACME",
    "network-code": "23410",
    messageId: fields.providerMessageId,
    price: "0.03330000",
    status: fields.status,
    scts: "2501011200",
    "err-code": "0",
    "api-key": vonage.apiKey,
    "client-ref": fields.reference,
    "message-timestamp": "2025-01-01 12:00:00",
    timestamp: String(atSeconds),
    nonce: "5f1b0b5e-0c43-4b8e-9d2d-7c2f0b0b7a11"
  })
  const sig = Vonage.signParams(secret, "sha256", params)
  return {
    url: "/v1/providers/vonage/delivery-reports",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ ...params, sig })
  }
}

const withSig = (webhook: InboundWebhook, sig: string | undefined): InboundWebhook => {
  const params = JSON.parse(webhook.body) as Record<string, string>
  const { sig: _signed, ...rest } = params
  return { ...webhook, body: JSON.stringify(sig === undefined ? rest : { ...rest, sig }) }
}

const vonageHarness: ProviderAdapterHarness = {
  type: "vonage",
  make: (baseUrl, { timeoutMs, now, credentials }) =>
    Vonage.make(
      {
        id: "vonage",
        baseUrl,
        reportsBaseUrl: baseUrl,
        apiKey: vonage.apiKey,
        apiSecret: credentials === "wrong" ? "wrong-secret" : vonage.apiSecret,
        signatureSecret: vonage.signatureSecret,
        ...(timeoutMs !== undefined ? { timeoutMs } : {})
      },
      now !== undefined ? { now } : {}
    ),
  submitPath: "/sms/json",
  referenceOf: (request) => new URLSearchParams(request.body).get("client-ref") ?? undefined,
  answers: {
    accepted: (messageId) =>
      vonageParts({ to: "447700900123", "message-id": messageId, status: "0", network: "23410" }),
    // Vonage's answer names the number in its part, not in its error text
    invalidNumber: (to) => ({
      answer: vonageParts({ to: to.slice(1), status: "6", "error-text": "Unroutable message - rejected" }),
      code: "6"
    }),
    rejected: { answer: vonageParts({ status: "7", "error-text": "Number barred." }), code: "7" },
    unauthorized: vonageParts({ status: "4", "error-text": "Bad Credentials" }),
    // the HTTP-level 429 (Vonage's in-band status 1 carries no Retry-After: see the simulator case)
    throttled: (headers) =>
      json(
        429,
        { type: "https://developer.nexmo.com/api-errors#throttled", title: "Too Many Requests" },
        headers
      ),
    unavailable: (headers) => json(503, { type: "about:blank", title: "Service Unavailable" }, headers)
  },
  simulator: {
    options: {
      format: "vonage",
      apiKey: vonage.apiSecret,
      webhookSecret: vonage.signatureSecret,
      account: vonage.apiKey
    },
    acceptedId: /^[0-9A-F]{16}$/,
    invalidNumber: { code: "6" },
    // status 1 says how long to wait only in prose: no retryAfterMs
    throttled: { retryAfterMs: undefined, detail: "status 1" }
  },
  statusQuery: {
    delivered: (messageId) =>
      json(200, {
        request_status: "SUCCESS",
        account_id: vonage.apiKey,
        product: "SMS",
        records: [{ message_id: messageId, direction: "outbound", status: "delivered", error_code: "0" }]
      })
  },
  reports: {
    sign: (fields, { atSeconds, secret }) =>
      vonageReceipt(fields, atSeconds, secret === "ours" ? vonage.signatureSecret : "someone-else"),
    unsigned: (webhook) => withSig(webhook, undefined),
    garbled: (webhook) => withSig(webhook, "zz"),
    timestamped: true,
    idField: "messageId"
  }
}

providerAdapterContract(genericHarness)
providerAdapterContract(twilioHarness)
providerAdapterContract(vonageHarness)
