/**
 * The HTTP role: the API on a Node HTTP server, its OpenAPI document at `/openapi.json` and a UI at
 * `/docs`.
 *
 * Around every request: the error shape (request decoding errors become `InvalidRequest` naming the
 * field, unknown routes a JSON 404), metrics (`sms_http_requests_total`, durations), an access log
 * line with the tracking id, and refusal of new work while draining (see `Readiness.ts`).
 */
import { type IncomingMessage, Server, type ServerResponse } from "node:http"
import {
  FileSystem,
  HttpApi,
  HttpApiBuilder,
  type HttpApiError,
  HttpApiSwagger,
  type HttpApp,
  HttpIncomingMessage,
  HttpServer,
  HttpServerRequest,
  HttpServerResponse
} from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Cause, Clock, Effect, Either, Layer, Option } from "effect"
import * as Console from "../console/Layer.js"
import { jsonTextDeeperThan } from "../domain/PlainChecks.js"
import { httpRequest, unsafe as metricsNow } from "../observability/Metrics.js"
import { isOperation, recordRequest } from "./AccessLog.js"
import { GatewayApi } from "./Api.js"
import { AuthenticationLive } from "./Auth.js"
import {
  ClientsLive,
  DeliveryReportsLive,
  HealthLive,
  MessagesLive,
  PhoneNumbersLive,
  MetricsLive
} from "./Handlers.js"
import * as DeliveryReportWebhook from "./DeliveryReportWebhook.js"
import { drainWindow, HttpLifecycle, shutdownDelay } from "./Readiness.js"
import { announcesTooLarge, MAX_REQUEST_BYTES, payloadTooLarge } from "./RequestLimits.js"

export const ApiLive = HttpApiBuilder.api(GatewayApi).pipe(
  Layer.provide([MessagesLive, PhoneNumbersLive, ClientsLive, DeliveryReportsLive, HealthLive, MetricsLive]),
  Layer.provide(AuthenticationLive)
)

const errorResponse = (status: number, body: Record<string, string>) =>
  HttpServerResponse.unsafeJson(body, { status })

const invalidRequest = (field: string, reason: string) =>
  errorResponse(400, { _tag: "InvalidRequest", message: `${field}: ${reason}`, field, reason })

const isDecodeError = (error: unknown): error is HttpApiError.HttpApiDecodeError =>
  typeof error === "object" && error !== null && "_tag" in error && error._tag === "HttpApiDecodeError"

const isBodyDecodeDefect = (defect: unknown) =>
  typeof defect === "object" &&
  defect !== null &&
  "_tag" in defect &&
  defect._tag === "RequestError" &&
  "reason" in defect &&
  defect.reason === "Decode"

/** The platform's own words when a body passes `MaxBodySize` while it is read. */
const isWebhook = (url: string) => routeOf(url) === "/v1/providers/:provider/delivery-reports"

const isBodyTooLarge = (defect: unknown) =>
  isBodyDecodeDefect(defect) &&
  typeof defect === "object" &&
  defect !== null &&
  "cause" in defect &&
  defect.cause instanceof Error &&
  defect.cause.message === "maxBytes exceeded"

/** `application/json`, with or without parameters (`; charset=utf-8`), or a `+json` type. */
const isJson = (contentType: string | undefined) => {
  const mediaType = contentType?.split(";")[0]?.trim().toLowerCase() ?? ""
  return mediaType === "application/json" || mediaType.endsWith("+json")
}

/**
 * The platform decodes a form-encoded body into the payload too, so JSON sent as a form (curl's `-d`
 * default) was answered `to: is missing`; say what is actually wrong instead.
 */
const unsupportedMediaType = (contentType: string | undefined) =>
  errorResponse(415, {
    _tag: "UnsupportedMediaType",
    message: `content-type: send the body as application/json (this request said ${
      contentType === undefined || contentType.trim() === "" ? "none" : contentType
    })`
  })

/** Nesting a request body may have: the API's own bodies need 3 (a message's metadata). */
const MAX_JSON_DEPTH = 16

