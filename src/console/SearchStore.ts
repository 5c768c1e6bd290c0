/**
 * The console's queryable read model: an SQLite file (better-sqlite3) each HTTP process builds from
 * the events for itself (`SearchProjection`, run by `SearchProjector`). The KV read models answer by
 * key only; listing and filtering a million messages needs indexes.
 *
 * - `messages`: one row per message, its `seq` the order the list is shown in: the request time in
 *   milliseconds × 1024 plus a slot (`seqFor`), so "newest first" and a time range are both a range
 *   of the primary key, and every index (which ends with it) hands rows over already in that order.
 * - `recipients`: a contentless FTS5 table with the trigram tokenizer over the recipient's digits,
 *   rowid = `seq`: "any part of the number" is an index lookup, not a scan.
 * - `phones`: phone numbers' status (the inactive ones are the console's list).
 * - `activity`, `latency`: events counted per 10-second bucket, for the overview and provider pages.
 * - `meta`: the schema version and the position applied, written in the same transaction as the
 *   rows: the file and its checkpoint can never disagree, and a deleted file is rebuilt from 0.
 *
 * better-sqlite3 is synchronous: a query holds this process's event loop for as long as it runs,
 * which the indexes keep to milliseconds (`bench/console-search.ts`).
 */
import { mkdirSync } from "node:fs"
import { dirname } from "node:path"
import Database from "better-sqlite3"
import { Context, Effect, Layer } from "effect"

/** A file of another version is dropped and rebuilt from the events. */
export const SCHEMA_VERSION = 1

export const MESSAGE_STATUSES = [
  "requested",
  "dispatched",
  "retrying",
  "delivered",
  "failed",
  "unknown"
] as const
export type MessageStatus = (typeof MESSAGE_STATUSES)[number]

export interface MessageRow {
  readonly seq: number
  readonly messageId: string
  readonly clientId: string
  readonly status: MessageStatus
  /** E.164 */
  readonly recipient: string
  readonly provider: string | null
  readonly attempts: number
  readonly idempotencyKey: string
  readonly trackingId: string | null
  /** epoch milliseconds */
  readonly requestedAt: number
  readonly dispatchedAt: number | null
  readonly deliveredAt: number | null
  readonly failedAt: number | null
  readonly failureReason: string | null
  readonly lastError: string | null
  /** position of the last event applied */
  readonly position: number
}

export interface PhoneRow {
  readonly number: string
  readonly status: "active" | "inactive"
  readonly since: number
  readonly reason: string
  readonly position: number
}

/** Slots per millisecond in `seq`: 2^51 at year 2100 stays an exact double. */
export const SLOTS_PER_MS = 1024

/** The first `seq` of a millisecond: time ranges are ranges of `seq`. */
export const seqAt = (ms: number): number => Math.floor(ms) * SLOTS_PER_MS

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
  seq INTEGER PRIMARY KEY,
  message_id TEXT NOT NULL UNIQUE,
  client_id TEXT NOT NULL,
  status TEXT NOT NULL,
  recipient TEXT NOT NULL,
  provider TEXT,
  attempts INTEGER NOT NULL,
  idempotency_key TEXT NOT NULL,
  tracking_id TEXT,
  requested_at INTEGER NOT NULL,
  dispatched_at INTEGER,
  delivered_at INTEGER,
  failed_at INTEGER,
  failure_reason TEXT,
  last_error TEXT,
  position INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_status ON messages (status);
