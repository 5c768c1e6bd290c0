/**
 * The `sms-gateway` command: start | send | status | history | simulator | dead-letters | replay |
 * rebuild | migrate | clients.
 */
import { Args, Command, Options } from "@effect/cli"
import { NodeContext, NodeHttpClient, NodeRuntime } from "@effect/platform-node"
import { connect } from "@nats-io/transport-node"
import { Console, Data, Effect, Layer, Logger, LogLevel, Option } from "effect"
import { MessageId } from "../domain/Ids.js"
import { MessageNotFound } from "../http/Api.js"
import { ROLES, type Role } from "../main.js"
import { natsAuthFor } from "../nats/NatsAuth.js"
import { NatsServerError } from "../nats/NatsServer.js"
import { Subjects } from "../nats/Topology.js"
import * as Simulator from "../providers/Simulator.js"
import { deadLettersCommand } from "./DeadLetterCommands.js"
import { apiKeyFor, makeApiClient } from "../http/Client.js"
import { LoggerLive } from "../observability/Logger.js"
import { rebuildCommand, replay } from "./AuditCommands.js"
import { clientsCommand } from "./ClientCommands.js"
import { dataDirOption, runningGateway } from "./Connect.js"
import { DataDirInUse, start } from "./Embedded.js"
import { migrateCommand } from "./Migrate.js"

const dataDir = dataDirOption

const failExit = Effect.sync(() => {
  process.exitCode = 1
})

/** A mistake of the person at the keyboard: printed as one line, exit code 1, no stack trace. */
class UsageError extends Data.TaggedError("UsageError")<{ readonly message: string }> {}

const required = (value: string | undefined, variable: "NATS_URL" | "GATEWAY_URL") =>
  value === undefined
    ? Effect.fail(
        new UsageError({ message: `no running gateway found: start one (npm start) or set ${variable}` })
      )
    : Effect.succeed(value)

const startCommand = Command.make(
  "start",
  {
    roles: Options.text("roles").pipe(
      Options.withDefault(ROLES.join(",")),
      Options.withDescription(`comma-separated roles to run: ${ROLES.join(", ")}`)
    ),
    host: Options.text("host").pipe(Options.withDefault(process.env.HTTP_HOST ?? "127.0.0.1")),
    httpPort: Options.integer("http-port").pipe(Options.withDefault(Number(process.env.HTTP_PORT ?? 3000))),
    dataDir
  },
  ({ roles, host, httpPort, dataDir }) =>
    Effect.gen(function* () {
      const chosen = roles
        .split(",")
        .map((r) => r.trim())
        .filter((r) => r.length > 0)
      const unknown = chosen.filter((r) => !(ROLES as ReadonlyArray<string>).includes(r))
      if (unknown.length > 0)
        return yield* new UsageError({ message: `unknown roles: ${unknown.join(", ")}` })
      return yield* start({ roles: new Set(chosen as Array<Role>), host, httpPort, dataDir })
    })
).pipe(
  Command.withDescription(
    "run the gateway (embedded nats-server and simulator unless NATS_URL / PROVIDERS_CONFIG)"
  )
)

const sendCommand = Command.make(
  "send",
  {
    to: Options.text("to").pipe(Options.withDescription("recipient, E.164 (+447911123456)")),
    body: Options.text("body"),
    from: Options.optional(Options.text("from")),
    clientId: Options.text("client-id").pipe(Options.withDefault("cli")),
    idempotencyKey: Options.optional(Options.text("idempotency-key")),
    providers: Options.text("provider").pipe(
      Options.repeated,
      Options.withDescription("use only these providers, in order")
    ),
    dataDir
  },
  (args) =>
    Effect.gen(function* () {
      const natsUrl = yield* required(runningGateway(args.dataDir).natsUrl, "NATS_URL")
      const command = {
        clientId: args.clientId,
        idempotencyKey: Option.getOrElse(args.idempotencyKey, () => crypto.randomUUID()),
        to: args.to,
        body: args.body,
        from: Option.getOrUndefined(args.from),
        providers: args.providers.length > 0 ? args.providers : undefined
      }
      // the embedded gateway's credentials (runningGateway read them), or the NATS_* settings
      const auth = yield* Effect.mapError(
        natsAuthFor(natsUrl),
        (error) => new UsageError({ message: error.message })
      )
      const reply = yield* Effect.acquireUseRelease(
        Effect.promise(() => connect({ ...auth, servers: natsUrl, name: "sms-gateway-cli" })),
        (nc) =>
          Effect.promise(() =>
            nc.request(Subjects.sendRequest, JSON.stringify(command), { timeout: 10_000 })
          ),
        (nc) => Effect.promise(() => nc.close())
      )
      yield* Console.log(reply.string())
      if (reply.string().includes('"error"')) yield* failExit
    })
).pipe(Command.withDescription("send one SMS through the running gateway and print its message id"))

const messageArg = Args.text({ name: "messageId" }).pipe(Args.withSchema(MessageId))

const apiClient = (dir: string) =>
  Effect.flatMap(required(runningGateway(dir).httpUrl, "GATEWAY_URL"), (baseUrl) =>
    makeApiClient(baseUrl, apiKeyFor(dir))
  )

