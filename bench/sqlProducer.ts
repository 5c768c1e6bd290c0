/**
 * The benchmark's producer for the SQL outbox intake: `INTAKE=postgres npm run bench` (or `mysql`)
 * inserts rows in the outbox table, as a business application would, instead of publishing on NATS.
 * The database is a throwaway server (the tests' `databases.ts`: temporary data directory, loopback
 * port), the table is made by the role's own `init` (with the NOTIFY trigger on PostgreSQL), and the
 * gateway processes get `OUTBOX_URL`.
 *
 * Row ids are chosen here (1, 2, …), so each row's message id is known before it is inserted and the
 * bench's watcher follows it like a NATS-published message. Besides the bench's own figures
 * (`stages_ms.publish_to_requested` is insert -> `SmsRequested` here), it measures the claim's
 * throughput: rows taken per second while the claimer had at least a full batch waiting.
 *
 *   INTAKE=postgres N=5000 npm run bench            # a burst: the claim's throughput
 *   INTAKE=postgres N=5000 RATE=250 npm run bench   # paced, one row per insert: the latency, woken by NOTIFY
 *   INTAKE=postgres OUTBOX_NOTIFY=0 …               # PostgreSQL without the trigger (polling only)
 *   OUTBOX_POLL_MS=…, OUTBOX_BATCH=…                # the role's settings, passed to the gateway
 */
import { Duration, Effect, type Scope } from "effect"
import { messageIdFor, type MessageId } from "../src/domain/Ids.js"
import { DEFAULT_BATCH, DEFAULT_POLL_MS } from "../src/outbox/Config.js"
import { init } from "../src/outbox/Init.js"
import { defaultMapping } from "../src/outbox/Mapping.js"
import { type DatabaseKind, startDatabase } from "../test/support/databases.js"

export interface SqlIntake {
  readonly kind: DatabaseKind
  /** for the gateway processes */
  readonly env: Readonly<Record<string, string>>
  readonly messageIdOf: (i: number) => MessageId
  /** inserts rows [from, to) in one statement; `publishedAt[i]` is stamped just before */
  readonly insert: (from: number, to: number, publishedAt: Float64Array) => Promise<void>
  /** the claim's figures so far */
  readonly figures: () => Record<string, unknown>
}

const CLIENT_ID = "bench"
const TABLE = "sms_outbox"

