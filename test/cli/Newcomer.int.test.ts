import { readFileSync, statSync } from "node:fs"
import { createServer, type Server } from "node:net"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { freePort, stopProcess } from "../support/gateway.js"
import { spawnProcess, tempFolder } from "../support/processes.js"

const root = fileURLToPath(new URL("../../", import.meta.url))
const bin = join(root, "bin/sms-gateway.mjs")

/** The environment of a user who set nothing: the embedded default, and no NATS_* settings. */
const plainEnv = (extra: Record<string, string> = {}) => {
  const env: Record<string, string | undefined> = { ...process.env }
  for (const name of Object.keys(env))
    if (name.startsWith("NATS_") && name !== "NATS_SERVER_BIN") delete env[name]
  for (const name of [
    "PROVIDERS_CONFIG",
    "GATEWAY_URL",
    "GATEWAY_API_KEY",
    "DATA_DIR",
    "HTTP_PORT",
    "NO_COLOR"
  ])
    delete env[name]
  return { ...env, ...extra }
}

/** A process of the CLI, stdout and stderr apart, stopped with the scope (SIGTERM, then SIGKILL). */
const cli = (args: ReadonlyArray<string>, options: { cwd?: string; env?: Record<string, string> } = {}) =>
  spawnProcess(process.execPath, [bin, ...args], { cwd: options.cwd ?? root, env: plainEnv(options.env) })

/** Runs the CLI to its end: exit code, stdout, stderr. */
const run = (args: ReadonlyArray<string>, options: { cwd?: string; env?: Record<string, string> } = {}) =>
  Effect.scoped(
    Effect.gen(function* () {
      const process = yield* cli(args, options)
      const code = yield* process.exited()
      return { code, stdout: process.stdout(), stderr: process.stderr(), output: process.output() }
    })
  )