CREATE INDEX IF NOT EXISTS messages_client ON messages (client_id);
CREATE INDEX IF NOT EXISTS messages_client_status ON messages (client_id, status);
CREATE INDEX IF NOT EXISTS messages_provider ON messages (provider);
CREATE INDEX IF NOT EXISTS messages_provider_status ON messages (provider, status);
CREATE INDEX IF NOT EXISTS messages_idempotency_key ON messages (idempotency_key);
CREATE INDEX IF NOT EXISTS messages_tracking_id ON messages (tracking_id) WHERE tracking_id IS NOT NULL;
CREATE VIRTUAL TABLE IF NOT EXISTS recipients USING fts5 (
  digits, content = '', contentless_delete = 1, tokenize = 'trigram'
);
CREATE TABLE IF NOT EXISTS phones (
  number TEXT PRIMARY KEY,
  status TEXT NOT NULL,
  since INTEGER NOT NULL,
  reason TEXT NOT NULL,
  position INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS phones_inactive ON phones (since) WHERE status = 'inactive';
CREATE TABLE IF NOT EXISTS activity (
  bucket INTEGER NOT NULL,
  status TEXT NOT NULL,
  provider TEXT NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY (bucket, status, provider)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS latency (
  bucket INTEGER NOT NULL,
  kind TEXT NOT NULL,
  provider TEXT NOT NULL,
  le INTEGER NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY (bucket, kind, provider, le)
) WITHOUT ROWID;
`

const TABLES = ["messages", "recipients", "phones", "activity", "latency", "meta"] as const

/** A row as SQLite returns it (snake case). */
interface StoredMessage {
  seq: number
  message_id: string
  client_id: string
  status: MessageStatus
  recipient: string
  provider: string | null
  attempts: number
  idempotency_key: string
  tracking_id: string | null
  requested_at: number
  dispatched_at: number | null
  delivered_at: number | null
  failed_at: number | null
  failure_reason: string | null
  last_error: string | null
  position: number
}

export const fromStored = (row: StoredMessage): MessageRow => ({
  seq: row.seq,
  messageId: row.message_id,
  clientId: row.client_id,
  status: row.status,
  recipient: row.recipient,
  provider: row.provider,
  attempts: row.attempts,
  idempotencyKey: row.idempotency_key,
  trackingId: row.tracking_id,
  requestedAt: row.requested_at,
  dispatchedAt: row.dispatched_at,
  deliveredAt: row.delivered_at,
  failedAt: row.failed_at,
  failureReason: row.failure_reason,
  lastError: row.last_error,
  position: row.position
})

/** A statement with its SQL and parameters, as `SearchQuery` builds them. */
export interface Query {
  readonly sql: string
  readonly params: ReadonlyArray<string | number>
}

/** The writes one batch of events makes, all in one transaction with the new position. */
export interface Writes {
  readonly messageAt: (messageId: string) => MessageRow | undefined
  /** a new message: its `seq` is taken here (the first free slot of its millisecond) */
  readonly insertMessage: (row: Omit<MessageRow, "seq">, slot: number) => MessageRow
  readonly updateMessage: (row: MessageRow) => void
  readonly phoneAt: (number: string) => PhoneRow | undefined
  readonly putPhone: (row: PhoneRow) => void
  readonly count: (bucket: number, status: string, provider: string, n: number) => void
  readonly countLatency: (bucket: number, kind: string, provider: string, le: number) => void
}

export interface SearchStoreService {
  /** where the file is (`:memory:` for none) */
  readonly file: string
  /** the position of the last event applied; 0 for a new file */
  readonly position: () => number
  /** runs `write` and moves the position to `upTo` (never back) in one transaction */
  readonly transaction: (upTo: number, write: (writes: Writes) => void) => void
  /** forgets everything: the position is 0 again */
  readonly reset: () => void
  /** drops activity and latency buckets before `bucket` */
  readonly prune: (beforeBucket: number) => void
  readonly messages: (query: Query) => ReadonlyArray<MessageRow>
  /** rows one at a time, for an export of any size */
  readonly iterateMessages: (query: Query) => IterableIterator<MessageRow>
  readonly rows: <A>(query: Query) => ReadonlyArray<A>
  readonly close: () => void
}

const openDatabase = (file: string) => {
  if (file !== ":memory:") mkdirSync(dirname(file), { recursive: true })
  const db = new Database(file)
  db.pragma("journal_mode = WAL")
  // the events stay in the event store: a power cut can cost the last commits, never their consistency
  // (the position is in the same transactions), and they are replayed
  db.pragma("synchronous = NORMAL")
  db.pragma("temp_store = MEMORY")
  db.pragma("cache_size = -65536")
  db.pragma("busy_timeout = 5000")
  return db
}

const versionOf = (db: Database.Database): number | undefined => {
  const hasMeta = db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'").get()
  if (hasMeta === undefined) return undefined
  const row = db.prepare("SELECT value FROM meta WHERE key = 'version'").get() as
    | { value: number }
    | undefined
  return row?.value
}

const dropAll = (db: Database.Database) => {
  for (const table of TABLES) db.exec(`DROP TABLE IF EXISTS ${table}`)
}

export const makeStore = (file: string): SearchStoreService => {
  const db = openDatabase(file)
  const version = versionOf(db)
  if (version !== undefined && version !== SCHEMA_VERSION) dropAll(db)
  db.exec(SCHEMA)
  db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('version', ?)").run(SCHEMA_VERSION)
  db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('position', 0)").run()

  const readPosition = db.prepare("SELECT value FROM meta WHERE key = 'position'")
  const movePosition = db.prepare("UPDATE meta SET value = max(value, ?) WHERE key = 'position'")
  const messageById = db.prepare("SELECT * FROM messages WHERE message_id = ?")
  const seqTaken = db.prepare("SELECT 1 FROM messages WHERE seq = ?").pluck()
  // positional parameters: binding by name cost a third more per row
  const insertMessage = db.prepare(
    "INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
  )
  const insertRecipient = db.prepare("INSERT INTO recipients (rowid, digits) VALUES (?, ?)")
  const updateMessage = db.prepare(
    `UPDATE messages SET status = ?, provider = ?, attempts = ?, dispatched_at = ?, delivered_at = ?,
       failed_at = ?, failure_reason = ?, last_error = ?, position = ?
     WHERE seq = ?`
  )
  const phoneByNumber = db.prepare("SELECT * FROM phones WHERE number = ?")
  const putPhone = db.prepare(
    "INSERT OR REPLACE INTO phones VALUES (@number, @status, @since, @reason, @position)"
  )
  const count = db.prepare(
    `INSERT INTO activity VALUES (?, ?, ?, ?)
     ON CONFLICT (bucket, status, provider) DO UPDATE SET n = n + excluded.n`
  )
  const countLatency = db.prepare(
    `INSERT INTO latency VALUES (?, ?, ?, ?, 1)
     ON CONFLICT (bucket, kind, provider, le) DO UPDATE SET n = n + 1`
  )
  const pruneActivity = db.prepare("DELETE FROM activity WHERE bucket < ?")
  const pruneLatency = db.prepare("DELETE FROM latency WHERE bucket < ?")

  const writes: Writes = {
    messageAt: (messageId) => {
      const row = messageById.get(messageId) as StoredMessage | undefined
      return row === undefined ? undefined : fromStored(row)
    },
    insertMessage: (row, slot) => {
      // the first free slot of the request's millisecond, from one derived from the id (so that a
      // rebuild, which inserts in the same order, gives every message the same seq)
      let seq = seqAt(row.requestedAt) + (slot % SLOTS_PER_MS)
      while (seqTaken.get(seq) !== undefined) seq++
      const stored = { ...row, seq }
      insertMessage.run(
        seq,
        row.messageId,
        row.clientId,
        row.status,
        row.recipient,
        row.provider,
        row.attempts,
        row.idempotencyKey,
        row.trackingId,
        row.requestedAt,
        row.dispatchedAt,
        row.deliveredAt,
        row.failedAt,
        row.failureReason,
        row.lastError,
        row.position
      )
      insertRecipient.run(seq, row.recipient.replace(/\D/g, ""))
      return stored
    },
    updateMessage: (row) => {
      updateMessage.run(
        row.status,
        row.provider,
        row.attempts,
        row.dispatchedAt,
        row.deliveredAt,
        row.failedAt,
        row.failureReason,
        row.lastError,
        row.position,
        row.seq
      )
    },
    phoneAt: (number) => phoneByNumber.get(number) as PhoneRow | undefined,
    putPhone: (row) => {
      putPhone.run(row)
    },
    count: (bucket, status, provider, n) => {
      count.run(bucket, status, provider, n)
    },
    countLatency: (bucket, kind, provider, le) => {
      countLatency.run(bucket, kind, provider, le)
    }
  }

  const transaction = db.transaction((upTo: number, write: (writes: Writes) => void) => {
    write(writes)
    movePosition.run(upTo)
  })

  const reset = db.transaction(() => {
    dropAll(db)
    db.exec(SCHEMA)
    db.prepare("INSERT INTO meta (key, value) VALUES ('version', ?)").run(SCHEMA_VERSION)
    db.prepare("INSERT INTO meta (key, value) VALUES ('position', 0)").run()
  })

  // statements are compiled once per distinct SQL text: the filters make a few dozen shapes
  const prepared = new Map<string, Database.Statement>()
  const statement = (sql: string) => {
    let found = prepared.get(sql)
    if (found === undefined) {
      if (prepared.size > 500) prepared.clear()
      found = db.prepare(sql)
      prepared.set(sql, found)
    }
    return found
  }

  return {
    file,
    position: () => (readPosition.get() as { value: number }).value,
    transaction: (upTo, write) => transaction(upTo, write),
    reset: () => {
      prepared.clear()
      reset()
    },
    prune: (beforeBucket) => {
      pruneActivity.run(beforeBucket)
      pruneLatency.run(beforeBucket)
    },
    messages: (query) =>
      (statement(query.sql).all(...query.params) as Array<StoredMessage>).map((row) => fromStored(row)),
    iterateMessages: function* (query) {
      for (const row of statement(query.sql).iterate(...query.params)) yield fromStored(row as StoredMessage)
    },
    rows: <A>(query: Query) => statement(query.sql).all(...query.params) as Array<A>,
    close: () => db.close()
  }
}

export class SearchStore extends Context.Tag("sms-gateway/ConsoleSearchStore")<
  SearchStore,
  SearchStoreService
>() {
  /** The file at `file` (created, or dropped and rebuilt when of another schema version). */
  static layer = (file: string) =>
    Layer.scoped(
      SearchStore,
      Effect.acquireRelease(
        Effect.sync(() => makeStore(file)),
        (store) => Effect.sync(() => store.close())
      )
    )

  /** The same store in memory: for tests, and for a process given no data folder. */
  static layerMemory = SearchStore.layer(":memory:")
}
