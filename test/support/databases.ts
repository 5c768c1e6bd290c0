/**
 * A real PostgreSQL or MariaDB per test file, the way `nats.ts` starts nats-server: a temporary data
 * directory (`initdb` / `mariadb-install-db`), a free loopback port, the unix socket inside that
 * directory, stopped and removed with the scope. No system service is used or touched.
 *
 * As root, PostgreSQL refuses to run: its processes run as the `postgres` user (node's `uid`/`gid`
 * spawn options) on a directory handed to that user; `mariadbd` runs with `--user=root`.
 *
 * Each server can be stopped and started again on the same port and data (a database restart in the
 * middle of a test). A missing binary fails with the package to install (`scripts/setup.sh` installs
 * both on CI).
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Duration, Effect, type Scope } from "effect"
import { freePort } from "./gateway.js"

export type DatabaseKind = "postgres" | "mysql"

export interface TestDatabase {
  readonly kind: DatabaseKind
  /** `postgres://gateway:…@127.0.0.1:<port>/sms` or `mysql://gateway:…@127.0.0.1:<port>/sms` */
  readonly url: string
  /** the same server as its administrator (for test set-up: triggers, inspection) */
  readonly adminUrl: string
  readonly port: number
  /** a fast shutdown; the data stays */
  readonly stop: Effect.Effect<void>
  /** starts the stopped server again, on the same port and data, and waits until it answers */
  readonly start: Effect.Effect<void, Error>
  /** the server's output so far, for failure messages */
  readonly log: () => string
}

export const DB_USER = "gateway"
export const DB_PASSWORD = "outbox-test-secret"
const DB_NAME = "sms"

const isRoot = () => typeof process.getuid === "function" && process.getuid() === 0

/** uid and gid of a system user, from /etc/passwd. */
const userIds = (name: string): { uid: number; gid: number } | undefined => {
  const line = readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .find((entry) => entry.startsWith(`${name}:`))
  const [, , uid, gid] = line?.split(":") ?? []
  return uid === undefined || gid === undefined ? undefined : { uid: Number(uid), gid: Number(gid) }
}

/** The newest installed PostgreSQL's binaries (Debian keeps them in /usr/lib/postgresql/<major>/bin). */
const postgresBin = (): string | undefined => {
  if (process.env.PG_BIN && existsSync(join(process.env.PG_BIN, "postgres"))) return process.env.PG_BIN
  const root = "/usr/lib/postgresql"
  if (!existsSync(root)) return undefined
  const majors = readdirSync(root)
    .filter((entry) => /^\d+$/.test(entry) && existsSync(join(root, entry, "bin", "postgres")))
    .sort((a, b) => Number(b) - Number(a))
  return majors[0] === undefined ? undefined : join(root, majors[0], "bin")
}

const which = (binary: string, candidates: ReadonlyArray<string>): string | undefined =>
  candidates.find((path) => existsSync(path)) ??
  (spawnSync("sh", ["-c", `command -v ${binary}`], { encoding: "utf8" }).stdout.trim() || undefined)

const missing = (what: string, pkg: string) =>
  new Error(
    `${what} is not installed: install it with \`apt-get install -y ${pkg}\` (scripts/setup.sh does on CI), ` +
      "then run the tests again"
  )

/** Runs a set-up command to its end; fails with its output. */
const runToEnd = (
  command: string,
  args: ReadonlyArray<string>,
  options: { uid?: number; gid?: number; cwd: string }
) =>
  Effect.async<void, Error>((resume) => {
    let output = ""
    const child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"] })
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString()
    })
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk.toString()
    })
    child.on("error", (error) => resume(Effect.fail(error)))
    child.on("exit", (code) =>
      resume(code === 0 ? Effect.void : Effect.fail(new Error(`${command} exited with ${code}:\n${output}`)))
    )
  })

