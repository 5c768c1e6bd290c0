/**
 * `sms-gateway clients add | list | revoke | quota | apply | new-key`: the client registry (KV `sms_clients`),
 * straight over NATS, so it works before any HTTP key exists. The NATS URL comes from `--nats-url`,
 * then `NATS_URL`, then the running embedded gateway's `<data-dir>/gateway.json`.
 */
import { Args, Command, Options } from "@effect/cli"
import { Console, Effect, Layer, Option } from "effect"
import { generateApiKey } from "../clients/ApiKeys.js"
import { Clients, type InvalidClient, type KeyView, type Scope } from "../clients/Clients.js"
import { applyClientsFile, type ClientsFileError, loadClientsFile } from "../clients/ClientsFile.js"
import { Nats, NatsError } from "../nats/Nats.js"
import { dataDirOption, runningGateway } from "./Connect.js"

const natsUrlOption = Options.text("nats-url").pipe(
  Options.optional,
  Options.withDescription("the gateway's NATS server (default: NATS_URL, then the running gateway's)")
)
const natsUrlOf = (flag: Option.Option<string>, dataDir: string) =>
  Option.getOrElse(flag, () => runningGateway(dataDir).natsUrl ?? "nats://127.0.0.1:4222")

/** One connection attempt (the gateway's own layer waits for the server forever, right for a daemon only). */
const connectOnce = (url: string) =>
  Nats.connect(url, { name: "sms-gateway-cli", timeout: 5_000, maxReconnectAttempts: 0 })

/** Runs `program` against the registry; mistakes and an unreachable NATS are one line on stderr, exit code 1. */
const withRegistry =
  (flag: Option.Option<string>, dataDir: string) =>
  <A, R>(program: Effect.Effect<A, NatsError | InvalidClient | ClientsFileError, R>) => {
    const url = natsUrlOf(flag, dataDir)
    return program.pipe(
      Effect.provide(Clients.layer.pipe(Layer.provide(connectOnce(url)))),
      Effect.asVoid,
      Effect.catchAll((error) =>
        Console.error(error._tag === "NatsError" ? `${error.message} (NATS at ${url})` : error.message).pipe(
          Effect.zipRight(
            Effect.sync(() => {
              process.exitCode = 1
            })
          )
        )
      )
    )
  }

const row = (key: KeyView) =>
  [
    key.keyId,
    key.clientId.padEnd(16),
    key.scope.padEnd(7),
    `quota=${key.dailyQuota ?? "unlimited"}`.padEnd(16),
    `created=${key.createdAt}`,
    key.revokedAt ? `REVOKED ${key.revokedAt}` : ""
  ]
    .join("  ")
    .trimEnd()

const scopeOption = Options.choice("scope", ["client", "auditor", "admin"]).pipe(
  Options.withDefault("client" as const),
  Options.withDescription(
    "client: sends and reads its own messages; auditor: reads all; admin: also manages clients"
  )
)

const add = Command.make(
  "add",
  {
    clientId: Args.text({ name: "clientId" }),
    scope: scopeOption,
    dailyQuota: Options.integer("daily-quota").pipe(
      Options.optional,
      Options.withDescription("messages per UTC day (default: keep the client's; none: unlimited)")
    ),
    natsUrl: natsUrlOption,
    dataDir: dataDirOption
  },
  ({ clientId, scope, dailyQuota, natsUrl, dataDir }) =>
    Effect.gen(function* () {
      const clients = yield* Clients
      const { apiKey, key } = yield* clients.issueKey({
        clientId,
        scope: scope as Scope,
        dailyQuota: Option.getOrUndefined(dailyQuota)
      })
      yield* Console.log(row(key))
      yield* Console.log(`API key (shown once, store it now): ${apiKey}`)
    }).pipe(withRegistry(natsUrl, dataDir))
).pipe(
  Command.withDescription("issue a key for a client (created if new), optionally setting its daily quota")
)

const list = Command.make(
  "list",
  { natsUrl: natsUrlOption, dataDir: dataDirOption },
  ({ natsUrl, dataDir }) =>
    Effect.gen(function* () {
      const keys = yield* (yield* Clients).list
      if (keys.length === 0) return yield* Console.log("no keys")
      for (const key of keys) yield* Console.log(row(key))
    }).pipe(withRegistry(natsUrl, dataDir))
).pipe(Command.withDescription("every key: id, client, scope, quota, revoked or not (never the key itself)"))

const revoke = Command.make(
  "revoke",
  { keyId: Args.text({ name: "keyId" }), natsUrl: natsUrlOption, dataDir: dataDirOption },
  ({ keyId, natsUrl, dataDir }) =>
    Effect.gen(function* () {
      const found = yield* (yield* Clients).revoke(keyId)
      if (!found) {
        process.exitCode = 1
        return yield* Console.error(`no key ${keyId}`)
      }
      yield* Console.log(`revoked ${keyId} (every gateway refuses it within 5 s)`)
    }).pipe(withRegistry(natsUrl, dataDir))
).pipe(Command.withDescription("revoke a key by its id"))

const quota = Command.make(
  "quota",
  {
    clientId: Args.text({ name: "clientId" }),
    dailyQuota: Args.text({ name: "dailyQuota|none" }),
    natsUrl: natsUrlOption,
    dataDir: dataDirOption
  },
  ({ clientId, dailyQuota, natsUrl, dataDir }) =>
    Effect.gen(function* () {
      const clients = yield* Clients
      const limit = dailyQuota === "none" ? null : Number(dailyQuota)
      const stored = yield* clients.setQuota(clientId, limit)
      const used = yield* clients.usage(clientId)
      yield* Console.log(`${clientId}: quota ${stored.dailyQuota ?? "unlimited"}, ${used} used today (UTC)`)
    }).pipe(withRegistry(natsUrl, dataDir))
).pipe(Command.withDescription("set (a number) or remove (none) a client's daily quota"))

const apply = Command.make(
  "apply",
  { file: Args.file({ name: "clientsFile", exists: "yes" }), natsUrl: natsUrlOption, dataDir: dataDirOption },
  ({ file, natsUrl, dataDir }) =>
    Effect.gen(function* () {
      const applied = yield* applyClientsFile(yield* loadClientsFile(file))
      for (const line of applied) yield* Console.log(line)
    }).pipe(withRegistry(natsUrl, dataDir))
).pipe(Command.withDescription("apply a clients file (keys from the environment variables it names)"))

const newKey = Command.make("new-key", {}, () => Console.log(generateApiKey().apiKey)).pipe(
  Command.withDescription("print a fresh key without registering it (for a clients file's secret store)")
)

export const clientsCommand = Command.make("clients").pipe(
  Command.withSubcommands([add, list, revoke, quota, apply, newKey]),
  Command.withDescription("API clients, keys, scopes and daily quotas")
)
