/**
 * The gRPC API (`proto/sms/v1/gateway.proto`), served by the HTTP role's process on its own port:
 * `sms.v1.SmsGateway`, the standard health service and server reflection (so `grpcurl` and other
 * tools need no `.proto`).
 *
 * Stack: `@grpc/grpc-js` (the gRPC project's own Node implementation), the `.proto` loaded at run time
 * by `@grpc/proto-loader`, reflection by `@grpc/reflection`. See the README, "gRPC API", for why.
 *
 * Shutdown: health turns NOT_SERVING, open streams end UNAVAILABLE (a watch reconnects with the last
 * revision it saw, on this process once it is back or on another), then the unary calls in flight
 * get up to `HTTP_DRAIN_MS` to finish before the server closes.
 */
import * as grpc from "@grpc/grpc-js"
import { ReflectionService } from "@grpc/reflection"
import { Duration, Effect, FiberSet, Layer, Runtime, Schema } from "effect"
import type { Clients } from "../clients/Clients.js"
import type { EventStore } from "../eventstore/EventStore.js"
import { drainWindow } from "../http/Readiness.js"
import type { Nats } from "../nats/Nats.js"
import type { ReadModels } from "../projections/ReadModels.js"
import { type CallContext, serverStreaming, unary } from "./Calls.js"
import { linkedForReflection } from "./Descriptors.js"
import { statusEncoder } from "./Errors.js"
import * as Handlers from "./Handlers.js"
import { makeHealth } from "./Health.js"
import * as MessageFeed from "./MessageFeed.js"
import { GATEWAY_PROTO, GATEWAY_SERVICE, loadProtos, serviceIn } from "./Proto.js"
import { HEALTH_SERVICE } from "./StandardProtos.js"

export interface GrpcOptions {
  readonly host: string
  /** 0 picks a free port */
  readonly port: number
}

export class GrpcServerError extends Schema.TaggedError<GrpcServerError>()("GrpcServerError", {
  reason: Schema.Literal("AddressInUse", "CannotListen"),
  message: Schema.String
}) {}

/** What the calls need from the process: the stores the HTTP role reads and writes. */
type Services = Clients | EventStore | ReadModels | Nats | MessageFeed.MessageFeed

/** `host:port` as grpc-js takes it (an IPv6 literal in brackets). */
const addressOf = (host: string, port: number) =>
  host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`

/**
 * A watch may stay open for hours with nothing to say: pings keep proxies from dropping it, and
 * find clients that are gone.
 */
const SERVER_OPTIONS: grpc.ServerOptions = {
  "grpc.keepalive_time_ms": 30_000,
  "grpc.keepalive_timeout_ms": 10_000
}

/** How long a shutdown waits for the health watches to say NOT_SERVING. */
const HEALTH_GOODBYE = Duration.seconds(1)

/** The file each definition came from, as reflection names it. */
const fileOf = (pkg: string) =>
  pkg === "sms.v1"
    ? GATEWAY_PROTO
    : pkg === "grpc.health.v1"
      ? "grpc/health/v1/health.proto"
      : `${pkg.replaceAll(".", "/")}.proto`

const listen = (server: grpc.Server, options: GrpcOptions) =>
  Effect.async<number, GrpcServerError>((resume) => {
    server.bindAsync(
      addressOf(options.host, options.port),
      grpc.ServerCredentials.createInsecure(),
      (error, port) => {
        if (error === null) return resume(Effect.succeed(port))
        const taken = /EADDRINUSE|address already in use/i.test(error.message)
        // no `cause` with the EADDRINUSE code: `start` would take it for the HTTP port
        resume(
          Effect.fail(
            new GrpcServerError({
              reason: taken ? "AddressInUse" : "CannotListen",
              message: taken
                ? `the gRPC port ${options.port} on ${options.host} is taken by another program: stop it, or choose another port with --grpc-port <port> or GRPC_PORT=<port> (0 picks a free one)`
                : `cannot serve gRPC on ${addressOf(options.host, options.port)}: ${error.message}`
            })
          )
        )
      }
    )
  })

/** grpc-js's own error lines (it writes them to stderr) as the gateway's log lines. */
const forwardLibraryLogs = Effect.gen(function* () {
  const runFork = Runtime.runFork(yield* Effect.runtime<never>())
  const forward = (...parts: Array<unknown>) => {
    runFork(Effect.logWarning(`grpc-js: ${parts.map(String).join(" ")}`))
  }
  grpc.setLogger({ error: forward, info: forward, debug: forward })
})

const serve = (options: GrpcOptions) =>
  Effect.gen(function* () {
    yield* forwardLibraryLogs
    const protos = yield* loadProtos
    const toServiceError = statusEncoder(protos.errorDetails)
    const health = yield* makeHealth
    // unary calls and streams apart: a shutdown ends the streams first, and lets unary calls finish
    const calls: CallContext<Services> = { run: yield* FiberSet.makeRuntime<Services>(), toServiceError }
    const streamFibers = yield* FiberSet.make()
    const streams: CallContext<Services> = {
      run: yield* FiberSet.runtime(streamFibers)<Services>(),
      toServiceError
    }
    // health watches apart again: told NOT_SERVING at a shutdown, they are let go before streams are cut
    const healthFibers = yield* FiberSet.make()
    const healthWatches: CallContext<Services> = {
      run: yield* FiberSet.runtime(healthFibers)<Services>(),
      toServiceError
    }

    const server = new grpc.Server(SERVER_OPTIONS)
    server.addService(serviceIn(protos.gateway, GATEWAY_SERVICE), {
      SendSms: unary(calls, "SendSms", Handlers.sendSms),
      GetMessage: unary(calls, "GetMessage", Handlers.getMessage),
      GetHistory: unary(calls, "GetHistory", Handlers.getHistory),
      WatchMessage: serverStreaming(streams, "WatchMessage", Handlers.watchMessage)
    })
    server.addService(serviceIn(protos.health, HEALTH_SERVICE), {
      Check: unary(calls, "Health.Check", health.check),
      Watch: serverStreaming(healthWatches, "Health.Watch", health.watch)
    })
    new ReflectionService(linkedForReflection([protos.gatewayAsWritten, protos.health], fileOf), {
      services: [GATEWAY_SERVICE, HEALTH_SERVICE]
    }).addToServer(server)

    const port = yield* Effect.acquireRelease(listen(server, options), () =>
      Effect.gen(function* () {
        yield* Effect.logInfo("gRPC shutting down")
        yield* health.stop
        yield* FiberSet.awaitEmpty(healthFibers).pipe(Effect.timeout(HEALTH_GOODBYE), Effect.ignore)
        yield* FiberSet.clear(healthFibers)
        yield* FiberSet.clear(streamFibers)
        const drained = yield* Effect.async<void>((resume) =>
          server.tryShutdown(() => resume(Effect.void))
        ).pipe(Effect.timeoutTo({ duration: drainWindow(), onSuccess: () => true, onTimeout: () => false }))
        if (!drained) server.forceShutdown()
      })
    )
    yield* Effect.logInfo(`gRPC API on ${addressOf(options.host, port)}`).pipe(
      Effect.annotateLogs({ services: [GATEWAY_SERVICE, HEALTH_SERVICE, "grpc.reflection.v1"].join(", ") })
    )
  })

/** Serves the gRPC API on `host:port` for the layer's lifetime. */
export const layer = (options: GrpcOptions) =>
  Layer.scopedDiscard(serve(options)).pipe(Layer.provide(MessageFeed.layer))