/** A server process: started, its output kept, stopped with a signal and awaited. */
const serverProcess = (
  command: string,
  args: ReadonlyArray<string>,
  options: { uid?: number; gid?: number; cwd: string },
  stopSignal: NodeJS.Signals
) => {
  let child: ChildProcess | undefined
  let output = ""
  const start = Effect.sync(() => {
    const started = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"] })
    const keep = (chunk: Buffer) => {
      if (output.length < 100_000) output += chunk.toString()
    }
    started.stdout?.on("data", keep)
    started.stderr?.on("data", keep)
    child = started
  })
  const stop = Effect.async<void>((resume) => {
    const running = child
    if (running === undefined || running.exitCode !== null || running.signalCode !== null)
      return resume(Effect.void)
    const killer = setTimeout(() => running.kill("SIGKILL"), 15_000)
    running.once("exit", () => {
      clearTimeout(killer)
      resume(Effect.void)
    })
    running.kill(stopSignal)
  })
  const exited = () => child === undefined || child.exitCode !== null || child.signalCode !== null
  return { start, stop, exited, log: () => output }
}

/** Retries `attempt` every 100 ms until it succeeds, the server exits, or 30 s pass. */
const waitUntilReady = (
  attempt: () => Promise<void>,
  exited: () => boolean,
  log: () => string,
  what: string
) =>
  Effect.gen(function* () {
    const deadline = Date.now() + 30_000
    let last: unknown
    for (;;) {
      const result = yield* Effect.either(Effect.tryPromise(attempt))
      if (result._tag === "Right") return
      last = result.left.error
      if (exited()) return yield* Effect.fail(new Error(`${what} exited while starting:\n${log()}`))
      if (Date.now() > deadline)
        return yield* Effect.fail(
          new Error(`${what} did not accept connections in 30 s (${String(last)}):\n${log()}`)
        )
      yield* Effect.sleep(Duration.millis(100))
    }
  })

/** A temporary directory, removed with the scope. */
const tempDir = (prefix: string) =>
  Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), prefix))),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )

export const startPostgres: Effect.Effect<TestDatabase, Error, Scope.Scope> = Effect.gen(function* () {
  const bin = postgresBin()
  if (bin === undefined) return yield* Effect.fail(missing("PostgreSQL (initdb, postgres)", "postgresql"))
  const owner = isRoot() ? userIds("postgres") : undefined
  if (isRoot() && owner === undefined)
    return yield* Effect.fail(
      new Error("running as root, PostgreSQL needs the `postgres` user: apt-get install -y postgresql")
    )
  const dir = yield* tempDir("sms-gw-pg-")
  if (owner !== undefined) chownSync(dir, owner.uid, owner.gid)
  const asOwner = { cwd: dir, ...(owner === undefined ? {} : { uid: owner.uid, gid: owner.gid }) }
  const data = join(dir, "data")
  yield* runToEnd(
    join(bin, "initdb"),
    ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"],
    asOwner
  )
  const port = yield* freePort
  const server = serverProcess(
    join(bin, "postgres"),
    [
      "-D",
      data,
      "-p",
      String(port),
      "-h",
      "127.0.0.1",
      "-k",
      dir,
      // a test database: durability is not what is tested here, speed is welcome
      "-c",
      "fsync=off",
      "-c",
      "synchronous_commit=off",
      "-c",
      "full_page_writes=off"
    ],
    asOwner,
    // fast shutdown: sessions are disconnected, as in a database restart
    "SIGINT"
  )
  yield* Effect.addFinalizer(() => server.stop)
  const { default: pg } = yield* Effect.promise(() => import("pg"))
  const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`
  const ping = async (url: string) => {
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2_000 })
    client.on("error", () => undefined)
    try {
      await client.connect()
      await client.query("SELECT 1")
    } finally {
      await client.end().catch(() => undefined)
    }
  }
  const start = Effect.zipRight(
    server.start,
    waitUntilReady(() => ping(adminUrl), server.exited, server.log, "postgres")
  )
  yield* start
  yield* Effect.tryPromise({
    try: async () => {
      const client = new pg.Client({ connectionString: adminUrl })
      client.on("error", () => undefined)
      await client.connect()
      try {
        await client.query(`CREATE USER ${DB_USER} WITH PASSWORD '${DB_PASSWORD}'`)
        await client.query(`CREATE DATABASE ${DB_NAME} OWNER ${DB_USER}`)
      } finally {
        await client.end()
      }
    },
    catch: (cause) => new Error(`cannot create the test database: ${String(cause)}`)
  })
  return {
    kind: "postgres",
    url: `postgres://${DB_USER}:${DB_PASSWORD}@127.0.0.1:${port}/${DB_NAME}`,
    adminUrl: `postgres://postgres@127.0.0.1:${port}/${DB_NAME}`,
    port,
    stop: server.stop,
    start,
    log: server.log
  } satisfies TestDatabase
})

