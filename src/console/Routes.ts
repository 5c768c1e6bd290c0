/**
 * The console's one entry point: every request under `/console` passes here.
 *
 * In order: the static assets (no session needed, nothing secret); sign-in; then no session, no
 * page (a redirect to `/console/login`); then a form post must prove it comes from a console page
 * (`Csrf.ts`) and, except signing out, be an admin's; then the page. Every answer carries the
 * security headers (`Security.ts`); a failure is logged and answered with an error page, never a
 * stack trace.
 */
import { HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Cause, Effect, Option } from "effect"
import type { Clients } from "../clients/Clients.js"
import type { EventStore } from "../eventstore/EventStore.js"
import type { Nats } from "../nats/Nats.js"
import type { ReadModels } from "../projections/ReadModels.js"
import type { Providers } from "../providers/Providers.js"
import type { Asset } from "./Assets.js"
import * as ClientsPage from "./ClientsPage.js"
import { ConsoleAuth } from "./ConsoleAuth.js"
import { type ConsoleRequest, htmlResponse, seeOther } from "./ConsoleRequest.js"
import { crossSiteReason, forgeryReason, tokensMatch } from "./Csrf.js"
import * as DeadLettersPage from "./DeadLettersPage.js"
import { bare, notice, page } from "./Layout.js"
import { loginPage } from "./LoginPage.js"
import * as MessagesPage from "./MessagesPage.js"
import * as OverviewPage from "./OverviewPage.js"
import * as PhoneNumbersPage from "./PhoneNumbersPage.js"
import * as ProvidersPage from "./ProvidersPage.js"
import { SearchProjector } from "./SearchProjector.js"
import type { SearchStore } from "./SearchStore.js"
import { ConsoleSessions, newToken } from "./Sessions.js"
import {
  clearCookie,
  isHttps,
  LOGIN_COOKIE,
  SESSION_COOKIE,
  setCookie,
  withSecurityHeaders
} from "./Security.js"

/** The services a page may use (`Layer.ts` provides them). */
export type ConsoleServices =
  | ConsoleAuth
  | ConsoleSessions
  | SearchStore
  | SearchProjector
  | Nats
  | EventStore
  | ReadModels
  | Clients
  | Providers

/** What a page answers with. */
type Answer = Effect.Effect<HttpServerResponse.HttpServerResponse, unknown, ConsoleServices>

/** How long the sign-in form's token lives: enough to type a key. */
const LOGIN_TOKEN_MS = 15 * 60 * 1000

/** A path segment decoded; a malformed escape is kept as it came (it then names nothing). */
const segment = (value: string | undefined) => {
  try {
    return decodeURIComponent(value ?? "")
  } catch {
    return value ?? ""
  }
}

/** The page for a GET, by path. */
const getPage = (request: ConsoleRequest): Answer | undefined => {
  const { path } = request
  if (path === "/console") return OverviewPage.show(request)
  if (path === "/console/messages") return MessagesPage.list(request)
  if (path === "/console/messages.csv") return MessagesPage.exportCsv(request)
  if (path === "/console/providers") return ProvidersPage.list(request)
  if (path === "/console/dead-letters") return DeadLettersPage.list(request)
  if (path === "/console/phone-numbers") return PhoneNumbersPage.list(request)
  if (path === "/console/phone-numbers/lookup") return PhoneNumbersPage.lookup(request)
  if (path === "/console/clients") return ClientsPage.list(request)
  let match = /^\/console\/messages\/([^/]+)$/.exec(path)
  if (match) return MessagesPage.one(request, segment(match[1]))
  match = /^\/console\/phone-numbers\/([^/]+)$/.exec(path)
  if (match) return PhoneNumbersPage.one(request, segment(match[1]))
  return undefined
}

