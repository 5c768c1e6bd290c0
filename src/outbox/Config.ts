/**
 * The outbox role's settings, from the environment:
 *
 * - `OUTBOX_URL`: `postgres://…` (or `postgresql://`), `mysql://…` (or `mariadb://`: MySQL 8,
 *   MariaDB 10.6 or later, which have `SKIP LOCKED`); unset, the role does nothing
 * - `OUTBOX_TABLE`: the default schema's table (default `sms_outbox`)
 * - `OUTBOX_MAPPING`: a mapping file for an existing table (see `Mapping.ts`), instead of `OUTBOX_TABLE`
 * - `OUTBOX_POLL_MS`: the longest a row waits to be requested without a wake-up (default 500; `Polling.ts`)
 * - `OUTBOX_BATCH`: rows per claim (default 500)
 */
import { Data, Duration, Either, Option } from "effect"
import { DEFAULT_TABLE, defaultMapping, loadMapping, type Mapping, TableName } from "./Mapping.js"
import { Schema } from "effect"

export type Dialect = "postgres" | "mysql"

export interface OutboxConfig {
  readonly url: string
  readonly dialect: Dialect
  readonly mapping: Mapping
  readonly pollInterval: Duration.Duration
  readonly batchSize: number
}

export class OutboxConfigError extends Data.TaggedError("OutboxConfigError")<{ readonly message: string }> {}

export const DEFAULT_POLL_MS = 500
export const DEFAULT_BATCH = 500
/** A claim holds its rows' locks while the batch is stored in JetStream: keep it to a few thousand. */
const MAX_BATCH = 5000

/** The database a URL names, by its scheme. */
export const dialectOf = (url: string): Dialect | undefined => {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase()
  if (scheme === "postgres" || scheme === "postgresql") return "postgres"
  if (scheme === "mysql" || scheme === "mariadb") return "mysql"
  return undefined
}

/** The URL with its password replaced: for logs, `/ready` and messages (never the password). */
export const maskUrl = (url: string): string => {
  try {
    const parsed = new URL(url)
    if (parsed.password !== "") parsed.password = "***"
    // query parameters may carry a password too (`?password=`): drop them all from what is shown
    parsed.search = ""
    return parsed.toString()
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@]*@/, "//$1:***@").replace(/\?.*$/, "")
  }
}

const positiveInt = (name: string, raw: string | undefined, fallback: number, max: number) => {
  if (raw === undefined || raw.trim() === "") return Either.right(fallback)
  const value = Number(raw)
  return Number.isInteger(value) && value > 0 && value <= max
    ? Either.right(value)
    : Either.left(
        new OutboxConfigError({ message: `${name} must be a whole number from 1 to ${max}, not '${raw}'` })
      )
}

/** The settings, or none when `OUTBOX_URL` is unset (the role is off). */
export const configFromEnv = (
  env: Readonly<Record<string, string | undefined>>
): Either.Either<Option.Option<OutboxConfig>, OutboxConfigError> => {
  const url = env.OUTBOX_URL?.trim()
  if (url === undefined || url === "") return Either.right(Option.none())
  const dialect = dialectOf(url)
  if (dialect === undefined) {
    return Either.left(
      new OutboxConfigError({
        message: `OUTBOX_URL must start with postgres:// or mysql:// (MySQL 8, MariaDB 10.6 or later), not ${maskUrl(url)}`
      })
    )
  }
  const table = env.OUTBOX_TABLE?.trim() || undefined
  const mappingFile = env.OUTBOX_MAPPING?.trim() || undefined
  if (table !== undefined && mappingFile !== undefined) {
    return Either.left(
      new OutboxConfigError({
        message: "set OUTBOX_TABLE or OUTBOX_MAPPING, not both: the mapping file names its table"
      })
    )
  }
  if (table !== undefined && !Schema.is(TableName)(table)) {
    return Either.left(
      new OutboxConfigError({
        message: `OUTBOX_TABLE must be a table name (letters, digits, '_', '$'), optionally schema.table, not '${table}'`
      })
    )
  }
  return Either.gen(function* () {
    const mapping =
      mappingFile === undefined
        ? defaultMapping(table ?? DEFAULT_TABLE)
        : yield* Either.mapLeft(
            loadMapping(mappingFile),
            (error) => new OutboxConfigError({ message: error.message })
          )
    const pollMs = yield* positiveInt("OUTBOX_POLL_MS", env.OUTBOX_POLL_MS, DEFAULT_POLL_MS, 3_600_000)
    const batchSize = yield* positiveInt("OUTBOX_BATCH", env.OUTBOX_BATCH, DEFAULT_BATCH, MAX_BATCH)
    return Option.some({ url, dialect, mapping, pollInterval: Duration.millis(pollMs), batchSize })
  })
}
