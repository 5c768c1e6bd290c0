/**
 * The `sms-gateway` command: start | send | status | history | simulator | dead-letters | replay |
 * calls | rebuild | migrate | clients | outbox.
 *
 * Its size (over 400 lines) is the command tree: each command's options beside its handler.
 */
import { Args, Command, Options } from "@effect/cli"
import * as ValidationError from "@effect/cli/ValidationError"
// the modules themselves, not the package's index: the index also loads cluster, rpc, sql and
// websocket modules no command uses, about half a second of every call
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { Cause, Console, Effect, Layer, Logger, LogLevel, Option } from "effect"
import { calls, rebuildCommand, replay } from "./AuditCommands.js"
import { clientsCommand } from "./ClientCommands.js"
import { dataDirOption, requireGateway } from "./Connect.js"
import { deadLettersCommand } from "./DeadLetterCommands.js"
import type { MessageId } from "../domain/Ids.js"
import type * as ClientModule from "../http/Client.js"
import { UsageError } from "./Errors.js"
import { migrateCommand } from "./Migrate.js"
import { withTidyConsole } from "./Output.js"

/*
 * Each command loads the modules it needs when it runs (`Effect.promise(() => import(...))`): the
 * gateway's modules (`start`), the HTTP API's schemas (`status`, `history`) or the simulator are
 * most of a second to load, which `--help`, `send` or a typo should not pay.
 */

const dataDir = dataDirOption

const failExit = Effect.sync(() => {
  process.exitCode = 1
  // A failed command ends, whatever a half-made connection or server left open (seen: a start that
  // said why it failed and then hung); the second lets stderr and the logs flush.
  setTimeout(() => process.exit(1), 1_000).unref()
})

/** The roles, for the help text; `start` checks against the gateway's own list (`ROLES` in main.ts). */
const ROLE_NAMES = "intake, providers, dlr, projector, http, outbox (with OUTBOX_URL)"

const startCommand = Command.make(
  "start",
  {
    roles: Options.text("roles").pipe(
      Options.withDefault("all"),
      Options.withDescription(`comma-separated roles to run: ${ROLE_NAMES} (default: all)`)
    ),
    host: Options.text("host").pipe(
      Options.withDefault(process.env.HTTP_HOST ?? "127.0.0.1"),
      Options.withDescription("the HTTP API's address (default: HTTP_HOST, else 127.0.0.1)")
    ),
    httpPort: Options.integer("http-port").pipe(
      Options.withDefault(Number(process.env.HTTP_PORT ?? 3000)),
      Options.withDescription("the HTTP API's port, 0 for a free one (default: HTTP_PORT, else 3000)")
    ),
    grpcPort: Options.integer("grpc-port").pipe(
      Options.withDefault(Number(process.env.GRPC_PORT ?? 50051)),
      Options.withDescription(
        "the gRPC API's port, on the HTTP API's address, 0 for a free one (default: GRPC_PORT, else 50051)"
      )
    ),
    dataDir
  },
  ({ roles, host, httpPort, grpcPort, dataDir }) =>
    Effect.gen(function* () {
      const { ROLES } = yield* Effect.promise(() => import("../main.js"))
      const { start } = yield* Effect.promise(() => import("./Embedded.js"))
      // the SQL outbox runs by default only where OUTBOX_URL names its database
      const outboxOn = (process.env.OUTBOX_URL ?? "").trim() !== ""
      if (roles === "all") roles = ROLES.filter((role) => role !== "outbox" || outboxOn).join(",")
      const chosen = roles
        .split(",")
        .map((r) => r.trim())
        .filter((r) => r.length > 0)
      const unknown = chosen.filter((r) => !(ROLES as ReadonlyArray<string>).includes(r))
      if (unknown.length > 0)
        return yield* new UsageError({ message: `unknown roles: ${unknown.join(", ")}` })
      if (chosen.includes("outbox") && !outboxOn)
        return yield* new UsageError({
          message:
            "the outbox role needs OUTBOX_URL: postgres://… or mysql://… (see README, SQL outbox intake)"
        })
      return yield* start({
        roles: new Set(chosen as Array<(typeof ROLES)[number]>),
        host,
        httpPort,
        grpcPort,
        dataDir
      })
    })
).pipe(
  Command.withDescription(
    "run the gateway (embedded nats-server and simulator unless NATS_URL / PROVIDERS_CONFIG)"
  )
)

