import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect } from "effect"
import { findNatsServer } from "../../src/nats/NatsServer.js"
import { freePort } from "../support/gateway.js"
import { spawnProcess } from "../support/processes.js"

const root = fileURLToPath(new URL("../../", import.meta.url))

/** Processes whose command line names `path`, with their arguments. */
const processesNaming = (path: string): Array<{ pid: number; argv: Array<string> }> => {
  const found: Array<{ pid: number; argv: Array<string> }> = []
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue
    let argv: Array<string>
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").filter(Boolean)
    } catch {
      continue // exited while we looked
    }
    if (argv.some((arg) => arg.includes(path))) found.push({ pid: Number(entry), argv })
  }
  return found
}

/** The nats-server processes on `storeDir` (not the shells or gateways that name the folder). */
const natsServersOn = (storeDir: string) =>
  processesNaming(storeDir).filter(({ argv }) => (argv[0] ?? "").endsWith("nats-server"))

const describeProcesses = (list: ReadonlyArray<{ pid: number; argv: Array<string> }>) =>
  list.map(({ pid, argv }) => `${pid}: ${argv.join(" ")}`).join("\n") || "(none)"

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Polls `check` every 100 ms until it is true, or fails with `message()` after `within`. */
const waitUntil = (check: () => boolean, within: Duration.DurationInput, message: () => string) =>
  Effect.gen(function* () {
    const deadline = Date.now() + Duration.toMillis(Duration.decode(within))
    while (!check()) {
      if (Date.now() > deadline) return yield* Effect.fail(new Error(message()))
      yield* Effect.sleep("100 millis")
    }
  })

/**
 * A temporary data folder, removed at the end; before that, anything still naming it is SIGKILLed
 * (the scope closes in reverse: the test's own processes are stopped first, then this runs).
 */
const dataFolder = Effect.gen(function* () {
  const dir = yield* Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "sms-gw-lock-"))),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )
  yield* Effect.addFinalizer(() =>
    Effect.gen(function* () {
      for (const { pid } of processesNaming(dir)) {
        try {
          process.kill(pid, "SIGKILL")
        } catch {}
      }
      yield* waitUntil(
        () => processesNaming(dir).length === 0,
        "5 seconds",
        () => "leftovers did not die"
      ).pipe(Effect.ignore)
    })
  )
  return dir
})

/** `start` on the embedded default: no NATS_URL, no PROVIDERS_CONFIG. */
const startGateway = (dataDir: string) =>
  Effect.gen(function* () {
    const port = yield* freePort
    const env = { ...process.env }
    delete env.NATS_URL
    delete env.PROVIDERS_CONFIG
    delete env.GATEWAY_URL
    delete env.DATA_DIR
    return yield* spawnProcess(
      process.execPath,
      ["bin/sms-gateway.mjs", "start", "--http-port", String(port), "--data-dir", dataDir],
      { cwd: root, env }
    )
  })

const RUNNING = "sms-gateway is running"

describe("start: the embedded nats-server and the data folder's lock", () => {
  it.scopedLive(
    "kill -9 of the gateway takes its nats-server down within 10 s, and a restart runs one server again",
    () =>
      Effect.gen(function* () {
        const dataDir = yield* dataFolder
        const store = join(dataDir, "nats")
        const gateway = yield* startGateway(dataDir)
        yield* gateway.waitFor(RUNNING, "30 seconds")
        expect(natsServersOn(store), "the gateway runs one nats-server on its store").toHaveLength(1)

        gateway.child.kill("SIGKILL")
        yield* gateway.exited("5 seconds")
        yield* waitUntil(
          () => processesNaming(store).length === 0,
          "10 seconds",
          () =>
            `still running on ${store} 10 s after the gateway's kill -9:\n${describeProcesses(processesNaming(store))}`
        )

        // the dead gateway's lock and gateway.json are stale: the restart replaces them
        const restarted = yield* startGateway(dataDir)
        yield* restarted.waitFor(RUNNING, "30 seconds")
        const servers = natsServersOn(store)
        expect(servers, describeProcesses(servers)).toHaveLength(1)
      }),
    90_000
  )

  it.scopedLive(
    "a nats-server left on the store without its gateway is stopped, and start comes up on its own one",
    () =>
      Effect.gen(function* () {
        const dataDir = yield* dataFolder
        const store = join(dataDir, "nats")
        // what a gateway killed before this fix left behind: a server on the store, its pid on file
        const leftover = yield* spawnProcess(
          findNatsServer() ?? "nats-server",
          ["-js", "-a", "127.0.0.1", "-p", "-1", "-sd", store],
          process.env
        )
        yield* leftover.waitFor("Listening for client connections", "10 seconds")
        writeFileSync(join(store, "nats-server.pid"), String(leftover.pid))
        // and stale gateway files: a dead pid, and a live pid that is not a gateway (this test's)
        const dead = yield* spawnProcess("true", [], { env: process.env })
        yield* dead.exited("5 seconds")
        writeFileSync(join(dataDir, "gateway.lock"), String(process.pid))
        writeFileSync(join(dataDir, "gateway.json"), JSON.stringify({ pid: dead.pid }))

        const gateway = yield* startGateway(dataDir)
        yield* gateway.waitFor(RUNNING, "40 seconds")
        yield* leftover.exited("1 second")
        expect(isAlive(leftover.pid)).toBe(false)
        expect(gateway.output()).toContain(`pid ${leftover.pid}`)
        const servers = natsServersOn(store)
        expect(servers, describeProcesses(servers)).toHaveLength(1)
        expect(servers[0]?.pid).not.toBe(leftover.pid)
        expect(readFileSync(join(store, "nats-server.pid"), "utf8").trim()).toBe(String(servers[0]?.pid))
      }),
    90_000
  )

  it.scopedLive(
    "a second start on a data folder in use refuses, naming the folder and the pid; the first carries on",
    () =>
      Effect.gen(function* () {
        const dataDir = yield* dataFolder
        const store = join(dataDir, "nats")
        const first = yield* startGateway(dataDir)
        yield* first.waitFor(RUNNING, "30 seconds")
        const serverBefore = natsServersOn(store).map(({ pid }) => pid)
        expect(serverBefore).toHaveLength(1)

        const second = yield* startGateway(dataDir)
        const code = yield* second.exited("30 seconds")
        expect(code, second.output()).not.toBe(0)
        expect(second.output()).toContain(dataDir)
        expect(second.output()).toContain(String(first.pid))
        expect(second.output()).toMatch(/--data-dir/)
        expect(second.output()).not.toContain(RUNNING)

        expect(isAlive(first.pid)).toBe(true)
        expect(natsServersOn(store).map(({ pid }) => pid)).toEqual(serverBefore)
        const url = /HTTP {2}(http:\/\/\S+)/.exec(first.output())?.[1]
        expect(url).toBeDefined()
        const health = yield* Effect.promise(() => fetch(`${url}/health`))
        expect(health.status).toBe(200)
      }),
    90_000
  )
})
