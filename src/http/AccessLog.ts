/** What every answered request leaves behind: its metrics and one access log line. */
import { Effect } from "effect"
import { httpRequest } from "../observability/Metrics.js"

/** routes polled by load balancers and Prometheus: logged at debug, not info */
const OPERATIONS = new Set(["/health", "/ready", "/metrics"])

export const isOperation = (route: string) => OPERATIONS.has(route)

/**
 * Logged at debug, not info: the polled routes, and the delivery-report webhook (one request per
 * message: its outcome is in the message's own log lines and in the metrics).
 */
const QUIET = new Set([...OPERATIONS, "/v1/providers/:provider/delivery-reports"])

export const recordRequest = (request: {
  readonly method: string
  readonly route: string
  readonly status: number
  readonly seconds: number
  readonly trackingId: string | undefined
}) =>
  Effect.zipRight(
    httpRequest(request.method, request.route, request.status, request.seconds),
    (QUIET.has(request.route) ? Effect.logDebug : Effect.logInfo)("http request").pipe(
      Effect.annotateLogs({
        method: request.method,
        route: request.route,
        status: request.status,
        ms: Math.round(request.seconds * 1000),
        ...(request.trackingId ? { trackingId: request.trackingId } : {})
      })
    )
  )
