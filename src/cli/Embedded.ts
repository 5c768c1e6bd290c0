/**
 * `start` on the embedded default: where no `NATS_URL` is given it runs its own nats-server under
 * the data folder, and where no `PROVIDERS_CONFIG` is given it runs the provider simulator as the
 * one provider `sim`. It writes `gateway.json` in the data folder so `send`/`status` find it.
 */
import { randomBytes } from "node:crypto"
import { mkdirSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { join, resolve } from "node:path"
import { Effect, Layer } from "effect"
import { gateway, type Role } from "../main.js"
import { STATE_FILE } from "./Connect.js"
import { startNatsServer } from "../nats/NatsServer.js"
import { decodeProvidersFile, loadProvidersFile } from "../providers/ProviderConfig.js"
import * as Simulator from "../providers/Simulator.js"

export interface StartOptions {
  readonly roles: ReadonlySet<Role>
  readonly host: string
  /** 0 picks a free port */
  readonly httpPort: number
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

/** Credentials for the in-process simulator, made up per run unless the environment sets them. */
const simulatorSecret = (variable: string) => {
  const value = process.env[variable] ?? randomBytes(24).toString("base64url")
  process.env[variable] = value
  return value
}

const embeddedProviders = Effect.gen(function* () {
  const apiKey = simulatorSecret("SIM_API_KEY")
  const webhookSecret = simulatorSecret("SIM_WEBHOOK_SECRET")
  const simulator = yield* Simulator.start({ apiKey, webhookSecret, dlr: { delayMs: { min: 50, max: 500 } } })
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

export const start = (options: StartOptions) =>
  Effect.gen(function* () {
    const dataDir = resolve(options.dataDir)
    mkdirSync(dataDir, { recursive: true })
    const natsUrl = process.env.NATS_URL ?? (yield* startNatsServer({ storeDir: join(dataDir, "nats") })).url
    const providers = process.env.PROVIDERS_CONFIG
      ? yield* loadProvidersFile(process.env.PROVIDERS_CONFIG)
      : yield* embeddedProviders
    const port = options.httpPort === 0 ? yield* freePort(options.host) : options.httpPort
    const httpUrl = `http://${options.host}:${port}`
    yield* Layer.build(
      gateway({
        roles: options.roles,
        natsUrl,
        providers,
        http: { host: options.host, port },
        dataDir,
        publicUrl: process.env.PUBLIC_URL ?? httpUrl
        // no span exporter is configured: spans would only cost CPU on every message
      }).pipe(Layer.provide(Layer.setTracerEnabled(false)))
    )
    const stateFile = join(dataDir, STATE_FILE)
    yield* Effect.acquireRelease(
      Effect.sync(() => writeFileSync(stateFile, JSON.stringify({ natsUrl, httpUrl, pid: process.pid }))),
      () => Effect.sync(() => rmSync(stateFile, { force: true }))
    )
    const lines = [
      "",
      "sms-gateway is running",
      `  NATS  ${natsUrl}`,
      options.roles.has("http") ? `  HTTP  ${httpUrl}  (API docs: ${httpUrl}/docs)` : "",
      `  roles ${[...options.roles].join(", ")}`,
      "",
      "Send a message (another terminal):",
      `  node bin/sms-gateway.mjs send --to +447911123456 --body "Hello from sms-gateway"`,
      "then follow it with the id it prints:",
      "  node bin/sms-gateway.mjs status <messageId>",
      "",
      "Ctrl-C stops everything."
    ]
    yield* Effect.sync(() =>
      console.log(lines.filter((l, i) => l !== "" || i === 0 || lines[i - 1] !== "").join("\n"))
    )
    return yield* Effect.never
  }).pipe(Effect.scoped)
