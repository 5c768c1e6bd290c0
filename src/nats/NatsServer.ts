/**
 * Runs `nats-server -js` as a child process on loopback: the embedded default of `start`, and the
 * real server every integration test talks to.
 *
 * Its size (over 400 lines) is one child process's life: configuration, credentials, the store's lock,
 * start and stop.
 */
import { type ChildProcess, spawn } from "node:child_process"
import {
  accessSync,
  chmodSync,
  constants,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync
} from "node:fs"
import { basename, delimiter, dirname, join, resolve } from "node:path"
import { Data, Deferred, Duration, Effect, type Scope } from "effect"
import {
  type EmbeddedCredentials,
  forgetEmbeddedCredentials,
  rememberEmbeddedCredentials
} from "./NatsAuth.js"

export class NatsServerError extends Data.TaggedError("NatsServerError")<{
  /** StoreInUse: a nats-server of a live gateway already runs on the store */
  readonly reason: "NotInstalled" | "StartFailed" | "StoreInUse"
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
  /**
   * The only user the server accepts; none (the tests' servers) accepts any local connection. While
   * the server runs, `Nats.connect` to its URL in this process uses them.
   */
  readonly auth?: EmbeddedCredentials
}

/**
 * The server's configuration when it has `auth`, in the store folder with mode 0600: command-line
 * arguments are visible to every local user in `ps`, a file is not. It holds only the authorization;
 * the store, address and pid file stay on the command line, where `reclaimStore` finds them.
 */
export const CONFIG_FILE = "nats-server.conf"

const writeConfig = (file: string, auth: EmbeddedCredentials) =>
  Effect.try({
    try: () => {
      // written into the config in quotes: only characters that need no escaping there
      if (!/^[\w-]+$/.test(auth.user) || !/^[\w-]+$/.test(auth.password))
        throw new Error("the user and password must be letters, digits, _ and - only")
      // rewritten on every start: the credentials file may have been replaced since
      rmSync(file, { force: true })
      writeFileSync(
        file,
        `# written by sms-gateway on each start; the credentials are in the data folder's nats.auth\n` +
          `authorization {\n  user: "${auth.user}"\n  password: "${auth.password}"\n}\n`,
        { mode: 0o600, flag: "wx" }
      )
      chmodSync(file, 0o600)
    },
    catch: (cause) =>
      new NatsServerError({
        reason: "StartFailed",
        message: `cannot write ${file} (${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message})`
      })
  })

/**
 * nats-server writes its pid here (`-P`), and the next start on the store reads it. It sits inside
 * the store folder, not next to it, because the store is what it guards: the tests hand fresh temp
 * folders to `startNatsServer` as stores, so a sibling (`<storeDir>/../nats-server.pid`) would be one
 * file under /tmp shared by every test. nats-server does not remove it on exit; the scope does.
 */
export const PID_FILE = "nats-server.pid"

/**
 * The supervisor nats-server runs under: `sh -c SUPERVISOR sh <nats-server> <args…>`. Its stdin is a
 * pipe whose other end only the gateway holds, so when the gateway dies, even by SIGKILL, the kernel
 * closes the pipe, `read` sees end-of-file, and the watcher stops the server (TERM, then KILL after
 * 10 s). No native module, no polling. The pipe moves to fd 3 first because sh gives background jobs
 * /dev/null as stdin; nats-server gets neither, so only the watcher reads it.
 * TERM or INT to the supervisor (the scope's stop, Ctrl-C) is passed on to the server, and the
 * supervisor exits when the server does, with its exit code, so "exited before accepting clients"
 * still reads the server's own failure.
 */
const SUPERVISOR = `exec 3<&0 </dev/null
"$@" 3<&- &
server=$!
trap 'kill -TERM "$server" 2>/dev/null' TERM INT HUP
{
  read -r _ignored <&3
  kill -TERM "$server" 2>/dev/null || exit 0
  i=0
  while kill -0 "$server" 2>/dev/null && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
  kill -KILL "$server" 2>/dev/null
} &
watcher=$!
exec 3<&-
while :; do
  wait "$server"
  code=$?
  kill -0 "$server" 2>/dev/null || break
done
kill "$watcher" 2>/dev/null
exit "$code"`

/**
 * Starts the server, waits until it accepts clients, and stops it (TERM, then KILL) with the scope.
 * It runs under `SUPERVISOR`, so it also dies with this process when that is killed outright. A
 * nats-server already on the store is stopped first when no live gateway owns it (a leftover of a
 * crashed gateway: two servers on one store each keep their own view of the streams), and refused
 * with `StoreInUse` when one does.
 */
