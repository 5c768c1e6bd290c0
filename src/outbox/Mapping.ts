/**
 * Which table the outbox role reads and what its columns are called: the default schema
 * (`sms-gateway outbox init`), or a mapping file (`OUTBOX_MAPPING`) pointing at a table the
 * application already has, with its own column names and, if it likes, its own status values.
 *
 *   { "table": "billing.sms_queue",
 *     "columns": { "id": "sms_id", "to": "phone", "body": "text", "status": "state",
 *                  "messageId": "gateway_id", "lastEventPosition": "gateway_position",
 *                  "error": "gateway_error" },
 *     "statuses": { "pending": "NEW", "rejected": "BAD" },
 *     "defaultClientId": "billing" }
 *
 * Identifiers are checked here, once, because they are written into SQL text (values never are:
 * they always go as parameters).
 */
import { readFileSync } from "node:fs"
import { Either, ParseResult, Schema } from "effect"

/** The columns the role knows, by their role in a `SendSms` or in the row's outcome. */
export const COLUMN_ROLES = [
  "id",
  "clientId",
  "to",
  "from",
  "body",
  "providers",
  "validUntil",
  "metadata",
  "status",
  "messageId",
  "provider",
  "providerMessageId",
  "error",
  "lastEventPosition",
  "queuedAt",
  "dispatchedAt",
  "completedAt",
  "updatedAt"
] as const
export type ColumnRole = (typeof COLUMN_ROLES)[number]

/**
 * Without these the role cannot work: the key and the message, the claim (`status`), the link from
 * the events back to the row (`messageId`) and the idempotent status writes (`lastEventPosition`).
 */
export const REQUIRED_COLUMNS = ["id", "to", "body", "status", "messageId", "lastEventPosition"] as const

/** Every status a row goes through; `pending` is what the application inserts. */
export const STATUSES = [
  "pending",
  "queued",
  "dispatched",
  "retrying",
  "delivered",
  "failed",
  "unknown",
  "rejected"
] as const
export type OutboxStatus = (typeof STATUSES)[number]

export interface Mapping {
  /** `name` or `schema.name` */
  readonly table: string
  /** physical column per role; a role without one is not read or written */
  readonly columns: Readonly<Partial<Record<ColumnRole, string>>> &
    Readonly<Record<(typeof REQUIRED_COLUMNS)[number], string>>
  /** the value stored for each status */
  readonly statuses: Readonly<Record<OutboxStatus, string>>
  /** the client id of rows with no client id column, or none in it */
  readonly defaultClientId: string
}

export const DEFAULT_TABLE = "sms_outbox"
export const DEFAULT_CLIENT_ID = "outbox"

/** The default schema's column names (see `Ddl.ts`). */
export const DEFAULT_COLUMNS: Readonly<Record<ColumnRole, string>> = {
  id: "id",
  clientId: "client_id",
  to: "recipient",
  from: "sender",
  body: "body",
  providers: "providers",
  validUntil: "valid_until",
  metadata: "metadata",
  status: "status",
  messageId: "message_id",
  provider: "provider",
  providerMessageId: "provider_message_id",
  error: "error",
  lastEventPosition: "last_event_position",
  queuedAt: "queued_at",
  dispatchedAt: "dispatched_at",
  completedAt: "completed_at",
  updatedAt: "updated_at"
}

const DEFAULT_STATUSES: Readonly<Record<OutboxStatus, string>> = Object.fromEntries(
  STATUSES.map((status) => [status, status])
) as Record<OutboxStatus, string>

/**
 * A column name as both PostgreSQL and MySQL take it unquoted-safe: letters, digits, `_`, `$`, not
 * starting with a digit, at most 63 characters (PostgreSQL's limit). Quoted anyway when written.
 */
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/
/** A table, optionally with its schema (PostgreSQL) or database (MySQL): `name` or `schema.name`. */
const TABLE = /^[A-Za-z_][A-Za-z0-9_$]{0,62}(\.[A-Za-z_][A-Za-z0-9_$]{0,62})?$/

const Identifier = Schema.String.pipe(
  Schema.pattern(IDENTIFIER, {
    message: () => "must be a column name of 1-63 letters, digits, '_' or '$', not starting with a digit"
  })
)

export const TableName = Schema.String.pipe(
  Schema.pattern(TABLE, {
    message: () => "must be a table name (letters, digits, '_', '$'), optionally 'schema.table'"
  })
)

const StatusValue = Schema.String.pipe(
  Schema.minLength(1, { message: () => "must not be empty" }),
  Schema.maxLength(32, { message: () => "must be at most 32 characters" })
)

const optionalColumn = Schema.optional(Schema.NullOr(Identifier))

