/** The gateway as a separate process, started through its own CLI, stopped with SIGTERM. */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Deferred, Duration, Effect, Schedule } from "effect"

export interface GatewayProcess {
  readonly httpUrl: string
  readonly output: () => string
}

/**
 * A free loopback port for a server a test starts on a port it names. Chosen below Linux's ephemeral
 * range (32768 and up), so no program that listens on port 0 (the gateway's embedded nats-server and
 * simulator, the gRPC server) can take it between the probe and the test's own bind: taking a port
 * from the ephemeral range made a CI run fail when an embedded server was handed the same one. Each
 * vitest worker draws from its own slice, so two test files never race for one port either.
 */
export const freePort: Effect.Effect<number> = Effect.suspend(() => tryPort(20))

const SLICE = 1_500
/** never the same port twice in one worker: a test that asks for six ports gets six */
const handedOut = new Set<number>()
const sliceStart = () => 20_000 + ((Number(process.env.VITEST_POOL_ID ?? "1") || 1) % 8) * SLICE

const tryPort = (attemptsLeft: number): Effect.Effect<number> =>
  Effect.async<number | undefined>((resume) => {
    const port = sliceStart() + Math.floor(Math.random() * SLICE)
    if (handedOut.has(port)) return resume(Effect.succeed(undefined))
    const server = createServer()
    server.once("error", () => resume(Effect.succeed(undefined)))
    server.listen(port, "127.0.0.1", () => server.close(() => resume(Effect.succeed(port))))
  }).pipe(
    Effect.flatMap((port) =>
      port !== undefined
        ? Effect.sync(() => {
            handedOut.add(port)
            return port
          })
        : attemptsLeft > 1
          ? tryPort(attemptsLeft - 1)
          : Effect.die(new Error("no free loopback port below the ephemeral range after 20 tries"))
    )
  )

/** SIGTERM, then SIGKILL after `graceMs`; done when the process is gone. */
export const stopProcess = (child: ChildProcess, graceMs = 10_000) =>
  Effect.async<void>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
    const killer = setTimeout(() => child.kill("SIGKILL"), graceMs)
    child.once("exit", () => {
      clearTimeout(killer)
      resume(Effect.void)
    })
    child.kill("SIGTERM")
  })

export interface GatewayProcessOptions {
  readonly natsUrl: string
  /** providers file content; credentials go in `env` */
  readonly providers: unknown
  readonly env?: Record<string, string>
  readonly roles?: string
}

export const startGatewayProcess = (options: GatewayProcessOptions) =>
  Effect.gen(function* () {
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => mkdtempSync(join(tmpdir(), "sms-gw-"))),
      (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
    )
    const providersFile = join(dir, "providers.json")
    writeFileSync(providersFile, JSON.stringify(options.providers))
    const port = yield* freePort
    const args = ["bin/sms-gateway.mjs", "start", "--http-port", String(port), "--data-dir", dir]
    if (options.roles) args.push("--roles", options.roles)
    let output = ""
    const ready = yield* Deferred.make<void, Error>()
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        const child = spawn(process.execPath, args, {
          env: { ...process.env, ...options.env, NATS_URL: options.natsUrl, PROVIDERS_CONFIG: providersFile },
          stdio: ["ignore", "pipe", "pipe"]
        })
        const collect = (chunk: Buffer) => {
          if (output.length < 200_000) output += chunk.toString()
          if (output.includes("sms-gateway is running")) Deferred.unsafeDone(ready, Effect.void)
        }
        child.stdout.on("data", collect)
        child.stderr.on("data", collect)
        child.on("exit", (code) =>
          Deferred.unsafeDone(ready, Effect.fail(new Error(`gateway exited with ${code}:\n${output}`)))
        )
        return child
      }),
      (child) => stopProcess(child)
    )
    yield* Deferred.await(ready).pipe(
      Effect.timeoutFail({
        duration: "30 seconds",
        onTimeout: () => new Error(`gateway did not start:\n${output}`)
      })
    )
    return { httpUrl: `http://127.0.0.1:${port}`, output: () => output } satisfies GatewayProcess
  })

/** Retries `check` every 50 ms until it succeeds or `within` runs out (then fails with its last error). */
export const eventually = <A, E, R>(
  check: Effect.Effect<A, E, R>,
  within: Duration.DurationInput = "15 seconds"
) => check.pipe(Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo(within))))
