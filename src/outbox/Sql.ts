/**
 * The SQL of the outbox, per dialect: pure functions from the mapping (and the column types found in
 * the catalog) to statement text and parameters. Identifiers were checked by the mapping and are
 * quoted here; every value is a parameter.
 *
 * Batch-first: a claim is one `SELECT … FOR UPDATE SKIP LOCKED` and one `UPDATE` of every row it
 * took; a batch of events is one `UPDATE` by primary key and one by message id. PostgreSQL gets its
 * rows as typed arrays (`unnest($1::bigint[], …)`: one statement text for any batch size);
 * MySQL/MariaDB get `CASE <key> WHEN ? THEN ? …` (a joined derived table of literals there can
 * trip over collations, and comparing a key with literals keeps its index).
 */
import type { Dialect } from "./Config.js"
import type { ColumnRole, Mapping } from "./Mapping.js"
import type { StatusPatch } from "./StatusPatch.js"

export interface Statement {
  readonly sql: string
  readonly params: ReadonlyArray<unknown>
}

/** What the catalog said about the table: each mapped column's SQL type. */
export interface TableInfo {
  /** column (as mapped) -> its type: `format_type` on PostgreSQL, `COLUMN_TYPE` on MySQL */
  readonly types: ReadonlyMap<string, string>
}

/** A claimed row's outcome, written in the claim's transaction. */
export type RowOutcome =
  | { readonly _tag: "Queued"; readonly key: string; readonly messageId: string }
  | { readonly _tag: "Rejected"; readonly key: string; readonly error: string }

/** The roles read from a claimed row (the command's fields). */
export const READ_ROLES: ReadonlyArray<ColumnRole> = [
  "clientId",
  "to",
  "from",
  "body",
  "providers",
  "validUntil",
  "metadata"
]

export interface OutboxSql {
  readonly claim: (limit: number) => Statement
  readonly mark: (outcomes: ReadonlyArray<RowOutcome>) => Statement
  /** patches that know their row's key; undefined when there is nothing to write */
  readonly patchByKey: (patches: ReadonlyArray<StatusPatch>) => Statement | undefined
  readonly patchByMessageId: (patches: ReadonlyArray<StatusPatch>) => Statement | undefined
  readonly countPending: Statement
}

export const quoteIdentifier = (dialect: Dialect, name: string): string =>
  dialect === "postgres" ? `"${name.replaceAll('"', '""')}"` : `\`${name.replaceAll("`", "``")}\``

/** `schema.table` quoted part by part. */
export const quoteTable = (dialect: Dialect, table: string): string =>
  table
    .split(".")
    .map((part) => quoteIdentifier(dialect, part))
    .join(".")

/** The catalog query for a table's columns: (name, type) rows; none when the table does not exist. */
export const columnsQuery = (dialect: Dialect, table: string): Statement => {
  if (dialect === "postgres") {
    return {
      sql:
        "SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type FROM pg_attribute a " +
        "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped",
      params: [quoteTable(dialect, table)]
    }
  }
  const [schema, name] = table.includes(".") ? table.split(".") : [undefined, table]
  return {
    sql:
      "SELECT COLUMN_NAME AS name, COLUMN_TYPE AS type FROM information_schema.COLUMNS " +
      "WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?",
    params: [schema ?? null, name]
  }
}

/**
 * What is wrong between the mapping and the table the catalog describes (empty when they agree). A
 * type is looked up by the column name as mapped (PostgreSQL: exactly; MySQL: case-insensitively).
 */
export const schemaProblems = (
  dialect: Dialect,
  mapping: Mapping,
  found: ReadonlyArray<{ readonly name: string; readonly type: string }>
): { readonly problems: ReadonlyArray<string>; readonly info: TableInfo } => {
  const types = new Map<string, string>()
  if (found.length === 0) {
    return {
      problems: [`table ${mapping.table} does not exist (create it with \`sms-gateway outbox init\`)`],
      info: { types }
    }
  }
  const byName = new Map(found.map((c) => [dialect === "postgres" ? c.name : c.name.toLowerCase(), c.type]))
  const missing: Array<string> = []
  for (const [role, column] of Object.entries(mapping.columns)) {
    if (column === undefined) continue
    const type = byName.get(dialect === "postgres" ? column : column.toLowerCase())
    if (type === undefined) missing.push(`${column} (${role})`)
    else types.set(column, type)
  }
  return {
    problems:
      missing.length === 0
        ? []
        : [`table ${mapping.table} has no column ${missing.join(", ")}: see OUTBOX_MAPPING`],
    info: { types }
  }
}