/** The action of an admin's form post, by path. */
const postAction = (request: ConsoleRequest): Answer | undefined => {
  const { path } = request
  if (path === "/console/clients/keys") return ClientsPage.issue(request)
  if (path === "/console/search/rebuild") return OverviewPage.rebuild(request)
  let match = /^\/console\/dead-letters\/([^/]+)\/resubmit$/.exec(path)
  if (match) return DeadLettersPage.resubmitOne(request, segment(match[1]))
  match = /^\/console\/phone-numbers\/([^/]+)\/reactivate$/.exec(path)
  if (match) return PhoneNumbersPage.reactivate(request, segment(match[1]))
  match = /^\/console\/clients\/keys\/([^/]+)\/revoke$/.exec(path)
  if (match) return ClientsPage.revoke(request, segment(match[1]))
  match = /^\/console\/clients\/([^/]+)\/quota$/.exec(path)
  if (match) return ClientsPage.setQuota(request, segment(match[1]))
  return undefined
}

const errorPage = (request: ConsoleRequest | undefined, status: number, message: string) => {
  const body = notice("error", message)
  return htmlResponse(
    request === undefined
      ? bare("Error", body)
      : page({
          title: status === 403 ? "Not allowed" : "Error",
          session: request.session,
          section: "",
          body
        }),
    status
  )
}

/** A rule of the domain (say, resubmitting a message that is not failed) is the operator's to read. */
const isRuleViolation = (error: unknown): error is { readonly _tag: string; readonly message: string } =>
  typeof error === "object" &&
  error !== null &&
  "_tag" in error &&
  "message" in error &&
  typeof error.message === "string" &&
  !["NatsError", "EventStoreError", "StoreUnavailable", "WrongExpectedRevision"].includes(String(error._tag))

/** Runs a page, turning what it fails with into an error page (and a log line, without the request's data). */
const answer = (request: ConsoleRequest | undefined, run: Answer) =>
  run.pipe(
    Effect.catchAllCause((cause) => {
      const failure = Option.getOrUndefined(Cause.failureOption(cause))
      if (isRuleViolation(failure)) return Effect.succeed(errorPage(request, 409, failure.message))
      return Effect.logError("console page failed", Cause.pretty(cause)).pipe(
        Effect.as(errorPage(request, 503, "the gateway could not answer this page now: retry in a moment"))
      )
    })
  )

const readForm = (request: HttpServerRequest.HttpServerRequest) =>
  request.text.pipe(
    Effect.map((text) => new URLSearchParams(text)),
    Effect.orElseSucceed(() => new URLSearchParams())
  )

const signIn = (request: HttpServerRequest.HttpServerRequest, secure: boolean) =>
  Effect.gen(function* () {
    const auth = yield* ConsoleAuth
    const sessions = yield* ConsoleSessions
    const form = yield* readForm(request)
    const formToken = form.get("_csrf") ?? undefined
    const again = (status: number, problem: string) => {
      const token = newToken()
      return setCookie(htmlResponse(loginPage(token, problem), status), LOGIN_COOKIE, token, {
        secure,
        maxAgeMs: LOGIN_TOKEN_MS
      })
    }
    const forged =
      crossSiteReason(request.headers) ??
      (tokensMatch(request.cookies[LOGIN_COOKIE] ?? "", formToken) ? undefined : "the sign-in form expired")
    if (forged !== undefined) {
      yield* Effect.logWarning("console request refused as cross-site").pipe(
        Effect.annotateLogs({ reason: forged, path: "/console/login" })
      )
      return again(403, "This sign-in did not come from this console's form: try again.")
    }
    const signedIn = yield* auth.signIn(form.get("apiKey") ?? "").pipe(Effect.either)
    if (signedIn._tag === "Left") {
      if (signedIn.left._tag === "SignInRefused") return again(401, signedIn.left.message)
      return yield* Effect.fail(signedIn.left)
    }
    const response = setCookie(seeOther("/console"), SESSION_COOKIE, signedIn.right.token, {
      secure,
      maxAgeMs: sessions.lifetimeMs
    })
    return clearCookie(response, LOGIN_COOKIE, secure)
  })