export const startNatsServer = (
  options: NatsServerOptions
): Effect.Effect<EmbeddedNats, NatsServerError, Scope.Scope> =>
  Effect.gen(function* () {
    const bin = findNatsServer()
    if (!bin) return yield* new NatsServerError({ reason: "NotInstalled", message: INSTALL_HINT })
    const storeDir = resolve(options.storeDir)
    mkdirSync(storeDir, { recursive: true })
    const pidFile = join(storeDir, PID_FILE)
    yield* reclaimStore(storeDir, pidFile)
    const args = ["-js", "-a", "127.0.0.1", "-p", String(options.port || -1), "-sd", storeDir, "-P", pidFile]
    if (options.monitorPort !== undefined) args.push("-m", String(options.monitorPort))
    if (options.auth !== undefined) {
      const configFile = join(storeDir, CONFIG_FILE)
      yield* writeConfig(configFile, options.auth)
      args.push("-c", configFile)
    }
    // the server's pid, once known: the stop signals it directly when the supervisor is slow
    let serverPid: number | undefined
    const child = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const child = spawn("/bin/sh", ["-c", SUPERVISOR, "sh", bin, ...args], {
          stdio: ["pipe", "ignore", "pipe"]
        })
        // nothing is ever written: the pipe only has to close when this process goes
        child.stdin?.on("error", () => {})
        return child
      }),
      (child) => stopServer(child, () => serverPid, pidFile)
    )
    const ready = yield* Deferred.make<string, NatsServerError>()
    let log = ""
    child.stderr?.setEncoding("utf8")
    child.stderr?.on("data", (chunk: string) => {
      if (log.length < 20_000) log += chunk
      // the whole line (to its newline): a chunk may end inside the port number
      const match = /(?:\[(\d+)\] )?.*Listening for client connections on ([\d.]+):(\d+)\r?\n/.exec(log)
      if (match) {
        serverPid = readPid(pidFile) ?? (match[1] ? Number(match[1]) : undefined)
        Deferred.unsafeDone(ready, Effect.succeed(`nats://${match[2]}:${match[3]}`))
      }
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
    const { auth } = options
    if (auth !== undefined)
      yield* Effect.acquireRelease(
        Effect.sync(() => rememberEmbeddedCredentials(url, auth)),
        () => Effect.sync(() => forgetEmbeddedCredentials(url))
      )
    return { url, pid: serverPid ?? -1 }
  })

/**
 * TERM to the supervisor, which passes it on; after 5 s, KILL to the server itself (a KILL to the
 * supervisor alone could not be passed on) and to the supervisor. The pid file goes with the server.
 */
const stopServer = (child: ChildProcess, serverPid: () => number | undefined, pidFile: string) =>
  Effect.async<void>((resume) => {
    const done = () => {
      const filed = readPid(pidFile)
      if (filed !== undefined && (filed === serverPid() || !isNatsServerOn(filed, dirname(pidFile))))
        rmSync(pidFile, { force: true })
      resume(Effect.void)
    }
    if (child.exitCode !== null || child.signalCode !== null) return done()
    const killer = setTimeout(() => {
      const pid = serverPid()
      if (pid !== undefined && isNatsServerOn(pid, dirname(pidFile))) signal(pid, "SIGKILL")
      // with the pid unknown, closing the pipe makes the watcher stop the server
      child.stdin?.destroy()
      child.kill("SIGKILL")
    }, 5_000)
    child.once("exit", () => {
      clearTimeout(killer)
      done()
    })
    child.kill("SIGTERM")
  })

/**
 * Makes the store free for a new server. The holders are the pid file's process when it really is a
 * nats-server on this store (a dead pid, or a pid since reused by something else, is just stale),
 * and any nats-server whose command line names the store (a leftover of a version that wrote no pid
 * file). A holder with a live sms-gateway among its ancestors belongs to a running gateway: refused.
 * Any other holder outlived its gateway: stopped, with a warning.
 */
const reclaimStore = (storeDir: string, pidFile: string) =>
  Effect.gen(function* () {
    if (!procfs()) return // no /proc: nothing can be verified, so nothing is stopped
    const holders = new Set<number>()
    const filed = readPid(pidFile)
    if (filed !== undefined && isNatsServerOn(filed, storeDir)) holders.add(filed)
    for (const pid of livePids()) if (pid !== filed && isNatsServerOn(pid, storeDir)) holders.add(pid)
    for (const pid of holders) {
      const owner = gatewayAncestor(pid)
      if (owner !== undefined)
        return yield* new NatsServerError({
          reason: "StoreInUse",
          message:
            `the nats-server store ${storeDir} is in use by nats-server pid ${pid}, run by the sms-gateway ` +
            `process ${owner}: stop that gateway first, or use another --data-dir`
        })
    }
    for (const pid of holders) {
      yield* Effect.logWarning(
        `stopping nats-server pid ${pid}, left running on ${storeDir} by a gateway that is gone`
      )
      if (!(yield* terminate(pid)))
        return yield* new NatsServerError({
          reason: "StoreInUse",
          message: `nats-server pid ${pid} on ${storeDir} outlived its gateway and did not stop on SIGKILL`
        })
    }
    rmSync(pidFile, { force: true })
  })