/** Builds the statements of one dialect for one mapped table. */
export const outboxSql = (dialect: Dialect, mapping: Mapping, info: TableInfo): OutboxSql =>
  dialect === "postgres" ? postgresSql(mapping, info) : mysqlSql(mapping, info)

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/** A type the catalog gave, as written after `::` (checked: it comes from our own catalog query). */
const castable = (type: string): string => {
  if (!/^[A-Za-z0-9_ (),."[\]]+$/.test(type)) throw new Error(`unexpected column type ${type}`)
  return type
}

const postgresSql = (mapping: Mapping, info: TableInfo): OutboxSql => {
  const q = (name: string) => quoteIdentifier("postgres", name)
  const table = quoteTable("postgres", mapping.table)
  const col = (role: ColumnRole) => mapping.columns[role]
  const has = (role: ColumnRole) => col(role) !== undefined
  const typeOf = (role: ColumnRole) => castable(info.types.get(col(role) ?? "") ?? "text")
  const id = q(mapping.columns.id)
  const status = q(mapping.columns.status)

  /** `unnest($1::t1[], $2::t2[], …) AS v(a, b, …)` over the given (alias, role, values) triples */
  const unnest = (arrays: ReadonlyArray<readonly [string, ColumnRole, ReadonlyArray<unknown>]>) => ({
    from: `unnest(${arrays.map(([, role], i) => `$${i + 1}::${typeOf(role)}[]`).join(", ")}) AS v(${arrays.map(([alias]) => alias).join(", ")})`,
    params: arrays.map(([, , values]) => values)
  })

  const patch = (patches: ReadonlyArray<StatusPatch>, byKey: boolean): Statement | undefined => {
    if (patches.length === 0) return undefined
    const arrays: Array<readonly [string, ColumnRole, ReadonlyArray<unknown>]> = [
      byKey
        ? ["key", "id", patches.map((p) => p.key)]
        : ["message_id", "messageId", patches.map((p) => p.messageId)],
      ["position", "lastEventPosition", patches.map((p) => p.position)],
      ["status", "status", patches.map((p) => mapping.statuses[p.status])]
    ]
    const sets = [`${status} = v.status`, `${q(mapping.columns.lastEventPosition)} = v.position`]
    if (byKey) {
      arrays.push(["message_id", "messageId", patches.map((p) => p.messageId)])
      sets.push(`${q(mapping.columns.messageId)} = v.message_id`)
    }
    const optional: ReadonlyArray<readonly [ColumnRole, string, (p: StatusPatch) => unknown, boolean]> = [
      ["provider", "provider", (p) => p.provider ?? null, true],
      ["providerMessageId", "provider_message_id", (p) => p.providerMessageId ?? null, true],
      ["error", "error", (p) => p.error, false],
      ["dispatchedAt", "dispatched_at", (p) => p.dispatchedAt ?? null, true],
      ["completedAt", "completed_at", (p) => p.completedAt, false]
    ]
    for (const [role, alias, value, keepOld] of optional) {
      const column = col(role)
      if (column === undefined) continue
      arrays.push([alias, role, patches.map(value)])
      sets.push(keepOld ? `${q(column)} = COALESCE(v.${alias}, t.${q(column)})` : `${q(column)} = v.${alias}`)
    }
    if (byKey && has("queuedAt"))
      sets.push(`${q(col("queuedAt") ?? "")} = COALESCE(t.${q(col("queuedAt") ?? "")}, now())`)
    if (has("updatedAt")) sets.push(`${q(col("updatedAt") ?? "")} = now()`)
    const { from, params } = unnest(arrays)
    const position = q(mapping.columns.lastEventPosition)
    const match = byKey ? `t.${id} = v.key` : `t.${q(mapping.columns.messageId)} = v.message_id`
    return {
      sql: `UPDATE ${table} AS t SET ${sets.join(", ")} FROM ${from} WHERE ${match} AND (t.${position} IS NULL OR t.${position} < v.position)`,
      params
    }
  }

  return {
    claim: (limit) => ({
      sql:
        `SELECT ${id}::text AS "key"${READ_ROLES.filter(has)
          .map((role) => `, ${q(col(role) ?? "")} AS "${role}"`)
          .join("")} ` + `FROM ${table} WHERE ${status} = $1 ORDER BY ${id} LIMIT $2 FOR UPDATE SKIP LOCKED`,
      params: [mapping.statuses.pending, limit]
    }),
    mark: (outcomes) => {
      const arrays: Array<readonly [string, ColumnRole, ReadonlyArray<unknown>]> = [
        ["key", "id", outcomes.map((o) => o.key)],
        [
          "status",
          "status",
          outcomes.map((o) => mapping.statuses[o._tag === "Queued" ? "queued" : "rejected"])
        ],
        ["message_id", "messageId", outcomes.map((o) => (o._tag === "Queued" ? o.messageId : null))]
      ]
      const sets = [`${status} = v.status`, `${q(mapping.columns.messageId)} = v.message_id`]
      if (has("error")) {
        arrays.push(["error", "error", outcomes.map((o) => (o._tag === "Rejected" ? o.error : null))])
        sets.push(`${q(col("error") ?? "")} = v.error`)
      }
      if (has("queuedAt")) {
        const queuedAt = q(col("queuedAt") ?? "")
        sets.push(`${queuedAt} = CASE WHEN v.message_id IS NULL THEN t.${queuedAt} ELSE now() END`)
      }
      if (has("updatedAt")) sets.push(`${q(col("updatedAt") ?? "")} = now()`)
      const { from, params } = unnest(arrays)
      return { sql: `UPDATE ${table} AS t SET ${sets.join(", ")} FROM ${from} WHERE t.${id} = v.key`, params }
    },
    patchByKey: (patches) => patch(patches, true),
    patchByMessageId: (patches) => patch(patches, false),
    countPending: {
      sql: `SELECT count(*)::int AS n FROM ${table} WHERE ${status} = $1`,
      params: [mapping.statuses.pending]
    }
  }
}

// ---------------------------------------------------------------------------------------------
// MySQL / MariaDB

const INTEGER_TYPE = /^(tinyint|smallint|mediumint|int|integer|bigint)\b/i

const mysqlSql = (mapping: Mapping, info: TableInfo): OutboxSql => {
  const q = (name: string) => quoteIdentifier("mysql", name)
  const table = quoteTable("mysql", mapping.table)
  const col = (role: ColumnRole) => mapping.columns[role]
  const has = (role: ColumnRole) => col(role) !== undefined
  const id = q(mapping.columns.id)
  const status = q(mapping.columns.status)
  const messageId = q(mapping.columns.messageId)
  const position = q(mapping.columns.lastEventPosition)
  const now = "CURRENT_TIMESTAMP(3)"
  // keys travel as text; an integer key is compared as an integer (text against an integer column
  // compares as a double: wrong past 2^53)
  const idType = info.types.get(mapping.columns.id) ?? ""
  const keyParam = INTEGER_TYPE.test(idType)
    ? /unsigned/i.test(idType)
      ? "CAST(? AS UNSIGNED)"
      : "CAST(? AS SIGNED)"
    : "?"

  /** `CASE <on> WHEN k1 THEN v1 … ELSE <otherwise> END`, its parameters appended to `params` */
  const caseOf = (
    on: string,
    keyPlaceholder: string,
    pairs: ReadonlyArray<readonly [unknown, unknown]>,
    params: Array<unknown>,
    otherwise = "NULL"
  ) => {
    for (const [key, value] of pairs) params.push(key, value)
    return `CASE ${on} ${pairs.map(() => `WHEN ${keyPlaceholder} THEN ?`).join(" ")} ELSE ${otherwise} END`
  }

  const patch = (patches: ReadonlyArray<StatusPatch>, byKey: boolean): Statement | undefined => {
    if (patches.length === 0) return undefined
    const on = byKey ? id : messageId
    const placeholder = byKey ? keyParam : "?"
    const keyOf = (p: StatusPatch) => (byKey ? p.key : p.messageId)
    const params: Array<unknown> = []
    const sets: Array<string> = []
    const set = (column: string, value: (p: StatusPatch) => unknown, keepOld: boolean) => {
      const expression = caseOf(
        on,
        placeholder,
        patches.map((p) => [keyOf(p), value(p)] as const),
        params,
        keepOld ? q(column) : "NULL"
      )
      sets.push(
        keepOld ? `${q(column)} = COALESCE(${expression}, ${q(column)})` : `${q(column)} = ${expression}`
      )
    }
    // single-table UPDATE assigns left to right with the new values: no expression below reads a
    // column assigned before it (each reads only its own column and the key, never assigned)
    set(mapping.columns.status, (p) => mapping.statuses[p.status], true)
    if (byKey) set(mapping.columns.messageId, (p) => p.messageId, true)
    const optional: ReadonlyArray<readonly [ColumnRole, (p: StatusPatch) => unknown, boolean]> = [
      ["provider", (p) => p.provider ?? null, true],
      ["providerMessageId", (p) => p.providerMessageId ?? null, true],
      ["error", (p) => p.error, false],
      ["dispatchedAt", (p) => p.dispatchedAt ?? null, true],
      ["completedAt", (p) => p.completedAt, false]
    ]
    for (const [role, value, keepOld] of optional) {
      const column = col(role)
      if (column !== undefined) set(column, value, keepOld)
    }
    if (byKey && has("queuedAt")) {
      const queuedAt = q(col("queuedAt") ?? "")
      sets.push(`${queuedAt} = COALESCE(${queuedAt}, ${now})`)
    }
    if (has("updatedAt")) sets.push(`${q(col("updatedAt") ?? "")} = ${now}`)
    set(mapping.columns.lastEventPosition, (p) => p.position, false)
    // the WHERE is evaluated before any assignment
    const keys = patches.map(keyOf)
    params.push(...keys)
    const guardParams: Array<unknown> = []
    const guard = caseOf(
      on,
      placeholder,
      patches.map((p) => [keyOf(p), p.position] as const),
      guardParams
    )
    params.push(...guardParams)
    return {
      sql:
        `UPDATE ${table} SET ${sets.join(", ")} WHERE ${on} IN (${keys.map(() => placeholder).join(", ")}) ` +
        `AND (${position} IS NULL OR ${position} < ${guard})`,
      params
    }
  }

  return {
    claim: (limit) => ({
      sql:
        `SELECT CAST(${id} AS CHAR) AS \`key\`${READ_ROLES.filter(has)
          .map((role) => `, ${q(col(role) ?? "")} AS \`${role}\``)
          .join("")} ` + `FROM ${table} WHERE ${status} = ? ORDER BY ${id} LIMIT ? FOR UPDATE SKIP LOCKED`,
      params: [mapping.statuses.pending, limit]
    }),
    mark: (outcomes) => {
      const params: Array<unknown> = []
      const pairs = (value: (o: RowOutcome) => unknown) => outcomes.map((o) => [o.key, value(o)] as const)
      const sets = [
        `${status} = ${caseOf(
          id,
          keyParam,
          pairs((o) => mapping.statuses[o._tag === "Queued" ? "queued" : "rejected"]),
          params,
          status
        )}`,
        `${messageId} = ${caseOf(
          id,
          keyParam,
          pairs((o) => (o._tag === "Queued" ? o.messageId : null)),
          params
        )}`
      ]
      if (has("error")) {
        const error = q(col("error") ?? "")
        sets.push(
          `${error} = ${caseOf(
            id,
            keyParam,
            pairs((o) => (o._tag === "Rejected" ? o.error : null)),
            params
          )}`
        )
      }
      const queued = outcomes.filter((o) => o._tag === "Queued").map((o) => o.key)
      if (has("queuedAt") && queued.length > 0) {
        const queuedAt = q(col("queuedAt") ?? "")
        sets.push(
          `${queuedAt} = IF(${id} IN (${queued.map(() => keyParam).join(", ")}), ${now}, ${queuedAt})`
        )
        params.push(...queued)
      }
      if (has("updatedAt")) sets.push(`${q(col("updatedAt") ?? "")} = ${now}`)
      params.push(...outcomes.map((o) => o.key))
      return {
        sql: `UPDATE ${table} SET ${sets.join(", ")} WHERE ${id} IN (${outcomes.map(() => keyParam).join(", ")})`,
        params
      }
    },
    patchByKey: (patches) => patch(patches, true),
    patchByMessageId: (patches) => patch(patches, false),
    countPending: {
      sql: `SELECT COUNT(*) AS n FROM ${table} WHERE ${status} = ?`,
      params: [mapping.statuses.pending]
    }
  }
}
