/**
 * The outbox's database port and its two adapters (`pg` for PostgreSQL, `mysql2` for MySQL and
 * MariaDB). The port speaks in the role's terms: claim a batch in one transaction, write statuses,
 * count what is pending, wake up on a notification. The SQL is `Sql.ts`'s; this file only runs it.
 *
 * A claim holds its rows' locks (`FOR UPDATE SKIP LOCKED`) while the batch is stored in JetStream,
 * and marks them in the same transaction. Any failure inside destroys the connection instead of
 * returning it to the pool: the server then aborts the transaction, the rows are pending again, and
 * the next claim derives the same message ids.
 *
 * Its size (over 400 lines) is the port and both adapters side by side, so the two dialects' claims
 * stay in step.
 */
import { Context, Data, Effect, Exit, Schedule, type Scope } from "effect"
import type { Dialect, OutboxConfig } from "./Config.js"
import { maskUrl } from "./Config.js"
import { notifyChannel } from "./Ddl.js"
import { inlineParameters, postgresLiteral } from "./InlineParameters.js"
import type { OutboxRow } from "./RowCommand.js"
import {
  columnsQuery,
  type OutboxSql,
  outboxSql,
  READ_ROLES,
  type RowOutcome,
  schemaProblems,
  type Statement
} from "./Sql.js"
import type { StatusPatch } from "./StatusPatch.js"

export class OutboxDbError extends Data.TaggedError("OutboxDbError")<{
  /** unavailable: cannot connect or the connection broke; timeout; schema: the table or a column is missing */
  readonly reason: "Unavailable" | "Timeout" | "Schema" | "Query"
  readonly message: string
  readonly cause?: unknown
}> {}

interface QueryResult {
  readonly rows: ReadonlyArray<Record<string, unknown>>
  readonly affected: number
}

/** A pooled connection, whatever the driver. */
interface Connection {
  readonly query: (statement: Statement) => Promise<QueryResult>
  /**
   * PostgreSQL: statements in one round trip and one implicit transaction (the simple query
   * protocol, their values written in by the driver); each one's result. Absent where a trip per
   * statement is the only way.
   */
  readonly script?: (statements: ReadonlyArray<Statement>) => Promise<ReadonlyArray<QueryResult>>
  /** back to the pool, or closed when it may be in an unknown state */
  readonly release: (broken: boolean) => void
}

interface Driver {
  readonly connect: () => Promise<Connection>
  readonly begin: string
  readonly end: () => Promise<void>
}

/** How long one statement may take before the connection is given up (a slow database). */
const QUERY_TIMEOUT_MS = 20_000
/** Where a claim's marks go back to when some of its rows were not stored (both dialects). */
const SAVEPOINT = { sql: "SAVEPOINT claim_marks", params: [] }
const BACK_TO_SAVEPOINT = { sql: "ROLLBACK TO SAVEPOINT claim_marks", params: [] }

/** How long a status write waits for a row a claim holds (the claim commits within milliseconds). */
const LOCK_TIMEOUT_MS = 5_000
const CONNECT_TIMEOUT_MS = 5_000

const codeOf = (cause: unknown): string =>
  typeof cause === "object" && cause !== null && "code" in cause
    ? String((cause as { code: unknown }).code)
    : ""

const UNAVAILABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ETIMEDOUT",
  "PROTOCOL_CONNECTION_LOST",
  "ER_SERVER_SHUTDOWN",
  "ER_CON_COUNT_ERROR",
  "57P01", // admin_shutdown
  "57P02",
  "57P03", // cannot_connect_now (starting up, shutting down)
  "53300" // too_many_connections
])
const TIMEOUT_CODES = new Set([
  "PROTOCOL_SEQUENCE_TIMEOUT",
  "ER_LOCK_WAIT_TIMEOUT",
  "57014", // query_canceled: statement_timeout
  "55P03" // lock_not_available: lock_timeout
])
const SCHEMA_CODES = new Set([
  "42P01",
  "42703",
  "3F000",
  "ER_NO_SUCH_TABLE",
  "ER_BAD_FIELD_ERROR",
  "ER_BAD_DB_ERROR"
])

