/**
 * The frame every console page shares (head, navigation, who is signed in, the sign-out form) and
 * the small formatting rules the pages have in common: times in UTC, durations, status badges, and
 * numbers masked for auditors.
 *
 * No inline script or style: the stylesheet and htmx are files under `/console/assets/`, so the
 * Content-Security-Policy (`Security.ts`) can forbid both.
 */
import { maskNumber } from "../domain/PhoneNumber.js"
import { htmlResponse } from "./ConsoleRequest.js"
import { type Html, html, type Interpolation } from "./Html.js"
import type { Session } from "./Sessions.js"

export const NAV = [
  ["/console", "Overview"],
  ["/console/messages", "Messages"],
  ["/console/providers", "Providers"],
  ["/console/dead-letters", "Dead letters"],
  ["/console/phone-numbers", "Phone numbers"],
  ["/console/clients", "Clients & keys"]
] as const

/** htmx's indicator styles would be an inline `<style>` the CSP refuses: the stylesheet has none needed. */
const HTMX_CONFIG = '{"includeIndicatorStyles":false,"allowEval":false}'

const head = (title: string) => html`<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="htmx-config" content="${HTMX_CONFIG}">
<title>${title} · SMS gateway console</title>
<link rel="icon" href="/console/assets/favicon.svg">
<link rel="stylesheet" href="/console/assets/console.css">
<script src="/console/assets/htmx.min.js" defer></script>
<script src="/console/assets/sse.js" defer></script>
</head>`

export interface PageOptions {
  readonly title: string
  readonly session: Session
  /** the navigation entry to mark as current */
  readonly section: string
  readonly body: Interpolation
}

export const page = (options: PageOptions): Html => html`<!doctype html>
<html lang="en">
${head(options.title)}
<body>
<header>
  <span class="brand">SMS gateway</span>
  <nav>${NAV.map(
    ([href, label]) =>
      html`<a href="${href}" class="${href === options.section ? "active" : ""}">${label}</a>`
  )}</nav>
  <span class="who">${options.session.clientId} · ${options.session.scope}</span>
  <form method="post" action="/console/logout">
    <input type="hidden" name="_csrf" value="${options.session.csrf}">
    <button type="submit">Sign out</button>
  </form>
</header>
<main>
<h1>${options.title}</h1>
${options.body}
</main>
</body>
</html>`

/** A page without a session: the sign-in form. */
export const bare = (title: string, body: Interpolation): Html => html`<!doctype html>
<html lang="en">
${head(title)}
<body>${body}</body>
</html>`

/** `2026-11-22 10:00:01.234` (UTC, as every time the console shows). */
export const time = (ms: number | null | undefined): string =>
  ms === null || ms === undefined ? "" : new Date(ms).toISOString().replace("T", " ").replace("Z", "")

/** `850 ms`, `12.4 s`, `3 min 20 s`, `2 h 5 min`, `3 d 4 h`. */
export const duration = (ms: number): string => {
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`
  if (ms < 86_400_000) return `${Math.floor(ms / 3_600_000)} h ${Math.round((ms % 3_600_000) / 60_000)} min`
  return `${Math.floor(ms / 86_400_000)} d ${Math.round((ms % 86_400_000) / 3_600_000)} h`
}

export const badge = (status: string) => html`<span class="status ${status}">${status}</span>`

/**
 * Whether this session sees whole phone numbers: admins do; auditors only when the deployment says
 * so (`CONSOLE_AUDITORS_SEE_NUMBERS=true`).
 */
export const seesNumbers = (session: Session, env: NodeJS.ProcessEnv = process.env): boolean =>
  session.scope === "admin" || env.CONSOLE_AUDITORS_SEE_NUMBERS === "true"

/** The number as this session may see it. */
export const shownNumber = (session: Session, number: string): string =>
  seesNumbers(session) ? number : maskNumber(number)

/** Every occurrence of `number` in a text (raw event data) masked for a session that may not see it. */
export const maskedText = (session: Session, text: string, numbers: ReadonlyArray<string>): string =>
  seesNumbers(session) ? text : numbers.reduce((masked, n) => masked.split(n).join(maskNumber(n)), text)

/** A form field carrying the session's CSRF token: every state-changing form has one. */
export const csrfField = (session: Session) =>
  html`<input type="hidden" name="_csrf" value="${session.csrf}">`

export const notice = (kind: "ok" | "error" | "info", text: Interpolation) =>
  html`<div class="notice ${kind === "info" ? "" : kind}" role="status">${text}</div>`

/** A page that says only what went wrong, answered with `status` (a refused form, an unknown id). */
export const errorPage = (options: Omit<PageOptions, "body">, status: number, message: string) =>
  htmlResponse(page({ ...options, body: notice("error", message) }), status)
