/**
 * What every console response carries for the browser's protection, and the console's cookies.
 *
 * - Content-Security-Policy: scripts, styles and connections from this origin only, no inline
 *   script or style, no framing (clickjacking), forms post only here.
 * - Cookies: HttpOnly (no script reads them), SameSite=Strict (no cross-site request carries them),
 *   `Path=/console`, and Secure when the console is reached over https (a proxy's
 *   `X-Forwarded-Proto: https`, or `CONSOLE_SECURE_COOKIES=true`).
 */
import { HttpServerResponse } from "@effect/platform"
import { Duration } from "effect"

export const SESSION_COOKIE = "sms_console"
/** the sign-in form's double-submit token: there is no session yet to hold one */
export const LOGIN_COOKIE = "sms_console_login"

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'"
].join("; ")

export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy": CONTENT_SECURITY_POLICY,
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "same-origin",
  "cache-control": "no-store"
}

/** Whether the browser reached the console over https (so its cookies must be Secure). */
export const isHttps = (
  headers: Readonly<Record<string, string | undefined>>,
  env: NodeJS.ProcessEnv = process.env
): boolean =>
  env.CONSOLE_SECURE_COOKIES === "true" ||
  (headers["x-forwarded-proto"] ?? "").split(",")[0]?.trim().toLowerCase() === "https"

const cookieOptions = (secure: boolean, maxAgeMs: number) => ({
  httpOnly: true,
  sameSite: "strict" as const,
  secure,
  path: "/console",
  maxAge: Duration.millis(maxAgeMs)
})

export const setCookie = (
  response: HttpServerResponse.HttpServerResponse,
  name: string,
  value: string,
  options: { readonly secure: boolean; readonly maxAgeMs: number }
) =>
  HttpServerResponse.unsafeSetCookie(response, name, value, cookieOptions(options.secure, options.maxAgeMs))

/** Ends a cookie in the browser (an empty value that expires at once). */
export const clearCookie = (response: HttpServerResponse.HttpServerResponse, name: string, secure: boolean) =>
  HttpServerResponse.unsafeSetCookie(response, name, "", {
    ...cookieOptions(secure, 0),
    expires: new Date(0)
  })

export const withSecurityHeaders = (response: HttpServerResponse.HttpServerResponse) =>
  HttpServerResponse.setHeaders(response, SECURITY_HEADERS)