/** The failure's reason, from the driver's error code or message. */
export const reasonOf = (cause: unknown): OutboxDbError["reason"] => {
  const code = codeOf(cause)
  if (UNAVAILABLE_CODES.has(code) || code.startsWith("08")) return "Unavailable"
  if (TIMEOUT_CODES.has(code)) return "Timeout"
  if (SCHEMA_CODES.has(code)) return "Schema"
  const message = cause instanceof Error ? cause.message : String(cause)
  if (/timeout|timed out/i.test(message)) return "Timeout"
  if (/connect|terminat|closed|ended|socket/i.test(message)) return "Unavailable"
  return "Query"
}

const failure = (what: string) => (cause: unknown) =>
  new OutboxDbError({
    reason: reasonOf(cause),
    message: `${what}: ${cause instanceof Error ? cause.message : String(cause)}`,
    cause
  })

// ---------------------------------------------------------------------------------------------
// drivers

const postgresDriver = async (url: string): Promise<Driver> => {
  const { default: pg } = await import("pg")
  const literal = postgresLiteral(pg)
  const pool = new pg.Pool({
    connectionString: url,
    max: 4,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    statement_timeout: QUERY_TIMEOUT_MS,
    query_timeout: QUERY_TIMEOUT_MS + 1_000,
    lock_timeout: LOCK_TIMEOUT_MS,
    // a claimer stuck mid-transaction (its process frozen) must not hold rows for ever
    idle_in_transaction_session_timeout: 60_000,
    keepAlive: true,
    application_name: "sms-gateway-outbox"
  })
  // an idle client losing its server (a restart) is reported here: the pool drops it, nothing to do
  pool.on("error", () => undefined)
  // a checked-out client has no pool listener: the server ending its session between two statements
  // (a restart mid-claim) would be an uncaught 'error'. The next statement fails instead, and the
  // connection is destroyed on release.
  pool.on("connect", (client) => client.on("error", () => undefined))
  return {
    begin: "BEGIN ISOLATION LEVEL READ COMMITTED",
    connect: async () => {
      const client = await pool.connect()
      return {
        query: async (statement) => {
          const result = await client.query(statement.sql, statement.params as Array<unknown>)
          return { rows: result.rows as Array<Record<string, unknown>>, affected: result.rowCount ?? 0 }
        },
        script: async (statements) => {
          const text = statements.map((statement) => inlineParameters(statement, literal)).join(";\n")
          const results: unknown = await client.query(text)
          return (Array.isArray(results) ? results : [results]).map(
            (result: { rows: Array<Record<string, unknown>>; rowCount: number | null }) => ({
              rows: result.rows,
              affected: result.rowCount ?? 0
            })
          )
        },
        release: (broken) => client.release(broken)
      }
    },
    end: () => pool.end()
  }
}

const mysqlDriver = async (url: string): Promise<Driver> => {
  const { default: mysql } = await import("mysql2/promise")
  const pool = mysql.createPool({
    uri: url,
    connectionLimit: 4,
    connectTimeout: CONNECT_TIMEOUT_MS,
    enableKeepAlive: true,
    // DATETIME columns hold UTC (the session's time zone is set to match)
    timezone: "Z",
    supportBigNumbers: true,
    bigNumberStrings: true,
    charset: "utf8mb4_unicode_ci"
  })
  // the session settings every claim relies on, once per physical connection
  const prepared = new WeakSet<object>()
  return {
    // READ COMMITTED: `FOR UPDATE` then locks the rows it returns and no gaps between them, so the
    // application's inserts never wait for a claim
    begin: "START TRANSACTION",
    connect: async () => {
      const conn = await pool.getConnection()
      const physical = conn.connection as unknown as object
      if (!prepared.has(physical)) {
        await conn.query("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        await conn.query(
          `SET time_zone = '+00:00', innodb_lock_wait_timeout = ${Math.ceil(LOCK_TIMEOUT_MS / 1000)}`
        )
        prepared.add(physical)
      }
      return {
        query: async (statement) => {
          const [result] = await conn.query({
            sql: statement.sql,
            values: statement.params as Array<unknown>,
            timeout: QUERY_TIMEOUT_MS
          })
          return Array.isArray(result)
            ? { rows: result as Array<Record<string, unknown>>, affected: 0 }
            : { rows: [], affected: (result as { affectedRows?: number }).affectedRows ?? 0 }
        },
        release: (broken) => (broken ? conn.destroy() : conn.release())
      }
    },
    end: () => pool.end()
  }
}

