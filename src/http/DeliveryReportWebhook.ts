/**
 * `POST /v1/providers/:provider/delivery-reports`: a provider's delivery report, verified by its
 * signature (no API key), answered 200 only once JetStream holds it (the provider retries otherwise).
 *
 * `receive` is the endpoint itself. The HttpApi group serves it (tests, the OpenAPI document), and
 * the listening server takes this one route first on node's http directly (`serveFirst`): it is the
 * busiest route under load (one request per message), and the HttpApi stack around it cost about
 * 1 ms of CPU per report, most of the HTTP role's work.
 */
import type { IncomingMessage, ServerResponse } from "node:http"
import { HttpApiSchema } from "@effect/platform"
import { Context, Effect, Either, FiberRef, FiberRefs, LogLevel, Runtime, Schema } from "effect"
import { encodeStoredDeliveryReport, storeDeliveryReport } from "../deliveryReports/DeliveryReports.js"
import { makeRecordAtOnce } from "../deliveryReports/ReportsAtOnce.js"
import { Nats } from "../nats/Nats.js"
import { deliveryReport, unsafe as metricsNow } from "../observability/Metrics.js"
import { startSpan, tracing, validTraceparent } from "../observability/Tracing.js"
import { Subjects } from "../nats/Topology.js"
import { flattenHeaders } from "../providers/HttpSubmit.js"
import { Providers } from "../providers/Providers.js"
import { recordRequest } from "./AccessLog.js"
import { InvalidSignature, MalformedDeliveryReport, ServiceUnavailable, UnknownProvider } from "./Api.js"
import { PublicUrl } from "../platform/PublicUrl.js"
import { HttpLifecycle } from "./Readiness.js"
import { announcesTooLarge, MAX_REQUEST_BYTES, payloadTooLarge } from "./RequestLimits.js"

const ROUTE = "/v1/providers/:provider/delivery-reports"
const PATH = /^\/v1\/providers\/([^/?]+)\/delivery-reports\/?(?:\?.*)?$/

export interface WebhookRequest {
  readonly headers: Readonly<Record<string, string | undefined>>
  readonly body: string
  /** the body's bytes as received: what a signature covers (`body` is their UTF-8 text) */
  readonly rawBody?: Uint8Array
  /** path and query, as received */
  readonly url: string
}

export const receive = (providerId: string, request: WebhookRequest) =>
  Effect.gen(function* () {
    const provider = (yield* Providers).get(providerId)
    if (provider === undefined) {
      return yield* new UnknownProvider({ provider: providerId, message: `no provider ${providerId}` })
    }
    const publicUrl = yield* PublicUrl
    const parsed = provider.adapter.parseDeliveryReport({
      headers: request.headers,
      body: request.body,
      ...(request.rawBody === undefined ? {} : { rawBody: request.rawBody }),
      url: `${publicUrl}${request.url}`
    })
    if (Either.isLeft(parsed)) {
      yield* Effect.logWarning("delivery report refused").pipe(
        Effect.annotateLogs({ provider: providerId, reason: parsed.left.reason })
      )
      if (parsed.left.reason === "BadSignature") {
        yield* deliveryReport(providerId, "bad_signature")
        return yield* new InvalidSignature({ message: parsed.left.message })
      }
      yield* deliveryReport(providerId, "malformed")
      return yield* malformed(parsed.left.message)
    }
    yield* storeDeliveryReport(providerId, parsed.right, request.body).pipe(
      Effect.catchAll((error) =>
        Effect.zipRight(
          Effect.logError("the delivery report queue is unavailable", error),
          Effect.fail(
            new ServiceUnavailable({ message: "the delivery report queue is unavailable, retry later" })
          )
        )
      )
    )
    yield* deliveryReport(providerId, "stored")
    return { stored: true }
  })

export const malformed = (reason: string) =>
  new MalformedDeliveryReport({ message: `$: ${reason}`, field: "$", reason })

const Refusal = Schema.Union(UnknownProvider, InvalidSignature, MalformedDeliveryReport, ServiceUnavailable)
const encodeRefusal = Schema.encodeSync(Refusal)
const statusOf = (refusal: typeof Refusal.Type): number =>
  HttpApiSchema.getStatusError(refusal.constructor as (typeof Refusal.members)[number])

const reply = (res: ServerResponse, status: number, body: unknown) => {
  const json = JSON.stringify(body)
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(json) })
  res.end(json)
}

/**
 * A node request handler for this route that returns false for every other request, to be asked
 * before the HttpApi app. Same answers, metrics, access log and draining as the app's.
 */
