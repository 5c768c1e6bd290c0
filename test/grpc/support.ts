/**
 * A whole gateway in the test process, serving gRPC on a free loopback port, and a gRPC client for
 * it built from the shipped `.proto` (as a client in another language would be).
 *
 * Two providers: `sim` answers at once and reports within 5 ms (numbers starting +120255501 are
 * invalid), `slow` takes `SLOW_MS` to answer and as long again to report: a message sent with
 * `providers: ["slow"]` stays in flight for seconds.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as grpc from "@grpc/grpc-js"
import * as protoLoader from "@grpc/proto-loader"
import { Context, Effect, Layer, Schema } from "effect"
import {
  GATEWAY_PROTO,
  GATEWAY_SERVICE,
  type GetHistoryRequest,
  type GetHistoryResponse,
  type GetMessageRequest,
  LOADER_OPTIONS,
  type Message,
  type MessageUpdate,
  PROTO_DIR,
  type SendSmsRequest,
  type SendSmsResponse,
  type ServingStatus,
  serviceIn,
  type WatchMessageRequest
} from "../../src/grpc/Proto.js"
import { health } from "../../src/grpc/StandardProtos.js"
import { infrastructure, type Role, roles } from "../../src/main.js"
import { startNatsServer } from "../../src/nats/NatsServer.js"
import { ProvidersFile } from "../../src/providers/ProviderConfig.js"
import { freePort } from "../support/gateway.js"
import { providerEntry, simulator } from "../support/inProcessGateway.js"

export const SLOW_MS = 1500

/** Every role a gateway runs without extra settings. */
const GATEWAY_ROLES: ReadonlyArray<Role> = ["intake", "providers", "dlr", "projector", "http"]
export const INVALID_NUMBER = "+12025550123"

/** Starts nats-server, the simulators and the gateway (every role, or `only`) with gRPC, for the scope. */
export const startGrpcGateway = (only?: ReadonlyArray<Role>) =>
  Effect.gen(function* () {
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => mkdtempSync(join(tmpdir(), "sms-gw-grpc-"))),
      (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
    )
    const nats = yield* startNatsServer({ storeDir: dir })
    const sim = yield* simulator({ invalidPrefixes: ["+120255501"] })
    const slow = yield* simulator({
      latencyMs: { min: SLOW_MS, max: SLOW_MS },
      dlr: { delayMs: { min: SLOW_MS, max: SLOW_MS } }
    })
    const [httpPort, grpcPort] = [yield* freePort, yield* freePort]
    const options = {
      roles: new Set<Role>(only ?? GATEWAY_ROLES),
      natsUrl: nats.url,
      providers: Schema.decodeUnknownSync(ProvidersFile)({
        providers: [
          providerEntry("sim", sim.url, { priority: 0 }),
          providerEntry("slow", slow.url, { priority: 1 })
        ]
      }),
      http: { host: "127.0.0.1", port: httpPort },
      grpc: { host: "127.0.0.1", port: grpcPort },
      publicUrl: `http://127.0.0.1:${httpPort}`
    }
    const context = yield* Layer.build(infrastructure(options))
    yield* Layer.build(roles(options).pipe(Layer.provide(Layer.succeedContext(context))))
    return {
      natsUrl: nats.url,
      address: `127.0.0.1:${grpcPort}`,
      provide: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provide(effect, context)
    }
  })

export type GrpcGateway = Effect.Effect.Success<ReturnType<typeof startGrpcGateway>>

/** The gateway shared by a file's tests. */
export class TestGateway extends Context.Tag("test/GrpcGateway")<TestGateway, GrpcGateway>() {}

export const TestGatewayLive = Layer.scoped(TestGateway, startGrpcGateway())

// ---------------------------------------------------------------------------------------------
// the client

/** As a generated client sees the messages: absent scalars read as their defaults (0, false, ""). */
const clientProtos = protoLoader.loadSync(GATEWAY_PROTO, {
  ...LOADER_OPTIONS,
  defaults: true,
  includeDirs: [PROTO_DIR]
})
const gateway = serviceIn(clientProtos, GATEWAY_SERVICE)
const healthService = serviceIn(protoLoader.fromJSON(health, LOADER_OPTIONS), "grpc.health.v1.Health")

/** How a call ended, as the client saw it. */
export interface CallEnd {
  readonly code: grpc.status
  readonly details: string
  readonly metadata: grpc.Metadata
}

const endOf = (error: grpc.ServiceError): CallEnd => ({
  code: error.code,
  details: error.details,
  metadata: error.metadata
})

const metadataWith = (apiKey: string | undefined) => {
  const metadata = new grpc.Metadata()
  if (apiKey !== undefined) metadata.set("x-api-key", apiKey)
  return metadata
}

const method = (service: grpc.ServiceDefinition, name: string) => {
  const definition = service[name]
  if (definition === undefined) throw new Error(`no method ${name}`)
  return definition
}

export interface WatchResult {
  readonly updates: ReadonlyArray<MessageUpdate>
  /** OK when the server ended the stream; otherwise why it ended */
  readonly end: CallEnd
}