const statusCommand = Command.make("status", { id: messageArg, dataDir }, ({ id, dataDir }) =>
  Effect.gen(function* () {
    const client = yield* apiClient(dataDir)
    const status = yield* client.messages.getMessage({ path: { id }, urlParams: {} })
    yield* Console.log(JSON.stringify(status, null, 2))
  })
).pipe(Command.withDescription("print a message's status"))

const historyCommand = Command.make("history", { id: messageArg, dataDir }, ({ id, dataDir }) =>
  Effect.gen(function* () {
    const client = yield* apiClient(dataDir)
    const { events } = yield* client.messages.getMessageEvents({ path: { id } })
    for (const event of events) {
      yield* Console.log(
        `${String(event.revision).padStart(3)}  ${event.recordedAt}  ${event.type.padEnd(14)} ${JSON.stringify(event.data)}`
      )
    }
  })
).pipe(Command.withDescription("print every event of a message, in order"))

const rate = (name: string, what: string) =>
  Options.float(name).pipe(
    Options.withDefault(0),
    Options.withDescription(`share of submissions ${what} (0..1)`)
  )

const simulatorCommand = Command.make(
  "simulator",
  {
    format: Options.choice("format", ["generic-http", "twilio", "vonage"]).pipe(
      Options.withDefault("generic-http" as const)
    ),
    host: Options.text("host").pipe(Options.withDefault("127.0.0.1")),
    port: Options.integer("port").pipe(Options.withDefault(9100)),
    apiKey: Options.text("api-key").pipe(Options.withDefault(process.env.SIM_API_KEY ?? "sim-key")),
    account: Options.optional(Options.text("account")).pipe(
      Options.withDescription("the Twilio account SID or Vonage api_key clients must present")
    ),
    webhookSecret: Options.text("webhook-secret").pipe(
      Options.withDefault(process.env.SIM_WEBHOOK_SECRET ?? "sim-secret")
    ),
    dlrUrl: Options.optional(Options.text("dlr-url")),
    dlrMinMs: Options.integer("dlr-min-ms").pipe(Options.withDefault(0)),
    dlrMaxMs: Options.integer("dlr-max-ms").pipe(Options.withDefault(5)),
    latencyMs: Options.integer("latency-ms").pipe(Options.withDefault(0)),
    errorRate: rate("error-rate", "answered 503"),
    throttleRate: rate("throttle-rate", "answered 429 with Retry-After"),
    timeoutRate: rate("timeout-rate", "never answered"),
    resetRate: rate("reset-rate", "whose connection is reset"),
    failRate: rate("fail-rate", "reported undelivered"),
    duplicateRate: rate("duplicate-rate", "whose report is sent twice"),
    dlrRetries: Options.integer("dlr-retries").pipe(
      Options.withDefault(5),
      Options.withDescription(
        "posts of a refused delivery report after the first (waits double from 50 ms, at most 5 s)"
      )
    ),
    invalidPrefix: Options.text("invalid-prefix").pipe(Options.repeated)
  },
  (args) =>
    Effect.gen(function* () {
      const sim = yield* Simulator.start({
        format: args.format,
        host: args.host,
        port: args.port,
        apiKey: args.apiKey,
        account: Option.getOrUndefined(args.account),
        webhookSecret: args.webhookSecret,
        dlrUrl: Option.getOrUndefined(args.dlrUrl),
        latencyMs: { min: args.latencyMs, max: args.latencyMs },
        errorRate: args.errorRate,
        throttleRate: args.throttleRate,
        timeoutRate: args.timeoutRate,
        resetRate: args.resetRate,
        invalidPrefixes: args.invalidPrefix,
        dlr: {
          delayMs: { min: args.dlrMinMs, max: args.dlrMaxMs },
          failRate: args.failRate,
          duplicateRate: args.duplicateRate,
          retries: args.dlrRetries
        }
      })
      yield* Console.log(`listening ${sim.url}`)
      return yield* Effect.never
    }).pipe(Effect.scoped)
).pipe(
  Command.withDescription(
    "run the provider simulator (generic-http, twilio or vonage wire format) on its own"
  )
)

const cli = Command.make("sms-gateway").pipe(
  Command.withSubcommands([
    startCommand,
    sendCommand,
    statusCommand,
    historyCommand,
    simulatorCommand,
    deadLettersCommand,
    replay,
    rebuildCommand,
    migrateCommand,
    clientsCommand
  ])
)

const logLevel = LogLevel.fromLiteral((process.env.LOG_LEVEL as LogLevel.Literal | undefined) ?? "Info")

Command.run(cli, { name: "sms-gateway", version: "0.1.0" })(process.argv).pipe(
  Effect.catchIf(
    // a data folder or store another gateway holds: one line that says what to do, not a stack
    (error): error is UsageError | MessageNotFound | DataDirInUse | NatsServerError =>
      error instanceof UsageError ||
      error instanceof MessageNotFound ||
      error instanceof DataDirInUse ||
      (error instanceof NatsServerError && error.reason === "StoreInUse"),
    (error) => Console.error(error.message).pipe(Effect.andThen(failExit))
  ),
  Logger.withMinimumLogLevel(logLevel),
  Effect.provide(Layer.mergeAll(NodeContext.layer, NodeHttpClient.layerUndici, LoggerLive)),
  (program) => NodeRuntime.runMain(program, { disablePrettyLogger: true })
)
