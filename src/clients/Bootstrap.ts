/**
 * First start: when no API key exists yet, one `admin` key is issued and written to
 * `<dataDir>/admin.key` (mode 0600), so a fresh gateway can be used (and more clients added) at once.
 * The key itself is printed once, and only when standard output is a terminal: `npm start > gateway.log`
 * must not put a secret in a log file, so then only the file's path is printed.
 * Two processes starting together issue one key between them: the first to create the KV marker
 * `bootstrap` does it.
 */
import { chmodSync, mkdirSync, writeFileSync } from "node:fs"
import { join, resolve } from "node:path"
import { StorageType } from "@nats-io/jetstream"
import { Kvm } from "@nats-io/kv"
import { Clock, Effect, Layer, Option } from "effect"
import { Nats, NatsError } from "../nats/Nats.js"
import { Clients, CLIENTS_BUCKET } from "./Clients.js"
import { applyClientsFile, loadClientsFile } from "./ClientsFile.js"

export const ADMIN_KEY_FILE = "admin.key"
export const BOOTSTRAP_CLIENT_ID = "admin"

export const bootstrapAdminKey = (dataDir: string) =>
  Effect.gen(function* () {
    const clients = yield* Clients
    if (!(yield* clients.isEmpty)) return Option.none<string>()
    const { js, replicas } = yield* Nats
    const now = yield* Clock.currentTimeMillis
    const won = yield* Effect.tryPromise({
      try: async () => {
        const kv = await new Kvm(js).create(CLIENTS_BUCKET, {
          history: 1,
          storage: StorageType.File,
          replicas
        })
        await kv.create("bootstrap", new Date(now).toISOString())
      },
      catch: (cause) => new NatsError({ reason: "RequestFailed", message: "bootstrap marker exists", cause })
    }).pipe(Effect.option)
    if (Option.isNone(won)) return Option.none<string>()
    const { apiKey } = yield* clients.issueKey({ clientId: BOOTSTRAP_CLIENT_ID, scope: "admin" })
    const file = join(resolve(dataDir), ADMIN_KEY_FILE)
    yield* Effect.sync(() => {
      mkdirSync(resolve(dataDir), { recursive: true })
      writeFileSync(file, `${apiKey}\n`, { mode: 0o600 })
      chmodSync(file, 0o600)
      // shown once to the person at the terminal; anything else (a file, a pipe, a log collector)
      // gets only the path of the 0600 file
      const toTerminal = process.stdout.isTTY === true
      console.log(
        [
          "",
          toTerminal
            ? "No API key existed: created an admin key (shown once, also in the file below)."
            : "No API key existed: created an admin key, in the file below (not printed: the output is not a terminal).",
          ...(toTerminal ? [`  key   ${apiKey}`] : []),
          `  file  ${file}  (mode 0600)`,
          "Use it as the X-API-Key header; add clients with `sms-gateway clients add`.",
          ""
        ].join("\n")
      )
    })
    return Option.some(file)
  })

/**
 * At the HTTP role's start: applies `CLIENTS_FILE` when set (see `ClientsFile`), then, with a data
 * folder, issues the first admin key if no key exists.
 */
export const layer = (dataDir: string | undefined) =>
  Layer.effectDiscard(
    Effect.gen(function* () {
      const path = process.env.CLIENTS_FILE
      if (path !== undefined && path !== "") {
        const applied = yield* applyClientsFile(yield* loadClientsFile(path))
        yield* Effect.logInfo(`clients file ${path} applied`).pipe(
          Effect.annotateLogs({ entries: applied.length })
        )
      }
      if (dataDir !== undefined) yield* bootstrapAdminKey(dataDir)
    })
  )