export const startMariaDb: Effect.Effect<TestDatabase, Error, Scope.Scope> = Effect.gen(function* () {
  const mariadbd = which("mariadbd", ["/usr/sbin/mariadbd", "/usr/sbin/mysqld"])
  const installDb = which("mariadb-install-db", ["/usr/bin/mariadb-install-db", "/usr/bin/mysql_install_db"])
  if (mariadbd === undefined || installDb === undefined)
    return yield* Effect.fail(missing("MariaDB (mariadbd, mariadb-install-db)", "mariadb-server"))
  const dir = yield* tempDir("sms-gw-mariadb-")
  const data = join(dir, "data")
  const asRoot = isRoot() ? ["--user=root"] : []
  yield* runToEnd(
    installDb,
    [
      "--no-defaults",
      `--datadir=${data}`,
      "--auth-root-authentication-method=normal",
      "--skip-test-db",
      ...asRoot
    ],
    { cwd: dir }
  )
  const port = yield* freePort
  const server = serverProcess(
    mariadbd,
    [
      "--no-defaults",
      `--datadir=${data}`,
      `--port=${port}`,
      "--bind-address=127.0.0.1",
      `--socket=${join(dir, "mariadb.sock")}`,
      `--pid-file=${join(dir, "mariadb.pid")}`,
      "--skip-name-resolve",
      "--innodb-flush-log-at-trx-commit=0",
      "--innodb-buffer-pool-size=64M",
      "--skip-log-bin",
      ...asRoot
    ],
    { cwd: dir },
    "SIGTERM"
  )
  yield* Effect.addFinalizer(() => server.stop)
  const { default: mysql } = yield* Effect.promise(() => import("mysql2/promise"))
  const adminConfig = { host: "127.0.0.1", port, user: "root", connectTimeout: 2_000 }
  const ping = async () => {
    const connection = await mysql.createConnection(adminConfig)
    try {
      await connection.query("SELECT 1")
    } finally {
      await connection.end().catch(() => undefined)
    }
  }
  const start = Effect.zipRight(server.start, waitUntilReady(ping, server.exited, server.log, "mariadbd"))
  yield* start
  yield* Effect.tryPromise({
    try: async () => {
      const connection = await mysql.createConnection(adminConfig)
      try {
        await connection.query(`CREATE DATABASE ${DB_NAME} CHARACTER SET utf8mb4`)
        await connection.query(`CREATE USER '${DB_USER}'@'%' IDENTIFIED BY '${DB_PASSWORD}'`)
        await connection.query(`GRANT ALL PRIVILEGES ON ${DB_NAME}.* TO '${DB_USER}'@'%'`)
      } finally {
        await connection.end()
      }
    },
    catch: (cause) => new Error(`cannot create the test database: ${String(cause)}`)
  })
  return {
    kind: "mysql",
    url: `mysql://${DB_USER}:${DB_PASSWORD}@127.0.0.1:${port}/${DB_NAME}`,
    adminUrl: `mysql://root@127.0.0.1:${port}/${DB_NAME}`,
    port,
    stop: server.stop,
    start,
    log: server.log
  } satisfies TestDatabase
})

export const startDatabase = (kind: DatabaseKind) => (kind === "postgres" ? startPostgres : startMariaDb)
