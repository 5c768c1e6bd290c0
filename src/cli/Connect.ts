/** How CLI commands reach a running gateway's NATS server and stores. */
import { existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { Options } from "@effect/cli"
import { Layer } from "effect"
import { eventStoreLayer } from "../main.js"
import { Nats } from "../nats/Nats.js"
import { readEmbeddedCredentials, rememberEmbeddedCredentials } from "../nats/NatsAuth.js"
import { ReadModels } from "../projections/ReadModels.js"

export const STATE_FILE = "gateway.json"

/**
 * A running gateway's addresses: environment first, then the embedded gateway's state file. The
 * embedded server's URL comes with its credentials (`<data-dir>/nats.auth`), remembered so any
 * connection this process makes to that URL uses them; with `NATS_URL`, the `NATS_*` settings do.
 */
export const runningGateway = (dataDir: string) => {
  const file = join(dataDir, STATE_FILE)
  const state = existsSync(file)
    ? (JSON.parse(readFileSync(file, "utf8")) as { natsUrl?: string; httpUrl?: string })
    : {}
  if (process.env.NATS_URL === undefined && state.natsUrl !== undefined) {
    const credentials = readEmbeddedCredentials(dataDir)
    if (credentials !== undefined) rememberEmbeddedCredentials(state.natsUrl, credentials)
  }
  return { natsUrl: process.env.NATS_URL ?? state.natsUrl, httpUrl: process.env.GATEWAY_URL ?? state.httpUrl }
}

export const dataDirOption = Options.text("data-dir").pipe(
  Options.withDefault(process.env.DATA_DIR ?? "./data"),
  Options.withDescription("the embedded gateway's data folder (its gateway.json names the NATS URL)")
)

export const natsUrlOption = Options.text("nats-url").pipe(
  Options.withDefault(runningGateway(process.env.DATA_DIR ?? "./data").natsUrl ?? "nats://127.0.0.1:4222"),
  Options.withDescription("the gateway's NATS server (default: NATS_URL, or the running embedded gateway)")
)

/** The event store (as `EVENT_STORE` selects) and the read models, over a fresh connection. */
export const connected = (natsUrl: string) =>
  Layer.mergeAll(eventStoreLayer(), ReadModels.layerAsDeployed).pipe(
    Layer.provideMerge(Nats.layer(natsUrl, "sms-gateway-cli"))
  )
