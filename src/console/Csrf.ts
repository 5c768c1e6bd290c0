/**
 * Cross-site request forgery: every state-changing form must prove it was made by a page of this
 * console, in two ways at once.
 *
 * 1. A synchronizer token: the session's `csrf` value, put in each form as `_csrf` (and sent by htmx
 *    as `X-CSRF-Token`). Another site cannot read it. Before sign-in there is no session: the sign-in
 *    form carries a token that must equal the one in a short-lived cookie (double submit).
 * 2. The browser's own word: `Sec-Fetch-Site` must be `same-origin` (or absent, for clients that do
 *    not send it), and an `Origin`, when sent, must be this host.
 *
 * The session cookie is also `SameSite=Strict`, so a cross-site form never carries it at all.
 */
import { timingSafeEqual } from "node:crypto"

type Headers = Readonly<Record<string, string | undefined>>

/** Constant-time equality of two tokens (a different length is simply unequal). */
export const tokensMatch = (expected: string, given: string | undefined): boolean => {
  if (given === undefined || expected === "") return false
  const a = Buffer.from(expected)
  const b = Buffer.from(given)
  return a.length === b.length && timingSafeEqual(a, b)
}

/** The host the request was sent to, as the browser saw it (a proxy's `X-Forwarded-Host` first). */
const ownHost = (headers: Headers) =>
  (headers["x-forwarded-host"] ?? headers.host ?? "").split(",")[0]?.trim()

/** Why the browser says this request comes from another site, or undefined when it does not. */
export const crossSiteReason = (headers: Headers): string | undefined => {
  const site = headers["sec-fetch-site"]
  if (site !== undefined && site !== "same-origin" && site !== "none") return `Sec-Fetch-Site is ${site}`
  const origin = headers.origin
  if (origin === undefined) return undefined
  let host: string
  try {
    host = new URL(origin).host
  } catch {
    return `Origin ${origin} is not a URL`
  }
  return host === ownHost(headers) ? undefined : `Origin ${origin} is not this console`
}

/** Why a state-changing request must be refused, or undefined when it proves it comes from here. */
export const forgeryReason = (
  expected: string,
  headers: Headers,
  form: Readonly<Record<string, string | undefined>>
): string | undefined =>
  crossSiteReason(headers) ??
  (tokensMatch(expected, form._csrf ?? headers["x-csrf-token"])
    ? undefined
    : "the form's CSRF token is missing or wrong")