/** A body nested too deep is refused before anything parses or walks it. */
const shallowBodies = (app: HttpApp.Default): HttpApp.Default =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    if (request.method === "POST" || request.method === "PUT" || request.method === "PATCH") {
      // read once: the platform's own parse reuses this text
      const text = yield* Effect.either(request.text)
      if (Either.isLeft(text)) {
        return isBodyTooLarge(text.left)
          ? errorResponse(413, payloadTooLarge)
          : invalidRequest("$", "could not be read")
      }
      const mediaType = request.headers["content-type"]
      if (JSON_BODY_ROUTES.has(routeOf(request.url)) && !isJson(mediaType)) {
        return unsupportedMediaType(mediaType)
      }
      if (jsonTextDeeperThan(text.right, MAX_JSON_DEPTH)) {
        return invalidRequest("$", `is nested more than ${MAX_JSON_DEPTH} levels deep`)
      }
    }
    return yield* app
  })

/**
 * Request decoding fails with `HttpApiDecodeError` (its own shape) or, for a body that is not JSON,
 * a defect: both become the one 400 shape, `{_tag: "InvalidRequest", message, field, reason}`. An
 * unknown route becomes a JSON 404 (`RouteNotFound`) instead of an empty one.
 */
const uniformErrors = (app: HttpApp.Default): HttpApp.Default =>
  Effect.catchAllCause(shallowBodies(app), (cause) => {
    const failure: unknown = Option.getOrUndefined(Cause.failureOption(cause))
    if (isDecodeError(failure)) {
      const [issue] = failure.issues
      const field = issue !== undefined && issue.path.length > 0 ? issue.path.join(".") : "$"
      return Effect.succeed(invalidRequest(field, issue?.message ?? "is invalid"))
    }
    if (
      typeof failure === "object" &&
      failure !== null &&
      "_tag" in failure &&
      failure._tag === "RouteNotFound"
    ) {
      return Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
        Effect.succeed(
          errorResponse(404, {
            _tag: "RouteNotFound",
            message: `no route ${request.method} ${request.url.split("?")[0]}`
          })
        )
      )
    }
    const defect = Cause.dieOption(cause)
    if (Option.isSome(defect) && isBodyTooLarge(defect.value)) {
      return Effect.succeed(errorResponse(413, payloadTooLarge))
    }
    if (Option.isSome(defect) && isBodyDecodeDefect(defect.value)) {
      return Effect.succeed(invalidRequest("$", "is not valid JSON"))
    }
    return Effect.failCause(cause)
  })

/** A route template as a pattern: each `:param` is one path segment; a trailing slash is allowed. */
const patternOf = (template: string) =>
  new RegExp(`^${template.replace(/[.]/g, "\\.").replace(/:[^/]+/g, "[^/]+")}/?$`)

/**
 * Every endpoint of the API, read from its definition (a route added there is labelled at once:
 * the phone-number routes once fell through to `other`), and the two documents beside it.
 */
const ROUTES: ReadonlyArray<readonly [RegExp, string]> = (() => {
  const templates: Array<string> = []
  HttpApi.reflect(GatewayApi, {
    onGroup: () => undefined,
    onEndpoint: ({ endpoint }) => {
      if (!templates.includes(endpoint.path)) templates.push(endpoint.path)
    }
  })
  return [
    ...templates.map((template) => [patternOf(template), template] as const),
    [/^\/openapi\.json$/, "/openapi.json"] as const,
    [/^\/docs(\/.*)?$/, "/docs"] as const,
    [/^\/console(\/.*)?$/, "/console"] as const
  ]
})()

/** The routes whose endpoint takes a JSON payload (not the webhook: it reads its body raw). */
const JSON_BODY_ROUTES: ReadonlySet<string> = (() => {
  const templates = new Set<string>()
  HttpApi.reflect(GatewayApi, {
    onGroup: () => undefined,
    onEndpoint: ({ endpoint }) => {
      if (Option.isSome(endpoint.payloadSchema) && endpoint.method !== "GET") templates.add(endpoint.path)
    }
  })
  return templates
})()

/** The route template of a path, for metric labels (never the raw path: ids would explode them). */
export const routeOf = (url: string): string => {
  const path = url.split("?")[0] ?? url
  return ROUTES.find(([pattern]) => pattern.test(path))?.[1] ?? "other"
}