// ---------------------------------------------------------------------------------------------
// the port

export interface ClaimResult {
  readonly claimed: number
  readonly outcomes: ReadonlyArray<RowOutcome>
}

/** A claim's rows -> each row's outcome, and the step that stores what the rows produced. */
export type ClaimDecision<R> = (rows: ReadonlyArray<OutboxRow>) => Effect.Effect<
  {
    readonly outcomes: ReadonlyArray<RowOutcome>
    /** stores what the rows produced; answers the outcomes of the rows it stored */
    readonly store: Effect.Effect<ReadonlyArray<RowOutcome>, never, R>
  },
  never,
  R
>

export interface OutboxDatabaseService {
  readonly dialect: Dialect
  /** `<table> on <masked url>`, for logs and `/ready` */
  readonly target: string
  /** checks the table and its columns (the statements need their types); fails with reason Schema */
  readonly prepare: Effect.Effect<void, OutboxDbError>
  /**
   * One claim transaction: up to `limit` pending rows, locked, skipping rows other claims hold.
   * `decide` answers each row's outcome and the step that stores what the rows produced; the stored
   * rows are marked in the transaction (how depends on the dialect, see the adapters), which then
   * commits. Rows without a stored outcome stay pending.
   */
  readonly claim: <R>(limit: number, decide: ClaimDecision<R>) => Effect.Effect<ClaimResult, OutboxDbError, R>
  /** writes a batch's statuses (by key, then by message id); answers the rows changed */
  readonly writeStatuses: (patches: ReadonlyArray<StatusPatch>) => Effect.Effect<number, OutboxDbError>
  readonly countPending: Effect.Effect<number, OutboxDbError>
  /** runs statements one after the other on one connection (`outbox init`'s DDL) */
  readonly execute: (statements: ReadonlyArray<string>) => Effect.Effect<void, OutboxDbError>
  /**
   * PostgreSQL: `LISTEN`s on the table's channel for the scope, calling `wake` on each notification
   * and after each (re)connection; reconnects with backoff. MySQL: nothing (polling only).
   */
  readonly listen: (wake: () => void) => Effect.Effect<void, never, Scope.Scope>
}

export class OutboxDatabase extends Context.Tag("sms-gateway/OutboxDatabase")<
  OutboxDatabase,
  OutboxDatabaseService
>() {}

const toRow = (raw: Record<string, unknown>): OutboxRow => {
  const values: Record<string, unknown> = {}
  for (const role of READ_ROLES) if (role in raw) values[role] = raw[role]
  return { key: String(raw.key), values }
}

