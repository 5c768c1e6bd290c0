/**
 * What makes one provider's wire format in the simulator (`Wire`): its route, its answers, its
 * delivery reports and its status query; the engine (`Simulator.ts`) is the same for all three.
 */
import type http from "node:http"
import type { DlrStatus } from "./Options.js"

export interface ValidSubmission {
  /** E.164 */
  readonly to: string
  readonly from?: string
  readonly body: string
  readonly reference?: string
  readonly callbackUrl?: string
  /** the identity the client presented (twilio account sid, vonage api_key) */
  readonly account?: string
}

export type Decoded =
  | { readonly _tag: "Valid"; readonly sms: ValidSubmission }
  | { readonly _tag: "Unauthorized" }
  | { readonly _tag: "Malformed"; readonly status: number; readonly code: string; readonly problem: string }

export type Answer = {
  readonly status: number
  readonly body: unknown
  readonly headers?: Record<string, string>
}

/** One DLR post: rendered per attempt, so a retry is signed afresh. */
export interface DlrPost {
  readonly url: string
  readonly render: () => { readonly body: string; readonly headers: Record<string, string> }
}

/** What the simulator decided for an accepted submission: what a status query answers. */
export interface Decided {
  readonly status: DlrStatus
  /** epoch ms: before it the message is still on its way (not final), as its report is not due yet */
  readonly finalAt: number
  /** the identity that submitted it (twilio account sid, vonage api_key): no one else sees it */
  readonly account?: string
}

/** What makes one provider's wire format: its route, its answers and its DLRs. */
export interface Wire {
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

export const malformed = (status: number, code: string, problem: string): Decoded => ({
  _tag: "Malformed",
  status,
  code,
  problem
})
export const tooLarge = malformed(413, "too_large", "body too large")

export const isHttpUrl = (value: string): boolean => {
  try {
    const url = new URL(value)
    return url.protocol === "http:" || url.protocol === "https:"
  } catch {
    return false
  }
}

/** The user and password of a Basic `Authorization` header. */
export const basicCredentials = (
  value: string | undefined
): { user: string; password: string } | undefined => {
  const match = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(value ?? "")
  if (match === null) return undefined
  const decoded = Buffer.from(match[1] ?? "", "base64").toString("utf8")
  const colon = decoded.indexOf(":")
  return colon === -1 ? undefined : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) }
}
