/**
 * The application's side of the outbox in tests: plain SQL against the test database (inserting
 * rows as a business application would, reading them back), and the role's settings for it.
 */
import { Duration, Effect, type Scope } from "effect"
import { DEFAULT_BATCH, type OutboxConfig } from "../../src/outbox/Config.js"
import { defaultMapping, type Mapping } from "../../src/outbox/Mapping.js"
import type { TestDatabase } from "../support/databases.js"

export interface Sql {
  /** `?` placeholders in both dialects (rewritten to `$n` for PostgreSQL) */
  readonly query: (
    text: string,
    params?: ReadonlyArray<unknown>
  ) => Effect.Effect<ReadonlyArray<Record<string, unknown>>>
}

/** A connection pool to `url` for the scope. */
export const sqlClient = (kind: TestDatabase["kind"], url: string): Effect.Effect<Sql, never, Scope.Scope> =>
  Effect.gen(function* () {
    if (kind === "postgres") {
      const { default: pg } = yield* Effect.promise(() => import("pg"))
      const pool = yield* Effect.acquireRelease(
        Effect.sync(() => {
          const created = new pg.Pool({ connectionString: url, max: 3 })
          created.on("error", () => undefined)
          // a session ended by a database restart while checked out: the next query fails instead
          created.on("connect", (client) => client.on("error", () => undefined))
          return created
        }),
        (pool) => Effect.promise(() => pool.end().catch(() => undefined))
      )
      return {
        query: (text, params = []) => {
          let n = 0
          const sql = text.replace(/\?/g, () => `$${++n}`)
          return Effect.promise(() => pool.query(sql, params as Array<unknown>)).pipe(
            Effect.map((result) => result.rows as ReadonlyArray<Record<string, unknown>>)
          )
        }
      }
    }
    const { default: mysql } = yield* Effect.promise(() => import("mysql2/promise"))
    const pool = yield* Effect.acquireRelease(
      Effect.sync(() =>
        mysql.createPool({
          uri: url,
          connectionLimit: 3,
          timezone: "Z",
          supportBigNumbers: true,
          bigNumberStrings: true
        })
      ),
      (pool) => Effect.promise(() => pool.end().catch(() => undefined))
    )
    return {
      query: (text, params = []) =>
        Effect.promise(() => pool.query(text, params as Array<unknown>)).pipe(
          Effect.map(([rows]) =>
            Array.isArray(rows) ? (rows as ReadonlyArray<Record<string, unknown>>) : []
          )
        )
    }
  })

export interface NewRow {
  readonly clientId?: string
  readonly to?: string | null
  readonly body?: string | null
  readonly from?: string
  readonly providers?: string
  readonly metadata?: string
  readonly validUntil?: string
}

/** Inserts rows into the default table in one statement, as an application would; answers their ids. */
export const insertRows = (
  sql: Sql,
  kind: TestDatabase["kind"],
  rows: ReadonlyArray<NewRow>,
  table = "sms_outbox"
) =>
  Effect.gen(function* () {
    const columns = ["client_id", "recipient", "body", "sender", "providers", "metadata", "valid_until"]
    const values = rows.flatMap((row) => [
      row.clientId ?? "shop",
      row.to ?? null,
      row.body ?? null,
      row.from ?? null,
      row.providers ?? null,
      row.metadata ?? null,
      row.validUntil ?? null
    ])
    const tuple = `(${columns.map(() => "?").join(", ")})`
    const text = `INSERT INTO ${table} (${columns.join(", ")}) VALUES ${rows.map(() => tuple).join(", ")}`
    if (kind === "postgres") {
      const inserted = yield* sql.query(`${text} RETURNING id`, values)
      return inserted.map((row) => String(row.id))
    }
    yield* sql.query(text, values)
    // AUTO_INCREMENT ids of one multi-row insert are consecutive from LAST_INSERT_ID()
    const [last] = yield* sql.query("SELECT LAST_INSERT_ID() AS id")
    const first = Number(last?.id)
    return rows.map((_, i) => String(first + i))
  })

export interface OutboxRowView {
  readonly id: string
  readonly status: string
  readonly message_id: string | null
  readonly provider: string | null
  readonly provider_message_id: string | null
  readonly error: string | null
  readonly last_event_position: string | null
  readonly queued_at: Date | null
  readonly dispatched_at: Date | null
  readonly completed_at: Date | null
}

export const readRows = (sql: Sql, ids: ReadonlyArray<string>, table = "sms_outbox") =>
  Effect.map(
    sql.query(
      `SELECT id, status, message_id, provider, provider_message_id, error, last_event_position, queued_at, dispatched_at, completed_at FROM ${table} WHERE id IN (${ids.map(() => "?").join(", ")}) ORDER BY id`,
      ids
    ),
    (rows) =>
      rows.map(
        (row): OutboxRowView => ({
          id: String(row.id),
          status: String(row.status),
          message_id: row.message_id === null ? null : String(row.message_id),
          provider: (row.provider as string | null) ?? null,
          provider_message_id: (row.provider_message_id as string | null) ?? null,
          error: (row.error as string | null) ?? null,
          last_event_position: row.last_event_position === null ? null : String(row.last_event_position),
          queued_at: (row.queued_at as Date | null) ?? null,
          dispatched_at: (row.dispatched_at as Date | null) ?? null,
          completed_at: (row.completed_at as Date | null) ?? null
        })
      )
  )

/** The role's settings for a test database: the default table unless a mapping is given. */
export const configFor = (
  db: TestDatabase,
  options: { readonly mapping?: Mapping; readonly pollMs?: number; readonly batchSize?: number } = {}
): OutboxConfig => ({
  url: db.url,
  dialect: db.kind,
  mapping: options.mapping ?? defaultMapping(),
  pollInterval: Duration.millis(options.pollMs ?? 100),
  batchSize: options.batchSize ?? DEFAULT_BATCH
})

/** Until `check` holds, every 100 ms, at most `within`; fails with the last value seen. */
export const waitUntil = <A, E, R>(
  what: string,
  read: Effect.Effect<A, E, R>,
  check: (value: A) => boolean,
  within: Duration.DurationInput = "30 seconds"
) =>
  Effect.gen(function* () {
    const deadline = Date.now() + Duration.toMillis(Duration.decode(within))
    for (;;) {
      const value = yield* read
      if (check(value)) return value
      if (Date.now() > deadline)
        return yield* Effect.fail(
          new Error(`${what}: not within ${Duration.format(within)}; last: ${JSON.stringify(value)}`)
        )
      yield* Effect.sleep("100 millis")
    }
  })
