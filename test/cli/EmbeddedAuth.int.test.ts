import { readFileSync, statSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "@effect/vitest"
import { connect } from "@nats-io/transport-node"
import { Effect } from "effect"
import { freePort } from "../support/gateway.js"
import { spawnProcess, tempFolder } from "../support/processes.js"

const root = fileURLToPath(new URL("../../", import.meta.url))

/** The environment of a user who set nothing: the embedded default, and no NATS_* settings. */
const plainEnv = () => {
  const env = { ...process.env }
  for (const name of Object.keys(env))
    if (name.startsWith("NATS_") && name !== "NATS_SERVER_BIN") delete env[name]
  delete env.PROVIDERS_CONFIG
  delete env.GATEWAY_URL
  delete env.DATA_DIR
  return env
}

/** A process of the CLI, stopped with the scope (SIGTERM, then SIGKILL after 10 s). */
const cli = (args: ReadonlyArray<string>) =>
  spawnProcess(process.execPath, ["bin/sms-gateway.mjs", ...args], { cwd: root, env: plainEnv() })

/** A temporary data folder; anything still naming it at the end is SIGKILLed, then it is removed. */
const dataFolder = tempFolder("sms-gw-embauth-")

describe("start: the embedded nats-server's generated credentials", () => {
  it.scopedLive(
    "start generates them (0600), its server refuses others, send and clients list use them, nothing prints them",
    () =>
      Effect.gen(function* () {
        const dataDir = yield* dataFolder
        const port = yield* freePort
        const gateway = yield* cli(["start", "--http-port", String(port), "--data-dir", dataDir])
        yield* gateway.waitFor("sms-gateway is running", "40 seconds")

        const authFile = join(dataDir, "nats.auth")
        expect(statSync(authFile).mode & 0o777).toBe(0o600)
        expect(statSync(join(dataDir, "nats", "nats-server.conf")).mode & 0o777).toBe(0o600)
        const { password } = JSON.parse(readFileSync(authFile, "utf8")) as { password: string }
        expect(gateway.output()).not.toContain(password)
        expect(gateway.output()).toContain(authFile)
        const natsUrl = (
          JSON.parse(readFileSync(join(dataDir, "gateway.json"), "utf8")) as { natsUrl: string }
        ).natsUrl
        // the server's command line (what `ps` shows every local user) holds no secret
        const serverPid = Number(readFileSync(join(dataDir, "nats", "nats-server.pid"), "utf8").trim())
        expect(readFileSync(`/proc/${serverPid}/cmdline`, "utf8")).not.toContain(password)

        // a local process without the credentials cannot publish commands
        const anonymous = yield* Effect.flip(
          Effect.tryPromise(() => connect({ servers: natsUrl, maxReconnectAttempts: 0, timeout: 5_000 }))
        )
        expect(String(anonymous.error)).toMatch(/Authorization Violation/i)

        // the CLI reads them from the data folder
        const send = yield* cli(["send", "--to", "+447911123456", "--body", "hello", "--data-dir", dataDir])
        expect(yield* send.exited("30 seconds"), send.output()).toBe(0)
        expect(send.output()).toMatch(/"messageId":"[0-9a-f-]{36}"/)
        expect(send.output()).not.toContain(password)

        const list = yield* cli(["clients", "list", "--data-dir", dataDir])
        expect(yield* list.exited("30 seconds"), list.output()).toBe(0)
        expect(list.output()).not.toContain(password)
      }),
    90_000
  )
})