/** Metrics, access log and draining around the whole app (after errors became responses). */
const observe = (app: HttpApp.Default): HttpApp.Default<never, HttpLifecycle> =>
  Effect.gen(function* () {
    const request = yield* HttpServerRequest.HttpServerRequest
    const lifecycle = yield* HttpLifecycle
    const route = routeOf(request.url)
    if (lifecycle.isDraining() && !isOperation(route)) {
      return errorResponse(503, {
        _tag: "ServiceUnavailable",
        message: "the gateway is shutting down, retry"
      })
    }
    const trackingId = request.headers["x-tracking-id"]
    const started = yield* Clock.currentTimeMillis
    lifecycle.started()
    // errors were turned into responses (and sent) inside `app`; a failure here is a defect already answered 500
    const response = yield* app.pipe(
      // a body without a content-length is cut off here; one with it never got this far
      HttpIncomingMessage.withMaxBodySize(Option.some(FileSystem.Size(MAX_REQUEST_BYTES))),
      Effect.tapErrorCause(() =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          httpRequest(request.method, route, 500, (now - started) / 1000)
        )
      ),
      Effect.ensuring(Effect.sync(lifecycle.finished))
    )
    yield* recordRequest({
      method: request.method,
      route,
      status: response.status,
      seconds: ((yield* Clock.currentTimeMillis) - started) / 1000,
      trackingId
    })
    return response
  })

const ServeWithLifecycle = HttpApiBuilder.serve(observe).pipe(
  Layer.provide(HttpApiSwagger.layer({ path: "/docs" })),
  // the operator's console, under /console (src/console/)
  Layer.provide(Console.layer),
  Layer.provide(HttpApiBuilder.middlewareOpenApi({ path: "/openapi.json" })),
  Layer.provide(HttpApiBuilder.middleware(uniformErrors)),
  Layer.provide(ApiLive)
)

/** Serves the API; provide an `HttpServer` (e.g. `listen`, or `NodeHttpServer.layerTest`). */
export const serveApi = ServeWithLifecycle.pipe(Layer.provide(HttpLifecycle.layer))

/** Answers at once and drains the body unread (closing instead would reset a client still sending). */
const refuse = (req: IncomingMessage, res: ServerResponse, status: number, body: object) => {
  const json = JSON.stringify(body)
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(json) })
  res.end(json)
  req.resume()
  metricsNow.httpRequest(req.method ?? "POST", routeOf(req.url ?? ""), status, 0)
  return true
}

/**
 * Bodies the API would have to read before knowing their size are refused before any of it is read:
 * one announced past the limit is a 413, and one without a length (chunked) a 411 on the API's routes.
 * (The platform's own cut-off of a chunked body destroys the socket under the response, whose fiber
 * then never ends.) The delivery-report webhook reads chunked bodies itself, within the same limit.
 */
const refuseUnbounded = (req: IncomingMessage, res: ServerResponse): boolean => {
  if (announcesTooLarge(req.headers["content-length"])) return refuse(req, res, 413, payloadTooLarge)
  if (req.headers["transfer-encoding"] !== undefined && !isWebhook(req.url ?? "")) {
    return refuse(req, res, 411, {
      _tag: "LengthRequired",
      message: "send the body with a Content-Length (at most 65536 bytes)"
    })
  }
  return false
}

/** A node server that offers each request to `first` before the app the platform registers. */
class ServerWithFirst extends Server {
  constructor(private readonly first: (req: IncomingMessage, res: ServerResponse) => boolean) {
    super()
  }
  // biome-ignore lint/suspicious/noExplicitAny: node's EventEmitter signature
  override emit(event: string, ...args: Array<any>): boolean {
    if (event === "request" && (refuseUnbounded(args[0], args[1]) || this.first(args[0], args[1])))
      return true
    return super.emit(event, ...args)
  }
}

/** Listens on `host:port`; the delivery-report webhook is served ahead of the HttpApi app. */
export const listen = (options: { readonly port: number; readonly host: string }) =>
  Layer.unwrapEffect(
    Effect.map(DeliveryReportWebhook.serveFirst, (first) =>
      NodeHttpServer.layer(() => new ServerWithFirst(first), options)
    )
  )

/** Before the server closes: refuse new work and let requests in flight finish (`HTTP_DRAIN_MS`). */
const drainOnShutdown = Layer.scopedDiscard(
  Effect.flatMap(HttpLifecycle, (lifecycle) =>
    Effect.addFinalizer(() =>
      Effect.logInfo("HTTP draining").pipe(
        Effect.annotateLogs({ inFlight: lifecycle.inFlight() }),
        Effect.zipRight(lifecycle.drain(drainWindow(), shutdownDelay()))
      )
    )
  )
)

/** The HTTP role on `host:port`, draining on shutdown before the server closes. */
export const layer = (options: { readonly port: number; readonly host: string }) =>
  drainOnShutdown.pipe(
    Layer.provide(ServeWithLifecycle.pipe(HttpServer.withLogAddress, Layer.provide(listen(options)))),
    Layer.provide(HttpLifecycle.layer)
  )