/** A client of one gateway over loopback, closed with the scope. */
export const grpcClient = (address: string) =>
  Effect.gen(function* () {
    const client = yield* Effect.acquireRelease(
      Effect.sync(() => new grpc.Client(address, grpc.credentials.createInsecure())),
      (client) => Effect.sync(() => client.close())
    )

    const unary = <Req, Res>(
      service: grpc.ServiceDefinition,
      name: string,
      request: Req,
      metadata: grpc.Metadata,
      deadlineMs = 10_000
    ) =>
      Effect.async<Res, CallEnd>((resume) => {
        const definition = method(service, name)
        const call = client.makeUnaryRequest<Req, Res>(
          definition.path,
          definition.requestSerialize,
          definition.responseDeserialize,
          request,
          metadata,
          { deadline: Date.now() + deadlineMs },
          (error, response) =>
            resume(
              error !== null
                ? Effect.fail(endOf(error))
                : response === undefined
                  ? Effect.dieMessage(`${name}: no answer`)
                  : Effect.succeed(response)
            )
        )
        return Effect.sync(() => call.cancel())
      })

    /** Collects a server stream until it ends, or until `stopWhen` says enough (then cancels it). */
    const collect = <Req, Res>(
      service: grpc.ServiceDefinition,
      name: string,
      request: Req,
      metadata: grpc.Metadata,
      options: { readonly deadlineMs?: number; readonly stopWhen?: (received: ReadonlyArray<Res>) => boolean }
    ) =>
      Effect.async<{ readonly received: ReadonlyArray<Res>; readonly end: CallEnd }>((resume) => {
        const definition = method(service, name)
        const received: Array<Res> = []
        let done = false
        const finish = (end: CallEnd) => {
          if (done) return
          done = true
          resume(Effect.succeed({ received, end }))
        }
        const call = client.makeServerStreamRequest<Req, Res>(
          definition.path,
          definition.requestSerialize,
          definition.responseDeserialize,
          request,
          metadata,
          { deadline: Date.now() + (options.deadlineMs ?? 30_000) }
        )
        call.on("data", (message: Res) => {
          received.push(message)
          if (options.stopWhen?.(received)) {
            call.cancel()
            finish({
              code: grpc.status.CANCELLED,
              details: "stopped by the test",
              metadata: new grpc.Metadata()
            })
          }
        })
        call.on("error", (error: grpc.ServiceError) => finish(endOf(error)))
        call.on("status", (status: grpc.StatusObject) => {
          if (status.code === grpc.status.OK) finish(status)
        })
        return Effect.sync(() => call.cancel())
      })

    return {
      sendSms: (request: SendSmsRequest, apiKey?: string) =>
        unary<SendSmsRequest, SendSmsResponse>(gateway, "SendSms", request, metadataWith(apiKey)),
      getMessage: (request: GetMessageRequest, apiKey?: string) =>
        unary<GetMessageRequest, Message>(gateway, "GetMessage", request, metadataWith(apiKey)),
      getHistory: (request: GetHistoryRequest, apiKey?: string) =>
        unary<GetHistoryRequest, GetHistoryResponse>(gateway, "GetHistory", request, metadataWith(apiKey)),
      /** with any metadata (another way to present the key) */
      getHistoryWith: (request: GetHistoryRequest, metadata: grpc.Metadata) =>
        unary<GetHistoryRequest, GetHistoryResponse>(gateway, "GetHistory", request, metadata),
      watch: (
        request: WatchMessageRequest,
        apiKey: string,
        options: {
          readonly deadlineMs?: number
          readonly stopWhen?: (received: ReadonlyArray<MessageUpdate>) => boolean
        } = {}
      ) =>
        Effect.map(
          collect<WatchMessageRequest, MessageUpdate>(
            gateway,
            "WatchMessage",
            request,
            metadataWith(apiKey),
            options
          ),
          ({ received, end }): WatchResult => ({ updates: received, end })
        ),
      healthCheck: (service: string) =>
        Effect.map(
          unary<{ service: string }, { status: ServingStatus }>(
            healthService,
            "Check",
            { service },
            metadataWith(undefined)
          ),
          (answer) => answer.status
        ),
      healthWatch: (
        service: string,
        stopWhen: (received: ReadonlyArray<{ status: ServingStatus }>) => boolean
      ) =>
        collect<{ service: string }, { status: ServingStatus }>(
          healthService,
          "Watch",
          { service },
          metadataWith(undefined),
          {
            stopWhen
          }
        )
    }
  })

/** A `google.protobuf.Struct` (or Value) as the JSON it holds, as a client library would hand it over. */
export const jsonOf = (value: unknown): unknown => {
  if (typeof value !== "object" || value === null) return value
  const v = value as Record<string, unknown>
  if ("fields" in v && typeof v.fields === "object" && v.fields !== null)
    return Object.fromEntries(Object.entries(v.fields).map(([key, inner]) => [key, jsonOf(inner)]))
  if ("nullValue" in v) return null
  if ("numberValue" in v) return v.numberValue
  if ("stringValue" in v) return v.stringValue
  if ("boolValue" in v) return v.boolValue
  if ("structValue" in v) return jsonOf(v.structValue)
  if ("listValue" in v) return ((v.listValue as { values?: Array<unknown> }).values ?? []).map(jsonOf)
  return value
}