/** The port over a real database: the pool opens lazily and closes with the scope. */
export const make = (config: OutboxConfig): Effect.Effect<OutboxDatabaseService, never, Scope.Scope> =>
  Effect.gen(function* () {
    const { mapping, dialect } = config
    const driver = yield* Effect.acquireRelease(
      Effect.promise(() => (dialect === "postgres" ? postgresDriver(config.url) : mysqlDriver(config.url))),
      (driver) => Effect.promise(() => driver.end().catch(() => undefined))
    )
    const target = `${mapping.table} on ${maskUrl(config.url)}`
    let sql: ReturnType<typeof outboxSql> | undefined

    const withConnection = <A, E, R>(use: (connection: Connection) => Effect.Effect<A, E, R>) =>
      Effect.acquireUseRelease(
        Effect.tryPromise({ try: driver.connect, catch: failure(`cannot connect to ${target}`) }),
        use,
        (connection, exit) => Effect.sync(() => connection.release(Exit.isFailure(exit)))
      )

    const run = (connection: Connection, statement: Statement, what: string) =>
      Effect.tryPromise({
        try: () => connection.query(statement),
        catch: failure(`${what} (${mapping.table})`)
      })

    /** reads the table's columns and builds the statements for their types (once, then cached) */
    const prepare = withConnection((connection) =>
      Effect.gen(function* () {
        const { rows } = yield* run(
          connection,
          columnsQuery(dialect, mapping.table),
          "cannot read the table's columns"
        )
        const found = rows.map((row) => ({ name: String(row.name), type: String(row.type) }))
        const { problems, info } = schemaProblems(dialect, mapping, found)
        if (problems.length > 0) {
          return yield* new OutboxDbError({ reason: "Schema", message: problems.join("; ") })
        }
        const built = outboxSql(dialect, mapping, info)
        sql = built
        return built
      })
    )

    const statements = Effect.suspend(() => (sql === undefined ? prepare : Effect.succeed(sql)))

    const BEGIN = { sql: driver.begin, params: [] }
    const COMMIT = { sql: "COMMIT", params: [] }

    /**
     * MySQL/MariaDB: the marks are written while the rows' commands are stored (the two took as long
     * as each other in a large claim), behind a savepoint: if some rows were not stored, the marks
     * go back to it and only the stored rows' are written again.
     */
    const claimBesideStore = <R>(
      connection: Connection,
      sqlOf: OutboxSql,
      limit: number,
      decide: ClaimDecision<R>
    ) =>
      Effect.gen(function* () {
        yield* run(connection, BEGIN, "cannot begin a claim")
        const { rows } = yield* run(connection, sqlOf.claim(limit), "cannot claim rows")
        const claimed = rows.map(toRow)
        let outcomes: ReadonlyArray<RowOutcome> = []
        if (claimed.length > 0) {
          const planned = yield* decide(claimed)
          if (planned.outcomes.length > 0) {
            yield* run(connection, SAVEPOINT, "cannot mark claimed rows")
            const marking = run(connection, sqlOf.mark(planned.outcomes), "cannot mark claimed rows")
            ;[, outcomes] = yield* Effect.all([marking, planned.store], { concurrency: 2 })
            if (outcomes.length < planned.outcomes.length) {
              yield* run(connection, BACK_TO_SAVEPOINT, "cannot mark claimed rows")
              if (outcomes.length > 0)
                yield* run(connection, sqlOf.mark(outcomes), "cannot mark claimed rows")
            }
          } else outcomes = yield* planned.store
        }
        yield* run(connection, COMMIT, "cannot commit a claim")
        return { claimed: claimed.length, outcomes }
      })

    /**
     * PostgreSQL: two round trips, the transaction's start with its locking select, then the stored
     * rows' marks with the commit; the store between them. Most rows woken by NOTIFY at a steady rate
     * find a claim in flight and wait for it, so its trips are their latency (five trips before).
     * Only stored rows are ever marked: no savepoint.
     */
    const claimInTwoTrips = <R>(
      script: NonNullable<Connection["script"]>,
      sqlOf: OutboxSql,
      limit: number,
      decide: ClaimDecision<R>
    ) =>
      Effect.gen(function* () {
        const opened = yield* trip(script, [BEGIN, sqlOf.claim(limit)], "cannot claim rows")
        const claimed = (opened[1]?.rows ?? []).map(toRow)
        let outcomes: ReadonlyArray<RowOutcome> = []
        if (claimed.length > 0) outcomes = yield* Effect.flatMap(decide(claimed), (planned) => planned.store)
        const closing = outcomes.length > 0 ? [sqlOf.mark(outcomes), COMMIT] : [COMMIT]
        yield* trip(script, closing, "cannot mark claimed rows and commit")
        return { claimed: claimed.length, outcomes }
      })

    const trip = (script: NonNullable<Connection["script"]>, list: ReadonlyArray<Statement>, what: string) =>
      Effect.tryPromise({ try: () => script(list), catch: failure(`${what} (${mapping.table})`) })

    const claim: OutboxDatabaseService["claim"] = (limit, decide) =>
      Effect.flatMap(statements, (sqlOf) =>
        withConnection((connection) =>
          connection.script === undefined
            ? claimBesideStore(connection, sqlOf, limit, decide)
            : claimInTwoTrips(connection.script, sqlOf, limit, decide)
        )
      )

    const writeStatuses = (patches: ReadonlyArray<StatusPatch>) =>
      Effect.flatMap(statements, (sqlOf) => {
        // by key first: it records message ids that the writes by message id may then find
        const writes = [
          sqlOf.patchByKey(patches.filter((p) => p.key !== undefined)),
          sqlOf.patchByMessageId(patches.filter((p) => p.key === undefined))
        ].filter((statement): statement is Statement => statement !== undefined)
        if (writes.length === 0) return Effect.succeed(0)
        const affected = (results: ReadonlyArray<QueryResult>) =>
          results.reduce((total, result) => total + result.affected, 0)
        return withConnection((connection) =>
          // PostgreSQL: both in one round trip
          connection.script === undefined
            ? Effect.map(
                Effect.forEach(writes, (statement) => run(connection, statement, "cannot write statuses")),
                affected
              )
            : Effect.map(trip(connection.script, writes, "cannot write statuses"), affected)
        )
      })

    const countPending = Effect.flatMap(statements, (sqlOf) =>
      withConnection((connection) =>
        Effect.map(run(connection, sqlOf.countPending, "cannot count pending rows"), ({ rows }) =>
          Number(rows[0]?.n ?? 0)
        )
      )
    )

    const execute = (sqlTexts: ReadonlyArray<string>) =>
      withConnection((connection) =>
        Effect.forEach(sqlTexts, (text) => run(connection, { sql: text, params: [] }, "cannot run DDL"), {
          discard: true
        })
      )

    const listen = (wake: () => void) =>
      dialect === "postgres" ? listenPostgres(config.url, notifyChannel(mapping.table), wake) : Effect.void

    return {
      dialect,
      target,
      prepare: Effect.asVoid(prepare),
      claim,
      writeStatuses,
      countPending,
      execute,
      listen
    } satisfies OutboxDatabaseService
  })