/** TERM, up to 10 s for it to go, then KILL and up to 2 s more; true when it is gone. */
const terminate = (pid: number) =>
  Effect.gen(function* () {
    const goneWithin = (ms: number) =>
      Effect.gen(function* () {
        const deadline = Date.now() + ms
        while (isAlive(pid)) {
          if (Date.now() > deadline) return false
          yield* Effect.sleep("100 millis")
        }
        return true
      })
    signal(pid, "SIGTERM")
    if (yield* goneWithin(10_000)) return true
    signal(pid, "SIGKILL")
    return yield* goneWithin(2_000)
  })

const signal = (pid: number, name: NodeJS.Signals) => {
  try {
    process.kill(pid, name)
  } catch {
    // already gone
  }
}

const procfs = () => existsSync("/proc/self/cmdline")

const readPid = (file: string): number | undefined => {
  try {
    const pid = Number.parseInt(readFileSync(file, "utf8").trim(), 10)
    return Number.isInteger(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

/** A process's arguments (`/proc/<pid>/cmdline`), or undefined when it is gone or unreadable. */
export const processArgv = (pid: number): ReadonlyArray<string> | undefined => {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")
    if (argv.at(-1) === "") argv.pop()
    return argv.length > 0 ? argv : undefined
  } catch {
    return undefined
  }
}

/** `/proc/<pid>/stat`: the state letter and the parent, read after the command name's parenthesis. */
const processStat = (pid: number): { readonly state: string; readonly ppid: number } | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
    const [state = "", ppid = "0"] = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    return { state, ppid: Number(ppid) }
  } catch {
    return undefined
  }
}

/** Running, not a zombie (a dead child its parent has not reaped yet still answers `kill -0`). */
export const isAlive = (pid: number): boolean => {
  if (procfs()) {
    const stat = processStat(pid)
    return stat !== undefined && stat.state !== "Z" && stat.state !== "X"
  }
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

const livePids = (): Array<number> => {
  try {
    return readdirSync("/proc")
      .filter((entry) => /^\d+$/.test(entry))
      .map(Number)
  } catch {
    return []
  }
}

/** A live nats-server (by its program's name) whose arguments name `storeDir`. */
const isNatsServerOn = (pid: number, storeDir: string): boolean => {
  const argv = processArgv(pid)
  return (
    argv !== undefined &&
    basename(argv[0] ?? "").includes("nats-server") &&
    argv.includes(storeDir) &&
    isAlive(pid)
  )
}

/**
 * A live node process running sms-gateway (`bin/sms-gateway.mjs`, the npm bin link, or the compiled
 * or source entry run directly). Where there is no /proc it cannot be told, so any live pid counts:
 * refusing a start wrongly is recoverable, two servers on one store are not.
 */
export const isSmsGateway = (pid: number): boolean => {
  if (!procfs()) return isAlive(pid)
  const argv = processArgv(pid)
  if (argv === undefined || !isAlive(pid) || !/^node/.test(basename(argv[0] ?? ""))) return false
  return argv
    .slice(1)
    .some(
      (arg) =>
        basename(arg) === "sms-gateway.mjs" ||
        basename(arg) === "sms-gateway" ||
        /(^|\/)(dist\/cli\/main\.js|src\/cli\/main\.ts)$/.test(arg)
    )
}

/** The first live sms-gateway among the process's ancestors (its supervisor's parent, normally). */
const gatewayAncestor = (pid: number): number | undefined => {
  let current = processStat(pid)?.ppid ?? 0
  for (let hops = 0; hops < 8 && current > 0; hops++) {
    if (isSmsGateway(current)) return current
    if (current === 1) return undefined
    current = processStat(current)?.ppid ?? 0
  }
  return undefined
}

/**
 * The arguments of node `node` of a JetStream cluster on loopback: its name `<name>-<node>`, its own
 * route port and routes to the others (the chaos run and the cluster tests start three).
 */
export const clusterNodeArgs = (name: string, node: number, routePorts: ReadonlyArray<number>) => [
  "-n",
  `${name}-${node}`,
  "--cluster_name",
  name,
  "--cluster",
  `nats://127.0.0.1:${routePorts[node]}`,
  "--routes",
  routePorts
    .filter((_, j) => j !== node)
    .map((route) => `nats://127.0.0.1:${route}`)
    .join(",")
]
