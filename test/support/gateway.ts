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

export const freePort = Effect.async<number>((resume) => {
  const server = createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

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