const sendCommand = Command.make(
  "send",
  {
    to: Options.text("to").pipe(
      Options.withDescription(
        "recipient, E.164 (+447911123456; the embedded simulator calls +120255501xx invalid)"
      )
    ),
    body: Options.text("body").pipe(Options.withDescription("the text of the message")),
    from: Options.optional(Options.text("from")).pipe(Options.withDescription("the sender name or number")),
    clientId: Options.text("client-id").pipe(
      Options.withDefault("cli"),
      Options.withDescription("the producing client's id (default: cli)")
    ),
    idempotencyKey: Options.optional(Options.text("idempotency-key")).pipe(
      Options.withDescription("the same key twice sends once (default: a fresh UUID)")
    ),
    providers: Options.text("provider").pipe(
      Options.repeated,
      Options.withDescription("use only these providers, in order")
    ),
    dataDir
  },
  (args) =>
    Effect.gen(function* () {
      const { url: natsUrl } = yield* requireGateway(args.dataDir, "NATS_URL")
      const [{ connect }, { natsAuthFor }, { Subjects }] = yield* Effect.promise(() =>
        Promise.all([
          import("@nats-io/transport-node"),
          import("../nats/NatsAuth.js"),
          import("../nats/Topology.js")
        ])
      )
      const command = {
        clientId: args.clientId,
        idempotencyKey: Option.getOrElse(args.idempotencyKey, () => crypto.randomUUID()),
        to: args.to,
        body: args.body,
        from: Option.getOrUndefined(args.from),
        providers: args.providers.length > 0 ? args.providers : undefined
      }
      // the embedded gateway's credentials (requireGateway read them), or the NATS_* settings
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

/** Checked in the command (not with `Args.withSchema`) so a typo is one sentence, not a schema's tree. */
const messageArg = Args.text({ name: "messageId" }).pipe(
  Args.withDescription("the id `send` printed (a UUID)")
)

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

type ApiClient = Effect.Effect.Success<ReturnType<typeof ClientModule.makeApiClient>>

/**
 * Runs `use` with the gateway's HTTP API (the admin key, or `GATEWAY_API_KEY`) and the id checked.
 * The HTTP client's layer wraps the whole use: its connection pool closes with it.
 */
const withApiClient = <A, E>(
  dir: string,
  id: string,
  use: (client: ApiClient, id: MessageId) => Effect.Effect<A, E>
) =>
  Effect.gen(function* () {
    if (!UUID.test(id))
      return yield* new UsageError({
        message: `"${id}" is not a message id: give the id \`send\` printed (a UUID such as 8a0c3e1f-…)`
      })
    const { url, dataDir } = yield* requireGateway(dir, "GATEWAY_URL")
    const [{ apiKeyFor, makeApiClient }, NodeHttpClient, { MessageId }] = yield* Effect.promise(() =>
      Promise.all([
        import("../http/Client.js"),
        import("@effect/platform-node/NodeHttpClient"),
        import("../domain/Ids.js")
      ])
    )
    return yield* makeApiClient(url, apiKeyFor(dataDir)).pipe(
      Effect.flatMap((client) => use(client, MessageId.make(id))),
      Effect.provide(NodeHttpClient.layerUndici)
    )
  })

const statusCommand = Command.make("status", { id: messageArg, dataDir }, ({ id, dataDir }) =>
  withApiClient(dataDir, id, (client, messageId) =>
    client.messages
      .getMessage({ path: { id: messageId }, urlParams: {} })
      .pipe(Effect.flatMap((status) => Console.log(JSON.stringify(status, null, 2))))
  )
).pipe(Command.withDescription("print a message's status"))

const historyCommand = Command.make("history", { id: messageArg, dataDir }, ({ id, dataDir }) =>
  withApiClient(dataDir, id, (client, messageId) =>
    Effect.gen(function* () {
      const { events } = yield* client.messages.getMessageEvents({ path: { id: messageId } })
      for (const event of events) {
        yield* Console.log(
          `${String(event.revision).padStart(3)}  ${event.recordedAt}  ${event.type.padEnd(14)} ${JSON.stringify(event.data)}`
        )
      }
    })
  )
).pipe(Command.withDescription("print every event of a message, in order"))

const rate = (name: string, what: string) =>
  Options.float(name).pipe(
    Options.withDefault(0),
    Options.withDescription(`share of submissions ${what}, 0..1 (default: 0)`)
  )

const simulatorCommand = Command.make(
  "simulator",
  {
    format: Options.choice("format", ["generic-http", "twilio", "vonage"]).pipe(
      Options.withDefault("generic-http" as const),
      Options.withDescription("the provider API it imitates (default: generic-http)")
    ),
    host: Options.text("host").pipe(
      Options.withDefault("127.0.0.1"),
      Options.withDescription("the address it listens on (default: 127.0.0.1)")
    ),
    port: Options.integer("port").pipe(
      Options.withDefault(9100),
      Options.withDescription("the port it listens on, 0 for a free one (default: 9100)")
    ),
    apiKey: Options.text("api-key").pipe(
      Options.withDefault(process.env.SIM_API_KEY ?? "sim-key"),
      Options.withDescription("the API key clients must present (default: SIM_API_KEY, else sim-key)")
    ),
    account: Options.optional(Options.text("account")).pipe(
      Options.withDescription("the Twilio account SID or Vonage api_key clients must present (default: any)")
    ),
    webhookSecret: Options.text("webhook-secret").pipe(
      Options.withDefault(process.env.SIM_WEBHOOK_SECRET ?? "sim-secret"),
      Options.withDescription(
        "the secret delivery reports are signed with (default: SIM_WEBHOOK_SECRET, else sim-secret)"
      )
    ),
    dlrUrl: Options.optional(Options.text("dlr-url")).pipe(
      Options.withDescription("where delivery reports are posted (default: the callback URL of each message)")
    ),
    dlrMinMs: Options.integer("dlr-min-ms").pipe(
      Options.withDefault(0),
      Options.withDescription("shortest wait before a delivery report, in ms (default: 0)")
    ),
    dlrMaxMs: Options.integer("dlr-max-ms").pipe(
      Options.withDefault(5),
      Options.withDescription("longest wait before a delivery report, in ms (default: 5)")
    ),
    latencyMs: Options.integer("latency-ms").pipe(
      Options.withDefault(0),
      Options.withDescription("delay before each answer, in ms (default: 0)")
    ),
    errorRate: rate("error-rate", "answered 503"),
    throttleRate: rate("throttle-rate", "answered 429 with Retry-After"),
    timeoutRate: rate("timeout-rate", "never answered"),
    resetRate: rate("reset-rate", "whose connection is reset"),
    failRate: rate("fail-rate", "reported undelivered"),
    duplicateRate: rate("duplicate-rate", "whose report is sent twice"),
    earlyRate: rate("early-rate", "whose report is sent before the submit answer"),
    loseRate: rate("lose-rate", "whose report is never sent"),
    dlrRetries: Options.integer("dlr-retries").pipe(
      Options.withDefault(5),
      Options.withDescription(
        "posts of a refused delivery report after the first (waits double from 50 ms, at most 5 s; default: 5)"
      )
    ),
    invalidPrefix: Options.text("invalid-prefix").pipe(
      Options.repeated,
      Options.withDescription(
        "numbers starting with this are refused as invalid_number; repeat for several (default: none)"
      )
    )
  },
  (args) =>
    Effect.gen(function* () {
      const Simulator = yield* Effect.promise(() => import("../providers/Simulator.js"))
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
          earlyRate: args.earlyRate,
          loseRate: args.loseRate,
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

const outboxInitCommand = Command.make(
  "init",
  {
    notify: Options.boolean("notify").pipe(
      Options.withDescription("PostgreSQL: also a trigger that wakes the outbox role at each insert")
    )
  },
  ({ notify }) =>
    Effect.gen(function* () {
      const { initFromEnv } = yield* Effect.promise(() => import("../outbox/Init.js"))
      const lines = yield* initFromEnv(process.env, notify).pipe(
        Effect.mapError((error) => new UsageError({ message: error.message }))
      )
      for (const line of lines) yield* Console.log(line)
    })
).pipe(
  Command.withDescription(
    "create the outbox table on OUTBOX_URL (OUTBOX_TABLE, default sms_outbox), or check OUTBOX_MAPPING's table"
  )
)

const outboxCommand = Command.make("outbox").pipe(
  Command.withSubcommands([outboxInitCommand]),
  Command.withDescription("the SQL outbox intake (OUTBOX_URL): outbox init [--notify]")
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
    calls,
    rebuildCommand,
    migrateCommand,
    clientsCommand,
    outboxCommand
  ])
)

const logLevel = LogLevel.fromLiteral((process.env.LOG_LEVEL as LogLevel.Literal | undefined) ?? "Info")

/** Errors whose message is already the sentence to show: ours, and the gateway's that say what to do. */
const isPlain = (error: unknown): error is { readonly message: string } => {
  if (typeof error !== "object" || error === null || !("_tag" in error)) return false
  const { _tag, message } = error as { _tag: unknown; message?: unknown; reason?: unknown }
  if (typeof message !== "string" || message === "") return false
  return (
    _tag === "UsageError" ||
    _tag === "MessageNotFound" ||
    _tag === "DataDirInUse" ||
    (_tag === "NatsServerError" && (error as { reason?: unknown }).reason === "StoreInUse")
  )
}

/** One line for anything else: its tag and message, never a stack (LOG_LEVEL=Debug logs the whole cause). */
const oneLine = (error: unknown): string => {
  if (typeof error === "object" && error !== null) {
    const { _tag, message } = error as { _tag?: unknown; message?: unknown }
    const text = typeof message === "string" && message !== "" ? message : undefined
    const tag = typeof _tag === "string" ? _tag : error instanceof Error ? error.name : undefined
    if (text !== undefined || tag !== undefined)
      return [tag, text].filter((part) => part !== undefined).join(": ")
  }
  return String(error)
}

/**
 * Every way a command can fail ends here: one plain sentence on stderr and exit code 1, nothing on
 * stdout (runMain would log the cause there as a JSON line with an escaped stack). @effect/cli has
 * printed its own parsing errors (a missing option, an unknown command) on stderr already.
 */
const reportFailure = (cause: Cause.Cause<unknown>) => {
  if (Cause.isInterruptedOnly(cause)) return Effect.failCause(cause)
  const error = Option.getOrElse(Cause.failureOption(cause), () =>
    Option.getOrUndefined(Cause.dieOption(cause))
  )
  const printed = ValidationError.isValidationError(error)
  return Effect.gen(function* () {
    if (!printed)
      yield* Console.error(
        isPlain(error)
          ? error.message
          : `sms-gateway: ${oneLine(error)} (LOG_LEVEL=Debug shows the details on stdout)`
      )
    if (!printed && !isPlain(error)) yield* Effect.logDebug("the command failed", cause)
    yield* failExit
  })
}

/** The gateway's logs: JSON lines (or logfmt), phone numbers masked; loaded once a command logs. */
const LoggerLive = Layer.unwrapEffect(
  Effect.promise(() => import("../observability/Logger.js")).pipe(Effect.map((m) => m.LoggerLive))
)

Command.run(cli, { name: "sms-gateway", version: "0.1.0" })(process.argv).pipe(
  Effect.catchAllCause(reportFailure),
  withTidyConsole,
  Logger.withMinimumLogLevel(logLevel),
  Effect.provide(Layer.mergeAll(NodeContext.layer, LoggerLive)),
  (program) => NodeRuntime.runMain(program, { disablePrettyLogger: true })
)
