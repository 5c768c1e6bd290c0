/**
 * A console request as the pages see it: already signed in (the router sends everyone else to
 * sign-in) and, for a form post, already checked against forgery.
 */
import { HttpServerResponse } from "@effect/platform"
import type { Html } from "./Html.js"
import type { Session } from "./Sessions.js"

export interface ConsoleRequest {
  readonly method: string
  /** the path without the query */
  readonly path: string
  readonly query: URLSearchParams
  /** a form post's fields (empty for a GET) */
  readonly form: URLSearchParams
  readonly headers: Readonly<Record<string, string | undefined>>
  readonly session: Session
}

/** The query's parameters as a record (the first value of each). */
export const paramsOf = (query: URLSearchParams): Record<string, string> => {
  const params: Record<string, string> = {}
  for (const [key, value] of query) if (!(key in params)) params[key] = value
  return params
}

export const htmlResponse = (body: Html, status = 200) =>
  HttpServerResponse.text(body.text, { status, contentType: "text/html; charset=utf-8" })

/** After a successful form post: back to a page (Post/Redirect/Get), with a note in its query. */
export const seeOther = (location: string) => HttpServerResponse.empty({ status: 303, headers: { location } })

export const isAdmin = (request: ConsoleRequest) => request.session.scope === "admin"
