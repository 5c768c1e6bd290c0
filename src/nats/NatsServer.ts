/**
 * Runs `nats-server -js` as a child process on loopback: the embedded default of `start`, and the
 * real server every integration test talks to.
 */
import { spawn } from "node:child_process"
import { accessSync, constants, mkdirSync } from "node:fs"
import { delimiter, join } from "node:path"
import { Data, Deferred, Duration, Effect, type Scope } from "effect"

export class NatsServerError extends Data.TaggedError("NatsServerError")<{
  readonly reason: "NotInstalled" | "StartFailed"
  readonly message: string
}> {}

export const INSTALL_HINT =
  "nats-server was not found. Install it with `sudo apt-get install -y nats-server` (Debian/Ubuntu), " +
  "or set NATS_SERVER_BIN to its path, or point the gateway at a running server with NATS_URL."

/** `NATS_SERVER_BIN`, then PATH, then the sbin folders Debian installs to (not on a user's PATH). */
export const findNatsServer = (): string | undefined => {
  const candidates = [
    process.env.NATS_SERVER_BIN,
    ...(process.env.PATH ?? "").split(delimiter).map((dir) => join(dir, "nats-server")),
    "/usr/sbin/nats-server",
    "/usr/local/sbin/nats-server"
  ]
  return candidates.find((path) => {
    if (!path) return false
    try {
      accessSync(path, constants.X_OK)
      return true
    } catch {
      return false
    }
  })
}

export interface EmbeddedNats {
  readonly url: string
  readonly pid: number
}

export interface NatsServerOptions {
  /** JetStream store directory (created when missing) */
  readonly storeDir: string
  /** 0 (default) picks a free port */
  readonly port?: number
  /** HTTP monitoring port (`/varz`, `/connz`); none by default */
  readonly monitorPort?: number
}

/** Starts the server, waits until it accepts clients, and stops it (TERM, then KILL) with the scope. */
export const startNatsServer = (
  options: NatsServerOptions
): Effect.Effect<EmbeddedNats, NatsServerError, Scope.Scope> =>
  Effect.gen(function* () {
    const bin = findNatsServer()
    if (!bin) return yield* new NatsServerError({ reason: "NotInstalled", message: INSTALL_HINT })
    mkdirSync(options.storeDir, { recursive: true })
    const args = ["-js", "-a", "127.0.0.1", "-p", String(options.port || -1), "-sd", options.storeDir]
    if (options.monitorPort !== undefined) args.push("-m", String(options.monitorPort))
    const child = yield* Effect.acquireRelease(
      Effect.sync(() => spawn(bin, args, { stdio: ["ignore", "ignore", "pipe"] })),
      (child) => stopChild(child)
    )
    const ready = yield* Deferred.make<string, NatsServerError>()
    let log = ""
    child.stderr?.setEncoding("utf8")
    child.stderr?.on("data", (chunk: string) => {
      if (log.length < 20_000) log += chunk
      const match = /Listening for client connections on ([\d.]+):(\d+)/.exec(log)
      if (match) Deferred.unsafeDone(ready, Effect.succeed(`nats://${match[1]}:${match[2]}`))
    })
    child.on("exit", (code) =>
      Deferred.unsafeDone(
        ready,
        Effect.fail(
          new NatsServerError({
            reason: "StartFailed",
            message: `nats-server exited with ${code} before accepting clients:\n${log.slice(-2000)}`
          })
        )
      )
    )
    const url = yield* Deferred.await(ready).pipe(
      Effect.timeoutFail({
        duration: Duration.seconds(15),
        onTimeout: () =>
          new NatsServerError({ reason: "StartFailed", message: `nats-server did not start:\n${log}` })
      })
    )
    return { url, pid: child.pid ?? -1 }
  })

const stopChild = (child: ReturnType<typeof spawn>) =>
  Effect.async<void>((resume) => {
    if (child.exitCode !== null || child.signalCode !== null) return resume(Effect.void)
    const killer = setTimeout(() => child.kill("SIGKILL"), 5_000)
    child.once("exit", () => {
      clearTimeout(killer)
      resume(Effect.void)
    })
    child.kill("SIGTERM")
  })
