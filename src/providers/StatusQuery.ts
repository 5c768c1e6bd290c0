/**
 * The one HTTP call of a status query (see `ProviderAdapter.queryStatus`): a GET with its own small
 * connection pool (closed with the scope) and one timer for the whole answer, as a submission has.
 * Cold path (only at report deadlines), so an Effect per call is fine here.
 */
import { Duration, Effect, Either, type Scope } from "effect"
import { Agent, request } from "undici"
import { fieldAt, nonEmpty } from "./GenericHttp.js"
import { flattenHeaders, type ProviderAnswer } from "./HttpSubmit.js"
import { type DeliveryReport, type QueriedStatus, StatusQueryError } from "./ProviderAdapter.js"

export type StatusGet = (
  url: string,
  headers: Readonly<Record<string, string>>
) => Effect.Effect<ProviderAnswer, StatusQueryError>

export const makeStatusGetter = (timeout: Duration.Duration): Effect.Effect<StatusGet, never, Scope.Scope> =>
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => new Agent({ keepAliveTimeout: 30_000, connections: 32 })),
      (agent) => Effect.promise(() => agent.close())
    ),
    (agent): StatusGet =>
      (url, headers) =>
        Effect.async<ProviderAnswer, StatusQueryError>((resume, interruption) => {
          const deadline = new AbortController()
          let expired = false
          const timer = setTimeout(() => {
            expired = true
            deadline.abort()
          }, Duration.toMillis(timeout))
          const interrupt = () => deadline.abort()
          interruption.addEventListener("abort", interrupt, { once: true })
          const done = () => {
            clearTimeout(timer)
            interruption.removeEventListener("abort", interrupt)
          }
          request(url, { method: "GET", headers, dispatcher: agent, signal: deadline.signal })
            .then(async (response) => {
              const text = await response.body.text()
              done()
              resume(
                Effect.succeed({
                  status: response.statusCode,
                  headers: flattenHeaders(response.headers),
                  text
                })
              )
            })
            .catch((cause: unknown) => {
              done()
              resume(
                Effect.fail(
                  expired
                    ? new StatusQueryError({
                        reason: "timeout",
                        message: `no answer within ${Duration.format(timeout)}`
                      })
                    : new StatusQueryError({
                        reason: "network",
                        message: `connection failed: ${errorCode(cause)}`
                      })
                )
              )
            })
        })
  )

const errorCode = (cause: unknown): string => {
  const inner = cause instanceof Error && cause.cause instanceof Error ? cause.cause : cause
  if (inner instanceof Error && "code" in inner && typeof inner.code === "string") return inner.code
  return cause instanceof Error ? cause.message : "unknown"
}

/** A detail short enough for a log line. */
const short = (text: string) => (text.length > 200 ? `${text.slice(0, 199)}…` : text)

/** What a status query's answer other than 2xx means, the same for every provider. */
export const httpFailure = (status: number, detail: string): StatusQueryError => {
  const message = short(`HTTP ${status}${detail.length > 0 ? `: ${detail}` : ""}`)
  if (status === 404) return new StatusQueryError({ reason: "not_found", message })
  if (status === 401 || status === 403) return new StatusQueryError({ reason: "auth", message })
  if (status === 429) return new StatusQueryError({ reason: "throttled", message })
  if (status === 408) return new StatusQueryError({ reason: "timeout", message })
  if (status >= 500) return new StatusQueryError({ reason: "http_5xx", message })
  return new StatusQueryError({ reason: "unexpected", message })
}

export const malformedAnswer = (message: string) =>
  new StatusQueryError({ reason: "malformed", message: short(message) })

/**
 * A queried record's status (and error code) as a `QueriedStatus`, through the provider's own mapping
 * of its statuses (`outcomeOf`, the one its reports use): `where` names the record in errors.
 */
export const queriedStatusOf = (
  record: unknown,
  providerMessageId: string,
  where: string,
  outcomeOf: (
    base: Omit<DeliveryReport, "outcome" | "failureReason">,
    rawStatus: string,
    code: string | undefined
  ) => DeliveryReport
): Either.Either<QueriedStatus, StatusQueryError> => {
  const rawStatus = fieldAt(record, ["status"])
  if (typeof rawStatus !== "string" || rawStatus.length === 0) {
    return Either.left(malformedAnswer(`${where}status: is missing`))
  }
  const errorCode = nonEmpty(fieldAt(record, ["error_code"]))
  const code = errorCode !== undefined && errorCode !== "0" ? errorCode : undefined
  const report = outcomeOf(
    { providerMessageId, rawStatus, ...(code !== undefined ? { code } : {}) },
    rawStatus,
    code
  )
  return Either.right(
    report.outcome === "pending" ? { _tag: "NotFinal", rawStatus } : { _tag: "Final", report }
  )
}