/**
 * A dedicated connection `LISTEN`ing on the channel, for the scope; a lost connection (a database
 * restart) is replaced with backoff, and each new one wakes the role once (notifications sent while
 * it was away are lost; polling would find their rows anyway).
 */
const listenPostgres = (
  url: string,
  channel: string,
  wake: () => void
): Effect.Effect<void, never, Scope.Scope> => {
  const session = Effect.acquireUseRelease(
    Effect.tryPromise({
      try: async () => {
        const { default: pg } = await import("pg")
        const client = new pg.Client({
          connectionString: url,
          connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
          keepAlive: true,
          application_name: "sms-gateway-outbox-listen"
        })
        // errors before `connect` settles reject it; afterwards they end the session below
        client.on("error", () => undefined)
        await client.connect()
        return client
      },
      catch: failure("cannot connect to LISTEN")
    }),
    (client) =>
      Effect.async<void, OutboxDbError>((resume) => {
        client.on("notification", () => wake())
        const ended = (cause: unknown) => resume(Effect.fail(failure("the LISTEN connection ended")(cause)))
        client.on("error", ended)
        client.on("end", () => ended(new Error("connection ended")))
        client.query(`LISTEN "${channel.replaceAll('"', '""')}"`).then(() => wake(), ended)
      }),
    (client) => Effect.promise(() => client.end().catch(() => undefined))
  )
  return Effect.forkScoped(
    session.pipe(
      Effect.tapError((error) =>
        Effect.logDebug("outbox LISTEN connection lost; reconnecting", error.message)
      ),
      Effect.retry({ schedule: listenBackoff }),
      Effect.ignore
    )
  ).pipe(Effect.asVoid)
}

/** Reconnects of the LISTEN connection: quickly at first, then every 5 s while the database is away. */
const listenBackoff = Schedule.exponential("100 millis", 2).pipe(
  Schedule.union(Schedule.spaced("5 seconds")),
  Schedule.jittered
)