export const serveFirst = Effect.gen(function* () {
  const runtime = yield* Effect.runtime<Providers | PublicUrl | Nats>()
  const lifecycle = yield* HttpLifecycle
  const run = Runtime.runPromise(runtime)
  const providers = Context.get(runtime.context, Providers)
  const publicUrl = Context.get(runtime.context, PublicUrl)
  const { publishThisTurn } = Context.get(runtime.context, Nats)
  const recordAtOnce = yield* makeRecordAtOnce
  // the access line of a stored report is at Debug: one line per report was most of the log
  const logsDebug = LogLevel.lessThanEqual(
    FiberRefs.getOrDefault(runtime.fiberRefs, FiberRef.currentMinimumLogLevel),
    LogLevel.Debug
  )

  /**
   * The common case without an Effect: a known provider, a valid signature, JetStream up. Resolves
   * false when any of those fails, and the Effect path then gives the exact answer.
   */
  const storeAtOnce = (
    req: IncomingMessage,
    res: ServerResponse,
    providerId: string,
    body: string,
    rawBody: Uint8Array,
    started: number
  ): Promise<boolean> => {
    const provider = providers.get(providerId)
    if (provider === undefined || logsDebug) return Promise.resolve(false)
    const parsed = provider.adapter.parseDeliveryReport({
      headers: flattenHeaders(req.headers),
      body,
      rawBody,
      url: `${publicUrl}${req.url ?? ""}`
    })
    if (Either.isLeft(parsed)) return Promise.resolve(false)
    const stored = { provider: providerId, receivedAt: new Date(), report: parsed.right, raw: body }
    // while traces are recorded: the report's own trace (providers send no context of ours, a
    // caller's `traceparent` is followed when there is one); its recording links to it
    const span = tracing()
      ? startSpan({
          name: "sms.delivery_report",
          kind: "server",
          parent: validTraceparent(req.headers.traceparent),
          startTime: started,
          attributes: {
            "sms.provider": providerId,
            "sms.provider_message_id": parsed.right.providerMessageId
          }
        })
      : undefined
    const answered = (outcome: "recorded" | "stored") => {
      span?.end()
      reply(res, 200, { stored: true })
      metricsNow.deliveryReport(providerId, outcome)
      metricsNow.httpRequest("POST", ROUTE, 200, (Date.now() - started) / 1000)
      return true
    }
    // reports come one per request: this turn's leave in one socket write
    const store = () =>
      publishThisTurn(
        Subjects.dlr(providerId),
        encodeStoredDeliveryReport(stored),
        span && { traceparent: span.traceparent }
      ).then(
        () => answered("stored"),
        () => {
          span?.end({ error: "not stored" })
          return false
        }
      )
    const recorded = recordAtOnce(stored, span?.traceparent)
    return recorded === undefined ? store() : recorded.then((done) => (done ? answered("recorded") : store()))
  }

  const answer = (
    req: IncomingMessage,
    res: ServerResponse,
    providerId: string,
    raw: Buffer | undefined,
    started: number
  ) =>
    Effect.gen(function* () {
      let status: number
      if (raw === undefined) {
        status = 413
        reply(res, status, payloadTooLarge)
      } else {
        const outcome = yield* receive(providerId, {
          headers: flattenHeaders(req.headers),
          body: raw.toString("utf8"),
          rawBody: raw,
          url: req.url ?? ""
        }).pipe(Effect.either)
        status = Either.isRight(outcome) ? 200 : statusOf(outcome.left)
        reply(res, status, Either.isRight(outcome) ? outcome.right : encodeRefusal(outcome.left))
      }
      const trackingId = req.headers["x-tracking-id"]
      yield* recordRequest({
        method: "POST",
        route: ROUTE,
        status,
        seconds: (Date.now() - started) / 1000,
        trackingId: typeof trackingId === "string" ? trackingId : undefined
      })
    })

  return (req: IncomingMessage, res: ServerResponse): boolean => {
    if (req.method !== "POST") return false
    const match = PATH.exec(req.url ?? "")
    if (match === null) return false
    if (lifecycle.isDraining()) {
      reply(res, 503, { _tag: "ServiceUnavailable", message: "the gateway is shutting down, retry" })
      return true
    }
    lifecycle.started()
    const started = Date.now()
    const chunks: Array<Buffer> = []
    let size = 0
    let settled = false
    const settle = (raw: Buffer | undefined) => {
      if (settled) return
      settled = true
      let providerId: string
      try {
        providerId = decodeURIComponent(match[1] ?? "")
      } catch {
        providerId = match[1] ?? ""
      }
      const answered =
        raw === undefined
          ? Promise.resolve(false)
          : storeAtOnce(req, res, providerId, raw.toString("utf8"), raw, started)
      answered
        .then((done) => (done ? undefined : run(answer(req, res, providerId, raw, started))))
        .then(lifecycle.finished, (error) => {
          lifecycle.finished()
          if (!res.headersSent) reply(res, 500, { _tag: "InternalError", message: "internal error" })
          return run(Effect.logError("delivery report webhook failed", error))
        })
    }
    // refused before a byte is read when the length is announced, else as soon as it passes
    if (announcesTooLarge(req.headers["content-length"])) {
      req.resume()
      settle(undefined)
      return true
    }
    req.on("data", (chunk: Buffer) => {
      size += chunk.length
      if (size > MAX_REQUEST_BYTES) {
        req.removeAllListeners("data")
        req.resume()
        settle(undefined)
      } else chunks.push(chunk)
    })
    req.on("end", () => settle(Buffer.concat(chunks)))
    req.on("error", () => {
      if (!settled) {
        settled = true
        lifecycle.finished()
      }
      res.destroy()
    })
    return true
  }
})
