/** Child processes for the CLI tests: spawned with the scope, their output kept, bounded waits. */
import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Deferred, Duration, Effect } from "effect"
import { stopProcess } from "./gateway.js"

export interface Spawned {
  readonly child: ChildProcess
  readonly pid: number
  readonly stdout: () => string
  readonly stderr: () => string
  /** both streams, labelled: for assertions on either and for failure messages */
  readonly output: () => string
  /** succeeds once stdout or stderr holds the text (fails if the process exits first) */
  readonly waitFor: (text: string | RegExp, within?: Duration.DurationInput) => Effect.Effect<void, Error>
  /** the exit code (or the signal's name), within the bound */
  readonly exited: (within?: Duration.DurationInput) => Effect.Effect<number | string, Error>
}

/** Starts a process, stopped with the scope: SIGTERM, then SIGKILL after 10 s. */
export const spawnProcess = (
  command: string,
  args: ReadonlyArray<string>,
  options: { readonly cwd?: string; readonly env?: NodeJS.ProcessEnv } = {}
) =>
  Effect.gen(function* () {
    let stdout = ""
    let stderr = ""
    const exit = yield* Deferred.make<number | string>()
    const child = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const child = spawn(command, args, {
          cwd: options.cwd,
          env: options.env,
          stdio: ["ignore", "pipe", "pipe"]
        })
        child.stdout?.on("data", (chunk: Buffer) => {
          if (stdout.length < 200_000) stdout += chunk.toString()
        })
        child.stderr?.on("data", (chunk: Buffer) => {
          if (stderr.length < 200_000) stderr += chunk.toString()
        })
        child.on("exit", (code, signal) => Deferred.unsafeDone(exit, Effect.succeed(code ?? signal ?? -1)))
        return child
      }),
      (child) => stopProcess(child)
    )
    const output = () => `--- stdout\n${stdout}\n--- stderr\n${stderr}`
    const what = `${command} ${args.join(" ")}`
    const exited = (within: Duration.DurationInput = "30 seconds") =>
      Deferred.await(exit).pipe(
        Effect.timeoutFail({
          duration: within,
          onTimeout: () => new Error(`${what} still running after ${Duration.format(within)}:\n${output()}`)
        })
      )
    const waitFor = (text: string | RegExp, within: Duration.DurationInput = "40 seconds") =>
      Effect.gen(function* () {
        const deadline = Date.now() + Duration.toMillis(Duration.decode(within))
        const seen = () =>
          typeof text === "string"
            ? stdout.includes(text) || stderr.includes(text)
            : text.test(stdout) || text.test(stderr)
        while (!seen()) {
          if (yield* Deferred.isDone(exit))
            return yield* Effect.fail(new Error(`${what} exited before "${text}":\n${output()}`))
          if (Date.now() > deadline)
            return yield* Effect.fail(
              new Error(`no "${text}" within ${Duration.format(within)}:\n${output()}`)
            )
          yield* Effect.sleep("50 millis")
        }
      })
    return {
      child,
      pid: child.pid ?? -1,
      stdout: () => stdout,
      stderr: () => stderr,
      output,
      waitFor,
      exited
    } satisfies Spawned
  })

/** A temporary folder; anything still naming it at the end is SIGKILLed, then it is removed. */
export const tempFolder = (prefix: string) =>
  Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), prefix))),
    (dir) =>
      Effect.sync(() => {
        for (const entry of readdirSync("/proc")) {
          if (!/^\d+$/.test(entry)) continue
          try {
            if (readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(dir))
              process.kill(Number(entry), "SIGKILL")
          } catch {}
        }
        rmSync(dir, { recursive: true, force: true })
      })
  )