/** The SQL producer when `INTAKE` names a database; undefined for the NATS producer. */
export const sqlIntakeFromEnv: Effect.Effect<SqlIntake | undefined, Error, Scope.Scope> = Effect.gen(
  function* () {
    const intake = process.env.INTAKE?.trim().toLowerCase()
    if (intake === undefined || intake === "" || intake === "nats") return undefined
    if (intake !== "postgres" && intake !== "mysql")
      return yield* Effect.fail(new Error(`INTAKE must be nats, postgres or mysql, not ${intake}`))
    const kind: DatabaseKind = intake
    const db = yield* startDatabase(kind)
    const batch = Number(process.env.OUTBOX_BATCH ?? DEFAULT_BATCH)
    const pollMs = Number(process.env.OUTBOX_POLL_MS ?? DEFAULT_POLL_MS)
    // OUTBOX_NOTIFY=0: PostgreSQL without the trigger, to measure the polling alone
    const notify = kind === "postgres" && process.env.OUTBOX_NOTIFY !== "0"
    yield* init(
      {
        url: db.url,
        dialect: kind,
        mapping: defaultMapping(TABLE),
        pollInterval: Duration.millis(pollMs),
        batchSize: batch
      },
      { notify, createTable: true }
    ).pipe(Effect.mapError((error) => new Error(error.message)))

    const query = yield* connection(kind, db.url)
    let inserted = 0
    // (time, rows no longer pending) every 20 ms, with the rows inserted by then. Only in a burst: at
    // a paced RATE the claimer is never a batch behind, and the counting would only load the machine
    // whose latency is being measured (50 table scans a second)
    const paced = Number(process.env.RATE ?? 0) > 0
    const samples: Array<{ at: number; taken: number; inserted: number }> = []
    const sampler = paced
      ? undefined
      : setInterval(() => {
          const before = inserted
          void query(`SELECT count(*) AS n FROM ${TABLE} WHERE status <> 'pending'`, []).then(
            (rows) => samples.push({ at: Date.now(), taken: Number(rows[0]?.n ?? 0), inserted: before }),
            () => undefined
          )
        }, 20)
    yield* Effect.addFinalizer(() => Effect.sync(() => clearInterval(sampler)))

    const placeholder = kind === "postgres" ? (n: number) => `$${n}` : () => "?"
    return {
      kind,
      env: {
        OUTBOX_URL: db.url,
        ...(process.env.OUTBOX_POLL_MS ? { OUTBOX_POLL_MS: process.env.OUTBOX_POLL_MS } : {}),
        ...(process.env.OUTBOX_BATCH ? { OUTBOX_BATCH: process.env.OUTBOX_BATCH } : {})
      },
      messageIdOf: (i) => messageIdFor(CLIENT_ID, `outbox:${TABLE}:${i + 1}`),
      insert: async (from, to, publishedAt) => {
        const values: Array<unknown> = []
        const tuples: Array<string> = []
        for (let i = from; i < to; i++) {
          const n = values.length
          tuples.push(
            `(${placeholder(n + 1)}, ${placeholder(n + 2)}, ${placeholder(n + 3)}, ${placeholder(n + 4)})`
          )
          values.push(i + 1, CLIENT_ID, "+447911123456", `bench message ${i}`)
        }
        const now = Date.now()
        for (let i = from; i < to; i++) publishedAt[i] = now
        await query(
          `INSERT INTO ${TABLE} (id, client_id, recipient, body) VALUES ${tuples.join(", ")}`,
          values
        )
        inserted += to - from
      },
      figures: () => ({
        ...(paced ? {} : claimFigures(samples, batch)),
        intake: kind,
        outbox_notify: notify,
        outbox_poll_ms: pollMs
      })
    }
  }
)

/**
 * Rows taken per second over the sample intervals in which at least a full batch waited (the
 * claimer could not have gone faster for want of rows); null if it was never that far behind.
 */
const claimFigures = (
  samples: ReadonlyArray<{ at: number; taken: number; inserted: number }>,
  batch: number
) => {
  let rows = 0
  let ms = 0
  let maxBacklog = 0
  for (let i = 1; i < samples.length; i++) {
    const previous = samples[i - 1]
    const current = samples[i]
    if (previous === undefined || current === undefined) continue
    const backlog = previous.inserted - previous.taken
    maxBacklog = Math.max(maxBacklog, backlog)
    if (backlog >= batch && current.taken >= previous.taken) {
      rows += current.taken - previous.taken
      ms += current.at - previous.at
    }
  }
  return {
    outbox_claim_rows_per_s: ms > 0 ? Math.round((rows / ms) * 1000) : null,
    outbox_claim_rows_measured: rows,
    outbox_max_backlog_rows: maxBacklog
  }
}

/** A small pool with `?`/`$n` placeholders as the dialect wants. */
const connection = (kind: DatabaseKind, url: string) =>
  Effect.gen(function* () {
    if (kind === "postgres") {
      const { default: pg } = yield* Effect.promise(() => import("pg"))
      const pool = yield* Effect.acquireRelease(
        Effect.sync(() => new pg.Pool({ connectionString: url, max: 4 })),
        (pool) => Effect.promise(() => pool.end().catch(() => undefined))
      )
      pool.on("error", () => undefined)
      pool.on("connect", (client) => client.on("error", () => undefined))
      return async (sql: string, params: ReadonlyArray<unknown>) =>
        (await pool.query(sql, params as Array<unknown>)).rows as Array<Record<string, unknown>>
    }
    const { default: mysql } = yield* Effect.promise(() => import("mysql2/promise"))
    const pool = yield* Effect.acquireRelease(
      Effect.sync(() => mysql.createPool({ uri: url, connectionLimit: 4 })),
      (pool) => Effect.promise(() => pool.end().catch(() => undefined))
    )
    return async (sql: string, params: ReadonlyArray<unknown>) => {
      const [rows] = await pool.query(sql, params as Array<unknown>)
      return (Array.isArray(rows) ? rows : []) as Array<Record<string, unknown>>
    }
  })