const showLogin = (secure: boolean) => {
  const token = newToken()
  return setCookie(htmlResponse(loginPage(token)), LOGIN_COOKIE, token, { secure, maxAgeMs: LOGIN_TOKEN_MS })
}

const signOut = (token: string, secure: boolean) =>
  Effect.gen(function* () {
    yield* (yield* ConsoleAuth).signOut(token)
    return clearCookie(seeOther("/console/login"), SESSION_COOKIE, secure)
  })

export interface RoutesOptions {
  readonly assets: ReadonlyMap<string, Asset>
  /** false once the HTTP role drains: live streams end */
  readonly open: () => boolean
}

/** The whole console as one handler. */
export const handle = (options: RoutesOptions) =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const url = new URL(request.url, "http://console")
    const path = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, "") : url.pathname
    const secure = isHttps(request.headers)
    const method = request.method

    const asset = /^\/console\/assets\/([^/]+)$/.exec(path)
    if (asset && method === "GET") {
      const found = options.assets.get(asset[1] ?? "")
      if (found === undefined) return withSecurityHeaders(errorPage(undefined, 404, "no such file"))
      return HttpServerResponse.setHeaders(
        withSecurityHeaders(HttpServerResponse.text(found.body, { contentType: found.contentType })),
        {
          "cache-control": "public, max-age=3600"
        }
      )
    }

    // the first console request of the process starts its search store (see SearchProjector)
    yield* (yield* SearchProjector).ensureRunning

    if (path === "/console/login") {
      if (method === "POST") return withSecurityHeaders(yield* answer(undefined, signIn(request, secure)))
      return withSecurityHeaders(showLogin(secure))
    }

    const token = request.cookies[SESSION_COOKIE] ?? ""
    const session = yield* (yield* ConsoleAuth)
      .current(token)
      .pipe(
        Effect.catchAll((error) =>
          Effect.zipRight(
            Effect.logError("cannot read console sessions", error),
            Effect.succeed(Option.none())
          )
        )
      )
    if (Option.isNone(session)) {
      const response = seeOther("/console/login")
      return withSecurityHeaders(token === "" ? response : clearCookie(response, SESSION_COOKIE, secure))
    }

    const form = method === "POST" ? yield* readForm(request) : new URLSearchParams()
    const consoleRequest: ConsoleRequest = {
      method,
      path,
      query: url.searchParams,
      form,
      headers: request.headers,
      session: session.value
    }

    if (method === "GET" || method === "HEAD") {
      if (path === "/console/overview/stream")
        return withSecurityHeaders(yield* OverviewPage.stream(options.open))
      const shown = getPage(consoleRequest)
      return withSecurityHeaders(
        shown === undefined
          ? errorPage(consoleRequest, 404, `no page ${path}`)
          : yield* answer(consoleRequest, shown)
      )
    }
    if (method !== "POST") return withSecurityHeaders(errorPage(consoleRequest, 405, "method not allowed"))

    const forged = forgeryReason(session.value.csrf, request.headers, Object.fromEntries(form))
    if (forged !== undefined) {
      yield* Effect.logWarning("console request refused as cross-site").pipe(
        Effect.annotateLogs({ reason: forged, path, clientId: session.value.clientId })
      )
      return withSecurityHeaders(
        errorPage(
          consoleRequest,
          403,
          "This form did not come from this console: reload the page and try again."
        )
      )
    }
    if (path === "/console/logout")
      return withSecurityHeaders(yield* answer(consoleRequest, signOut(token, secure)))
    if (session.value.scope !== "admin") {
      yield* Effect.logWarning("console action refused").pipe(
        Effect.annotateLogs({ reason: "auditor", path, clientId: session.value.clientId })
      )
      return withSecurityHeaders(
        errorPage(
          consoleRequest,
          403,
          "An auditor sees everything and changes nothing: sign in with an admin key to act."
        )
      )
    }
    const action = postAction(consoleRequest)
    return withSecurityHeaders(
      action === undefined
        ? errorPage(consoleRequest, 404, `no action ${path}`)
        : yield* answer(consoleRequest, action)
    )
  })
