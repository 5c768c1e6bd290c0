/** Child processes for the benchmark and the chaos run: the gateway CLI, nats-server, free ports. */
import { type ChildProcess, spawn } from "node:child_process"
import { readFileSync } from "node:fs"
import { createServer } from "node:net"

export const freePort = () =>
  new Promise<number>((resolve) => {
    const server = createServer()
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0))
    })
  })

/** Resolves with the first match of `pattern` in the child's output; rejects if it exits first. */
export const waitForLine = (child: ChildProcess, pattern: RegExp, what: string) =>
  new Promise<RegExpExecArray>((resolve, reject) => {
    let output = ""
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      const match = pattern.exec(output)
      if (match) resolve(match)
    }
    child.stdout?.on("data", onData)
    child.stderr?.on("data", onData)
    child.once("exit", (code) => reject(new Error(`${what} exited (${code}):\n${output.slice(-3000)}`)))
  })

/** `node bin/sms-gateway.mjs <args>` with quiet logs. */
/**
 * V8 flags the gateway runs with (as `npm start` and the Docker image do): a larger young
 * generation, since a busy gateway allocates short-lived objects per message and scavenged them
 * several times per batch with the default 16 MB (measured: +35 % throughput, same CPU), and one
 * that starts at half its size instead of growing from 1 MB through a burst's first seconds
 * (measured: about 4 % less CPU, four alternating pairs).
 */
export const GATEWAY_V8_FLAGS = ["--max-semi-space-size=32", "--min-semi-space-size=16"]

export const spawnCli = (
  args: ReadonlyArray<string>,
  env: Record<string, string> = {},
  nodeArgs: ReadonlyArray<string> = []
) =>
  spawn(process.execPath, [...nodeArgs, "bin/sms-gateway.mjs", ...args], {
    env: { ...process.env, LOG_LEVEL: "Warning", ...env },
    stdio: ["ignore", "pipe", "pipe"]
  })

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
export const stop = (child: ChildProcess, graceMs = 30_000) =>
  new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve()
    child.once("exit", () => resolve())
    child.kill("SIGTERM")
    setTimeout(() => child.kill("SIGKILL"), graceMs).unref()
  })

export const rssMb = (pid: number): number => {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8")
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024
  } catch {
    return 0
  }
}

/** user + system CPU seconds of a live process, from /proc (clock ticks of 10 ms) */
export const cpuSeconds = (pid: number): number => {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? []
    return (Number(fields[11] ?? 0) + Number(fields[12] ?? 0)) / 100
  } catch {
    return 0
  }
}
