/**
 * The short fault run: `bench/chaos.ts` (what `npm run chaos` runs) as a child process, with N and
 * RATE small enough for CI. Every fault still happens, each on a gateway with work in hand (the run
 * waits for that, not for the clock): two SIGKILLs of the gateway, a nats-server restart, a provider
 * outage followed by a 429 storm, late, shuffled and duplicated delivery reports. The assertions are
 * the run's own verdict, read from its JSON line, plus evidence that the faults reached messages.
 * The same run again on a three-node cluster (`CLUSTER=3`): every stream at three replicas, one node
 * killed with SIGKILL while the load runs and restarted a fault later.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { afterAll, describe, expect, it } from "@effect/vitest"

const root = fileURLToPath(new URL("../../", import.meta.url))

/**
 * 300 messages at 100/s: 3 s of publishing, stretched by the faults to about 15 s, then the wait
 * for the work items a SIGKILL left in hand (the provider consumer's ack wait, 25 s). Four shares of
 * 45 messages lead the faults, so each lands on dozens of messages in flight; more only adds time.
 */
const N = 300
const RATE = 100
/** about 50 s on two idle cores; a stuck run ends itself after 60 s without progress */
const TIMEOUT_MS = 240_000

interface ChaosResult {
  readonly n: number
  readonly checked: number
  readonly published: number
  readonly faults: ReadonlyArray<string>
  readonly stalls: ReadonlyArray<string>
  readonly lost: number
  readonly not_final: number
  readonly delivered: number
  readonly failed: number
  readonly extra_submissions: number
  readonly unexplained_extra: number
  readonly retries: Readonly<Record<string, number>>
  readonly dlr_duplicates: number
}

interface Run {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly timedOut: boolean
  readonly stdout: string
  readonly stderr: string
  readonly ms: number
}

let running: ChildProcess | undefined

/** Kills the run and everything it started (its own process group). */
const killRun = (child: ChildProcess) => {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
  try {
    process.kill(-child.pid, "SIGKILL")
  } catch {
    child.kill("SIGKILL")
  }
}

const runChaos = (env: Record<string, string>) =>
  new Promise<Run>((resolve) => {
    const started = Date.now()
    const child = spawn(process.execPath, ["--import", "tsx", "bench/chaos.ts"], {
      cwd: root,
      env: { ...process.env, N: String(N), RATE: String(RATE), ...env },
      stdio: ["ignore", "pipe", "pipe"],
      // its own process group: a run past its time is killed with its nats-server, gateway, simulators
      detached: true
    })
    running = child
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString()
    })
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString()
    })
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      killRun(child)
    }, TIMEOUT_MS - 15_000)
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      running = undefined
      resolve({ code, signal, timedOut, stdout, stderr, ms: Date.now() - started })
    })
  })

const tail = (text: string, lines: number) => text.trimEnd().split("\n").slice(-lines).join("\n")

describe("chaos: the short fault run (bench/chaos.ts)", () => {
  afterAll(() => {
    if (running) killRun(running)
  })

  const verify = async (label: string, env: Record<string, string>, faults: ReadonlyArray<string>) => {
    const run = await runChaos(env)
    const context = [
      `bench/chaos.ts ${label} N=${N} RATE=${RATE}: exit ${run.code ?? run.signal} after ${Math.round(run.ms / 1000)} s` +
        (run.timedOut ? ` (killed at the test's limit, ${(TIMEOUT_MS - 15_000) / 1000} s)` : ""),
      "--- stdout (end)",
      tail(run.stdout, 10),
      "--- stderr (end)",
      tail(run.stderr, 40)
    ].join("\n")
    const line = run.stdout
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .at(-1)
    expect(line, `no JSON result line\n${context}`).toBeDefined()
    const result = JSON.parse(line ?? "{}") as ChaosResult
    // the figures in the CI log, passed or not
    console.log(`chaos ${label} (${Math.round(run.ms / 1000)} s): ${line}`)

    expect(result.stalls, context).toEqual([])
    expect(result.checked, context).toBe(N)
    expect(result.published, context).toBe(N)
    expect(result.lost, context).toBe(0)
    expect(result.not_final, context).toBe(0)
    expect(result.delivered + result.failed, context).toBe(N)
    // on the cluster too: a call repeated under one attempt number (killed during the call while the
    // consumer's leader moved) is in the call journal
    expect(result.unexplained_extra, context).toBe(0)
    expect(run.code, context).toBe(0)

    // every fault ran, and reached messages: the histories hold the outage's and the storm's
    // retries, and the provider sent duplicate reports
    expect(result.faults, context).toEqual(faults)
    expect(result.retries.network ?? 0, context).toBeGreaterThan(0)
    expect(result.retries.throttled ?? 0, context).toBeGreaterThan(0)
    expect(result.dlr_duplicates, context).toBeGreaterThan(0)
  }

  it(
    `N=${N} RATE=${RATE}: nothing lost, every message final, every extra submission explained`,
    () =>
      verify("one server", {}, [
        "gateway kill -9",
        "nats-server restart",
        "gateway kill -9",
        "provider down 3 s",
        "429 storm 2 s"
      ]),
    TIMEOUT_MS
  )

  it(
    `CLUSTER=3 N=${N} RATE=${RATE}: a node killed and restarted under load loses nothing, every message final, every extra submission explained`,
    () =>
      verify("CLUSTER=3", { CLUSTER: "3" }, [
        "gateway kill -9",
        "nats node kill -9",
        "gateway kill -9",
        "nats node restarted",
        "provider down 3 s",
        "429 storm 2 s"
      ]),
    TIMEOUT_MS
  )
})