/** The file's shape; unknown keys are refused, so a typo (`"recipent"`) is an error, not a silent default. */
export const MappingFile = Schema.Struct({
  table: TableName,
  columns: Schema.Struct({
    id: Identifier,
    clientId: optionalColumn,
    to: Identifier,
    from: optionalColumn,
    body: Identifier,
    providers: optionalColumn,
    validUntil: optionalColumn,
    metadata: optionalColumn,
    status: Identifier,
    messageId: Identifier,
    provider: optionalColumn,
    providerMessageId: optionalColumn,
    error: optionalColumn,
    lastEventPosition: Identifier,
    queuedAt: optionalColumn,
    dispatchedAt: optionalColumn,
    completedAt: optionalColumn,
    updatedAt: optionalColumn
  }),
  statuses: Schema.optional(
    Schema.partial(
      Schema.Struct(
        Object.fromEntries(STATUSES.map((s) => [s, StatusValue])) as Record<OutboxStatus, typeof StatusValue>
      )
    )
  ),
  defaultClientId: Schema.optional(
    Schema.String.pipe(
      Schema.pattern(/^[A-Za-z0-9._-]{1,128}$/, {
        message: () => "must be 1-128 of letters, digits, '.', '_' and '-' (a SendSms clientId)"
      })
    )
  )
})

export class MappingError extends Schema.TaggedError<MappingError>()("MappingError", {
  message: Schema.String
}) {}

/** The default schema under `table`. */
export const defaultMapping = (table: string = DEFAULT_TABLE): Mapping => ({
  table,
  columns: DEFAULT_COLUMNS,
  statuses: DEFAULT_STATUSES,
  defaultClientId: DEFAULT_CLIENT_ID
})

/** Problems the Schema cannot see: two roles on one column, two statuses with one value. */
const crossChecks = (file: typeof MappingFile.Type): ReadonlyArray<string> => {
  const problems: Array<string> = []
  const byColumn = new Map<string, Array<string>>()
  for (const [role, column] of Object.entries(file.columns)) {
    if (typeof column !== "string") continue
    const key = column.toLowerCase()
    byColumn.set(key, [...(byColumn.get(key) ?? []), role])
  }
  for (const [column, roles] of byColumn) {
    if (roles.length > 1) problems.push(`columns: ${roles.join(" and ")} both name column ${column}`)
  }
  const statuses = { ...DEFAULT_STATUSES, ...file.statuses }
  const byValue = new Map<string, Array<string>>()
  for (const [status, value] of Object.entries(statuses))
    byValue.set(value, [...(byValue.get(value) ?? []), status])
  for (const [value, names] of byValue) {
    if (names.length > 1) problems.push(`statuses: ${names.join(" and ")} would both be stored as '${value}'`)
  }
  return problems
}

/** A mapping from a parsed file, or every problem in it (one per line). */
export const decodeMapping = (json: unknown, source: string): Either.Either<Mapping, MappingError> => {
  const decoded = Schema.decodeUnknownEither(MappingFile)(json, { errors: "all", onExcessProperty: "error" })
  const problems = Either.isLeft(decoded)
    ? ParseResult.ArrayFormatter.formatErrorSync(decoded.left).map(
        (issue) => `${issue.path.length > 0 ? issue.path.join(".") : "$"}: ${issue.message}`
      )
    : crossChecks(decoded.right)
  if (problems.length > 0 || Either.isLeft(decoded)) {
    return Either.left(
      new MappingError({
        message: `${source} is not a valid outbox mapping:\n${problems.map((p) => `  - ${p}`).join("\n")}`
      })
    )
  }
  const file = decoded.right
  const columns: Record<string, string> = {}
  for (const [role, column] of Object.entries(file.columns))
    if (typeof column === "string") columns[role] = column
  return Either.right({
    table: file.table,
    columns: columns as Mapping["columns"],
    statuses: { ...DEFAULT_STATUSES, ...file.statuses },
    defaultClientId: file.defaultClientId ?? DEFAULT_CLIENT_ID
  })
}

/** Reads and checks a mapping file. */
export const loadMapping = (path: string): Either.Either<Mapping, MappingError> => {
  let json: unknown
  try {
    json = JSON.parse(readFileSync(path, "utf8"))
  } catch (cause) {
    return Either.left(
      new MappingError({
        message: `cannot read the outbox mapping ${path}: ${cause instanceof Error ? cause.message : String(cause)}`
      })
    )
  }
  return decodeMapping(json, path)
}

/** The roles a mapping reads or writes, with their columns, in a stable order. */
export const mappedColumns = (mapping: Mapping): ReadonlyArray<readonly [ColumnRole, string]> =>
  COLUMN_ROLES.flatMap((role) => {
    const column = mapping.columns[role]
    return column === undefined ? [] : [[role, column] as const]
  })

/** The status a stored value stands for (the mapping's values are distinct). */
export const statusOfValue = (mapping: Mapping, value: string): OutboxStatus | undefined =>
  STATUSES.find((status) => mapping.statuses[status] === value)