/** One plain sentence on stderr, exit code 1, nothing on stdout (no JSON log line, no stack). */
const expectPlainFailure = (result: {
  code: number | string
  stdout: string
  stderr: string
  output: string
}) => {
  expect(result.code, result.output).toBe(1)
  expect(result.stdout, result.output).toBe("")
  const lines = result.stderr.trim().split("\n")
  expect(lines.length, result.output).toBe(1)
  expect(result.stderr, result.output).not.toMatch(/^\s*\{|"level"|\n\s+at /m)
  expect(result.stderr, result.output).not.toContain("\u001b[") // no colour codes into a pipe
  return lines[0] ?? ""
}

describe("CLI mistakes: one sentence on stderr, exit code 1", () => {
  it.scopedLive(
    "a missing option, a mistyped command, a malformed id, no running gateway",
    () =>
      Effect.gen(function* () {
        const missing = yield* run(["send", "--to", "+447911123456"])
        expect(expectPlainFailure(missing)).toContain("--body")

        const typo = yield* run(["sned"])
        expect(expectPlainFailure(typo)).toMatch(/subcommand.*send/i)

        const malformed = yield* run(["status", "nope"])
        expect(expectPlainFailure(malformed)).toMatch(/"nope" is not a message id/)

        // from another folder, with a data folder that holds no gateway: the error names it and the way out
        const elsewhere = yield* tempFolder("sms-gw-elsewhere-")
        const none = yield* run(["status", "00000000-0000-4000-8000-000000000000", "--data-dir", elsewhere], {
          cwd: elsewhere
        })
        const sentence = expectPlainFailure(none)
        expect(sentence).toContain(`no running gateway found: no gateway.json in ${elsewhere}`)
        expect(sentence).toContain("--data-dir")
        expect(sentence).toContain("DATA_DIR")
        const viaEnv = yield* run(["status", "00000000-0000-4000-8000-000000000000"], {
          cwd: elsewhere,
          env: { DATA_DIR: join(elsewhere, "other") }
        })
        expect(expectPlainFailure(viaEnv)).toContain(join(elsewhere, "other"))

        // a NATS server that is not there: one sentence naming it, in seconds, not a wait for ever
        const port = yield* freePort
        const unreachable = yield* run(["dead-letters", "list", "--nats-url", `nats://127.0.0.1:${port}`])
        expect(expectPlainFailure(unreachable)).toContain(`nats://127.0.0.1:${port}`)
      }),
    60_000
  )

  it.scopedLive(
    "--help has no colour codes in a pipe and no padded lines",
    () =>
      Effect.gen(function* () {
        const help = yield* run(["--help"])
        expect(help.code, help.output).toBe(0)
        expect(help.stdout).not.toContain("\u001b[")
        const widest = Math.max(...help.stdout.split("\n").map((line) => line.length))
        expect(widest, help.stdout).toBeLessThanOrEqual(120)
        const simulator = yield* run(["simulator", "--help"])
        expect(simulator.stdout).not.toContain("A user-defined piece of text.")
        expect(simulator.stdout).toContain("(default: 9100)")
      }),
    60_000
  )
})

describe("start", () => {
  it.scopedLive(
    "on a busy HTTP port: says which port and how to choose another, exit code 1",
    () =>
      Effect.gen(function* () {
        const dataDir = yield* tempFolder("sms-gw-port-")
        const port = yield* freePort
        yield* Effect.acquireRelease(
          Effect.async<Server>((resume) => {
            const server = createServer()
            server.listen(port, "127.0.0.1", () => resume(Effect.succeed(server)))
          }),
          (server) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
        )
        const result = yield* run(["start", "--http-port", String(port), "--data-dir", dataDir])
        const sentence = expectPlainFailure(result)
        expect(sentence).toContain(`port ${port}`)
        expect(sentence).toContain("--http-port")
        expect(sentence).toContain("HTTP_PORT")
        expect(sentence).toContain("0 picks a free one")
      }),
    60_000
  )

  it.scopedLive(
    "piped: no admin key printed, its file named; found from another folder; +120255501… deactivated; later starts name the key file",
    () =>
      Effect.gen(function* () {
        const dataDir = yield* tempFolder("sms-gw-newcomer-")
        const elsewhere = yield* tempFolder("sms-gw-elsewhere-")
        const port = yield* freePort
        const args = ["start", "--http-port", String(port), "--data-dir", dataDir]
        const first = yield* cli(args)
        yield* first.waitFor("sms-gateway is running")

        const keyFile = join(dataDir, "admin.key")
        const key = readFileSync(keyFile, "utf8").trim()
        expect(key).toMatch(/^smsgw_[0-9a-f]{16}\.\S+$/)
        expect(statSync(keyFile).mode & 0o777).toBe(0o600)
        const secret = key.split(".")[1] ?? key
        expect(first.output()).not.toContain(secret)
        expect(first.stdout()).toContain(keyFile)

        // from another folder: DATA_DIR finds the gateway for send, --data-dir for status
        const sent = yield* run(["send", "--to", "+12025550123", "--body", "hello"], {
          cwd: elsewhere,
          env: { DATA_DIR: dataDir }
        })
        expect(sent.code, sent.output).toBe(0)
        const messageId = (JSON.parse(sent.stdout) as { messageId: string }).messageId
        const deadline = Date.now() + 20_000
        let status = ""
        while (!status.includes('"failed"')) {
          if (Date.now() > deadline) return yield* Effect.fail(new Error(`never failed:\n${status}`))
          yield* Effect.sleep("200 millis")
          const result = yield* run(["status", messageId, "--data-dir", dataDir], { cwd: elsewhere })
          status = result.output
        }
        expect(status).toContain('"invalid_number"')

        // the phone number is deactivated, as the README's first steps show with curl
        const phone = yield* Effect.promise(() =>
          fetch(`http://127.0.0.1:${port}/v1/phone-numbers/12025550123`, { headers: { "x-api-key": key } })
        )
        expect(phone.status).toBe(200)
        expect(yield* Effect.promise(() => phone.json())).toMatchObject({ status: "inactive" })

        yield* stopProcess(first.child)
        const second = yield* cli(args)
        yield* second.waitFor("sms-gateway is running")
        expect(second.stdout()).toContain(`admin API key in ${keyFile}`)
        expect(second.stdout()).not.toContain("No API key existed")
        expect(second.output()).not.toContain(secret)
      }),
    120_000
  )
})
