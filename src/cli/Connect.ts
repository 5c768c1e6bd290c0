/** How CLI commands reach a running gateway's NATS server and stores. */
import { existsSync, readFileSync } from "node:fs"
import { join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { Options } from "@effect/cli"
import { Effect, Layer } from "effect"
import { readEmbeddedCredentials, rememberEmbeddedCredentials } from "../nats/NatsAuth.js"
import { UsageError } from "./Errors.js"

export const STATE_FILE = "gateway.json"

/** What `--data-dir` defaults to when neither it nor `DATA_DIR` is given. */
export const DEFAULT_DATA_DIR = "./data"

/**
 * The project's own data folder (`<package>/data`, where `npm start` keeps it), tried after the
 * current folder's when neither `--data-dir` nor `DATA_DIR` is given: a newcomer who runs
 * `node ~/sms-gateway/bin/sms-gateway.mjs status …` from another folder still finds the gateway.
 * (This file is `src/cli/` or `dist/cli/`: the package is two levels up either way.)
 */
const PACKAGE_DATA_DIR = fileURLToPath(new URL("../../data", import.meta.url))

/** The folder whose `gateway.json` names the running gateway: `dataDir`, or the fallback above. */
export const gatewayFolder = (dataDir: string): string => {
  const given = resolve(dataDir)
  if (existsSync(join(given, STATE_FILE))) return given
  const isDefault = dataDir === DEFAULT_DATA_DIR && process.env.DATA_DIR === undefined
  return isDefault && existsSync(join(PACKAGE_DATA_DIR, STATE_FILE)) ? PACKAGE_DATA_DIR : given
}

/**
 * A running gateway's addresses: environment first, then the embedded gateway's state file. The
 * embedded server's URL comes with its credentials (`<data-dir>/nats.auth`), remembered so any
 * connection this process makes to that URL uses them; with `NATS_URL`, the `NATS_*` settings do.
 */
export const runningGateway = (dataDir: string) => {
  dataDir = gatewayFolder(dataDir)
  const file = join(dataDir, STATE_FILE)
  const state = existsSync(file)
    ? (JSON.parse(readFileSync(file, "utf8")) as { natsUrl?: string; httpUrl?: string })
    : {}
  if (process.env.NATS_URL === undefined && state.natsUrl !== undefined) {
    const credentials = readEmbeddedCredentials(dataDir)
    if (credentials !== undefined) rememberEmbeddedCredentials(state.natsUrl, credentials)
  }
  return {
    dataDir,
    natsUrl: process.env.NATS_URL ?? state.natsUrl,
    httpUrl: process.env.GATEWAY_URL ?? state.httpUrl
  }
}

/** The running gateway's address `variable` names, or a sentence saying where we looked and what to do. */
export const requireGateway = (dataDir: string, variable: "NATS_URL" | "GATEWAY_URL") => {
  const found = runningGateway(dataDir)
  const url = variable === "NATS_URL" ? found.natsUrl : found.httpUrl
  return url !== undefined
    ? Effect.succeed({ url, dataDir: found.dataDir })
    : Effect.fail(
        new UsageError({
          message:
            `no running gateway found: no ${STATE_FILE} in ${found.dataDir}. Start one (npm start), ` +
            `or point to its data folder with --data-dir <folder> or DATA_DIR=<folder>, or set ${variable}`
        })
      )
}

export const dataDirOption = Options.text("data-dir").pipe(
  Options.withDefault(process.env.DATA_DIR ?? DEFAULT_DATA_DIR),
  Options.withDescription("the embedded gateway's data folder (its gateway.json names the NATS URL)")
)

export const natsUrlOption = Options.text("nats-url").pipe(
  Options.withDefault(
    runningGateway(process.env.DATA_DIR ?? DEFAULT_DATA_DIR).natsUrl ?? "nats://127.0.0.1:4222"
  ),
  Options.withDescription("the gateway's NATS server (default: NATS_URL, or the running embedded gateway)")
)

/**
 * The event store (as `EVENT_STORE` selects) and the read models, over a fresh connection. Loaded
 * when a command uses it: the gateway's modules cost most of a second to load, which `--help`,
 * `send` and `status` need not pay.
 */
export const connected = (natsUrl: string) =>
  Layer.unwrapEffect(
    Effect.promise(async () => {
      const [{ eventStoreLayer }, { Nats }, { ReadModels }] = await Promise.all([
        import("../main.js"),
        import("../nats/Nats.js"),
        import("../projections/ReadModels.js")
      ])
      // one attempt, 5 s at most: a command answers, it does not wait for a server like the daemon
      return Layer.mergeAll(eventStoreLayer(), ReadModels.layerAsDeployed).pipe(
        Layer.provideMerge(
          Nats.connect(natsUrl, { name: "sms-gateway-cli", timeout: 5_000, maxReconnectAttempts: 0 })
        )
      )
    })
  )
