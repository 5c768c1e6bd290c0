/**
 * `start` on the embedded default: where no `NATS_URL` is given it runs its own nats-server under
 * the data folder, and where no `PROVIDERS_CONFIG` is given it runs the provider simulator as the
 * one provider `sim`. It writes `gateway.json` in the data folder so `send`/`status` find it.
 */
import { randomBytes } from "node:crypto"
import { existsSync, linkSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { join, resolve } from "node:path"
import { Data, Effect, Layer } from "effect"
import { ADMIN_KEY_FILE } from "../clients/Bootstrap.js"
import { gateway, type Role } from "../main.js"
import { STATE_FILE } from "./Connect.js"
import { UsageError } from "./Errors.js"
import { AUTH_FILE, ensureEmbeddedCredentials } from "../nats/NatsAuth.js"
import { isSmsGateway, startNatsServer } from "../nats/NatsServer.js"
import { decodeProvidersFile, loadProvidersFile } from "../providers/ProviderConfig.js"
import * as Simulator from "../providers/Simulator.js"

export interface StartOptions {
  readonly roles: ReadonlySet<Role>
  readonly host: string
  /** 0 picks a free port */
  readonly httpPort: number
  /** the gRPC API's, on the same host; 0 picks a free port */
  readonly grpcPort: number
  readonly dataDir: string
}

const freePort = (host: string) =>
  Effect.async<number, Error>((resume) => {
    const server = createServer()
    server.once("error", (error) => resume(Effect.fail(error)))
    server.listen(0, host, () => {
      const address = server.address()
      const port = typeof address === "object" && address ? address.port : 0
      server.close(() => resume(Effect.succeed(port)))
    })
  })

/**
 * Numbers the embedded simulator answers `invalid_number` for: +1 202 555 0100 to 0199, in the range
 * the North American numbering plan keeps for fiction (555-0100 to 555-0199, never assigned), so a
 * newcomer can watch a phone number being deactivated by sending to +12025550123, and no real number
 * is affected. (Not the UK's drama range +44 7700 900…: libphonenumber knows it is unassigned, so the
 * gateway refuses it at intake and no provider is ever asked.)
 */
export const EMBEDDED_INVALID_PREFIXES: ReadonlyArray<string> = ["+120255501"]

/** Says which port is taken and how to choose another, instead of the HTTP server's `ServeError`. */
const portTaken = (host: string, port: number) =>
  new UsageError({
    message:
      `the HTTP port ${port} on ${host} is taken by another program: stop it, or choose another port ` +
      `with --http-port <port> or HTTP_PORT=<port> (0 picks a free one)`
  })

const isAddressInUse = (error: unknown): boolean => {
  if (typeof error !== "object" || error === null) return false
  const { code, cause } = error as { code?: unknown; cause?: unknown }
  return code === "EADDRINUSE" || isAddressInUse(cause)
}

/**
 * Fails with `portTaken` when `host:port` cannot be listened on because something else does, before
 * the nats-server and the simulator are started for nothing. (The gateway's own listen is mapped the
 * same way, for a program that takes the port in between.)
 */
const checkPortFree = (host: string, port: number) =>
  Effect.async<void, UsageError>((resume) => {
    const server = createServer()
    server.once("error", (error) =>
      resume(isAddressInUse(error) ? Effect.fail(portTaken(host, port)) : Effect.void)
    )
    server.listen(port, host, () => server.close(() => resume(Effect.void)))
  })

/** Credentials for the in-process simulator, made up per run unless the environment sets them. */
const simulatorSecret = (variable: string) => {
  const value = process.env[variable] ?? randomBytes(24).toString("base64url")
  process.env[variable] = value
  return value
}

const embeddedProviders = Effect.gen(function* () {
  const apiKey = simulatorSecret("SIM_API_KEY")
  const webhookSecret = simulatorSecret("SIM_WEBHOOK_SECRET")
  const simulator = yield* Simulator.start({
    apiKey,
    webhookSecret,
    invalidPrefixes: EMBEDDED_INVALID_PREFIXES,
    dlr: { delayMs: { min: 50, max: 500 } }
  })
  yield* Effect.logInfo(`provider simulator at ${simulator.url}`)
  return yield* decodeProvidersFile(
    {
      providers: [
        {
          id: "sim",
          type: "generic-http",
          baseUrl: simulator.url,
          apiKeyEnv: "SIM_API_KEY",
          webhookSecretEnv: "SIM_WEBHOOK_SECRET"
        }
      ]
    },
    "the embedded providers"
  )
})

/** A live gateway already runs its embedded nats-server on this data folder. */
export class DataDirInUse extends Data.TaggedError("DataDirInUse")<{
  readonly dataDir: string
  readonly pid: number
  readonly message: string
}> {}

/** Held, with the pid in it, for as long as a gateway runs its embedded nats-server on the folder. */
export const LOCK_FILE = "gateway.lock"

const pidIn = (file: string, read: (text: string) => unknown): number | undefined => {
  try {
    const pid = Number(read(readFileSync(file, "utf8")))
    return Number.isInteger(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

/**
 * The live gateway, other than this one, that the lock file or `gateway.json` names (the latter
 * covers a gateway of a version without the lock). A dead pid, or one reused by anything that is not
 * sms-gateway, is stale. This process's own pid is stale too: in a container the gateway is pid 1 on
 * every restart.
 */
const liveOwner = (dataDir: string): number | undefined =>
  [
    pidIn(join(dataDir, LOCK_FILE), (text) => text.trim()),
    pidIn(join(dataDir, STATE_FILE), (text) => (JSON.parse(text) as { pid?: unknown }).pid)
  ].find((pid) => pid !== undefined && pid !== process.pid && isSmsGateway(pid))

const inUse = (dataDir: string, pid: number) =>
  new DataDirInUse({
    dataDir,
    pid,
    message:
      `the data folder ${dataDir} is in use by the sms-gateway with pid ${pid}: stop it first ` +
      `(Ctrl-C in its terminal, or kill ${pid}), or start this one with another --data-dir`
  })

/** `link`, or an exclusive create (`wx`) where the filesystem has no hard links; EEXIST when held. */
const takeLock = (mine: string, lock: string) => {
  try {
    linkSync(mine, lock)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP" && code !== "ENOSYS") throw error
    writeFileSync(lock, String(process.pid), { flag: "wx" })
  }
}

/**
 * Takes the data folder's lock for the scope, or fails with `DataDirInUse`. The lock appears whole
 * and at once (a hard link of a file already holding the pid: `link` fails when the name exists), so
 * two starts racing cannot both win and neither reads a half-written pid. A stale lock is renamed
 * aside before it is replaced, and what was moved is read again: a live gateway's lock (a racing
 * start took it in between) is put back.
 */
const lockDataDir = (dataDir: string) =>
  Effect.acquireRelease(
    Effect.gen(function* () {
      const lock = join(dataDir, LOCK_FILE)
      const mine = `${lock}.${process.pid}`
      for (let attempt = 0; attempt < 5; attempt++) {
        const owner = liveOwner(dataDir)
        if (owner !== undefined) return yield* inUse(dataDir, owner)
        writeFileSync(mine, String(process.pid))
        try {
          takeLock(mine, lock)
          return lock
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "EEXIST") return yield* Effect.die(error)
        } finally {
          rmSync(mine, { force: true })
        }
        // the lock exists, and no live gateway held it a moment ago: move it aside, check, drop it
        const aside = `${lock}.stale.${process.pid}`
        try {
          renameSync(lock, aside)
        } catch {
          continue // gone already
        }
        const moved = pidIn(aside, (text) => text.trim())
        const live = moved !== undefined && moved !== process.pid && isSmsGateway(moved)
        if (live) {
          try {
            linkSync(aside, lock) // a racing start took it since: put it back, the next turn refuses
          } catch {}
        } else yield* Effect.logWarning(`replacing the stale lock of pid ${moved ?? "?"} in ${dataDir}`)
        rmSync(aside, { force: true })
      }
      const owner = liveOwner(dataDir) ?? pidIn(lock, (text) => text.trim()) ?? -1
      return yield* inUse(dataDir, owner)
    }),
    (lock) =>
      Effect.sync(() => {
        if (pidIn(lock, (text) => text.trim()) === process.pid) rmSync(lock, { force: true })
      })
  )

/** `START_RETRY_SECONDS`: how long a start waits out an election or a restarting server (0: not at all). */
const startRetrySeconds = Effect.suspend(() => {
  const text = process.env.START_RETRY_SECONDS
  if (text === undefined || text === "") return Effect.succeed(60)
  const seconds = Number(text)
  return Number.isFinite(seconds) && seconds >= 0 && seconds <= 3600
    ? Effect.succeed(seconds)
    : Effect.fail(
        new UsageError({
          message: `START_RETRY_SECONDS must be a number of seconds from 0 to 3600, not "${text}"`
        })
      )
})

export const start = (options: StartOptions) =>
  Effect.gen(function* () {
    const dataDir = resolve(options.dataDir)
    mkdirSync(dataDir, { recursive: true })
    const servesHttp = options.roles.has("http")
    if (servesHttp && options.httpPort !== 0) yield* checkPortFree(options.host, options.httpPort)
    // With NATS_URL the folder only holds gateway.json, and several processes scaling roles may share
    // it; the lock guards the embedded server's store, which one gateway at a time may open.
    if (!process.env.NATS_URL) yield* lockDataDir(dataDir)
    // The embedded server accepts only the user generated into <data-dir>/nats.auth (mode 0600), so
    // no other local user can publish commands; this process and the CLI read them from there. With
    // NATS_URL nothing is generated: the NATS_* settings of the environment apply.
    const natsUrl =
      process.env.NATS_URL ??
      (yield* startNatsServer({
        storeDir: join(dataDir, "nats"),
        auth: yield* ensureEmbeddedCredentials(dataDir)
      })).url
    const providers = process.env.PROVIDERS_CONFIG
      ? yield* loadProvidersFile(process.env.PROVIDERS_CONFIG)
      : yield* embeddedProviders
    const port = options.httpPort === 0 ? yield* freePort(options.host) : options.httpPort
    const httpUrl = `http://${options.host}:${port}`
    const grpcPort = servesHttp && options.grpcPort === 0 ? yield* freePort(options.host) : options.grpcPort
    yield* Layer.build(
      gateway({
        roles: options.roles,
        natsUrl,
        providers,
        http: { host: options.host, port },
        grpc: { host: options.host, port: grpcPort },
        dataDir,
        startRetrySeconds: yield* startRetrySeconds,
        publicUrl: process.env.PUBLIC_URL ?? httpUrl
        // no span exporter is configured: spans would only cost CPU on every message
      }).pipe(Layer.provide(Layer.setTracerEnabled(false)))
    ).pipe(Effect.catchIf(isAddressInUse, () => Effect.fail(portTaken(options.host, port))))
    const stateFile = join(dataDir, STATE_FILE)
    const adminKeyFile = join(dataDir, ADMIN_KEY_FILE)
    yield* Effect.acquireRelease(
      Effect.sync(() => writeFileSync(stateFile, JSON.stringify({ natsUrl, httpUrl, pid: process.pid }))),
      () => Effect.sync(() => rmSync(stateFile, { force: true }))
    )
    const lines = [
      "",
      "sms-gateway is running",
      process.env.NATS_URL
        ? `  NATS  ${natsUrl}`
        : `  NATS  ${natsUrl}  (user and password in ${join(dataDir, AUTH_FILE)})`,
      servesHttp ? `  HTTP  ${httpUrl}  (API docs: ${httpUrl}/docs)` : "",
      servesHttp ? `  gRPC  ${options.host}:${grpcPort}  (sms.v1.SmsGateway, health, reflection)` : "",
      // the operator console, unless CONSOLE=off (src/console/Layer.ts)
      servesHttp && process.env.CONSOLE !== "off"
        ? `  console  ${httpUrl}/console  (sign in with an admin key)`
        : "",
      // where the key is, on every start: it is printed only once, and only to a terminal
      servesHttp && existsSync(adminKeyFile) ? `  admin API key in ${adminKeyFile}` : "",
      `  roles ${[...options.roles].join(", ")}`,
      "",
      "Send a message (another terminal):",
      `  node bin/sms-gateway.mjs send --to +447911123456 --body "Hello from sms-gateway"`,
      "then follow it with the id it prints:",
      "  node bin/sms-gateway.mjs status <messageId>",
      ...(process.env.PROVIDERS_CONFIG
        ? []
        : [
            `The simulator calls numbers starting ${EMBEDDED_INVALID_PREFIXES.join(", ")} invalid (try +12025550123).`
          ]),
      "",
      "Ctrl-C stops everything."
    ]
    yield* Effect.sync(() =>
      console.log(lines.filter((l, i) => l !== "" || i === 0 || lines[i - 1] !== "").join("\n"))
    )
    return yield* Effect.never
  }).pipe(Effect.scoped)
