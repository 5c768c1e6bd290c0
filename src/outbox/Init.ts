/**
 * `sms-gateway outbox init [--notify]`: creates the default outbox table (and, on PostgreSQL, the
 * trigger that wakes the role at each insert), then checks the table as the role will. With a
 * mapping file (`OUTBOX_MAPPING`) the table is the application's: nothing is created but the
 * trigger, and the check says what the mapping names that the table lacks.
 */
import { Data, Effect, Either, Option } from "effect"
import { configFromEnv, maskUrl, type OutboxConfig } from "./Config.js"
import { make, type OutboxDbError } from "./Database.js"
import { createTableStatements, notifyChannel, notifyStatements } from "./Ddl.js"

export class OutboxInitError extends Data.TaggedError("OutboxInitError")<{ readonly message: string }> {}

export interface InitOptions {
  readonly notify: boolean
  /** false with a mapping file: the table is the application's own */
  readonly createTable: boolean
}

/** What `init` will run: pure, for the command and its tests. */
export const initStatements = (config: OutboxConfig, options: InitOptions): ReadonlyArray<string> => [
  ...(options.createTable ? createTableStatements(config.dialect, config.mapping.table) : []),
  ...(options.notify ? notifyStatements(config.mapping.table) : [])
]

/** Runs `init`; answers the lines to print. */
export const init = (config: OutboxConfig, options: InitOptions) =>
  Effect.gen(function* () {
    if (options.notify && config.dialect !== "postgres") {
      return yield* new OutboxInitError({
        message:
          "--notify needs PostgreSQL (LISTEN/NOTIFY); on MySQL and MariaDB the role polls (a row is requested within OUTBOX_POLL_MS)"
      })
    }
    const db = yield* make(config)
    yield* db.execute(initStatements(config, options))
    // the same check the role makes before its first claim
    yield* db.prepare
    const table = config.mapping.table
    return [
      options.createTable
        ? `outbox table ${table} ready on ${maskUrl(config.url)}`
        : `outbox table ${table} on ${maskUrl(config.url)} matches the mapping`,
      ...(options.notify
        ? [`inserts notify channel ${notifyChannel(table)}: the outbox role claims them at once`]
        : [])
    ]
  }).pipe(Effect.scoped) satisfies Effect.Effect<ReadonlyArray<string>, OutboxInitError | OutboxDbError>

/** `init` with the role's own settings (`OUTBOX_URL`, `OUTBOX_TABLE` or `OUTBOX_MAPPING`). */
export const initFromEnv = (
  env: Readonly<Record<string, string | undefined>>,
  notify: boolean
): Effect.Effect<ReadonlyArray<string>, OutboxInitError | OutboxDbError> =>
  Either.match(configFromEnv(env), {
    onLeft: (error): Effect.Effect<ReadonlyArray<string>, OutboxInitError | OutboxDbError> =>
      Effect.fail(new OutboxInitError({ message: error.message })),
    onRight: Option.match({
      onNone: (): Effect.Effect<ReadonlyArray<string>, OutboxInitError | OutboxDbError> =>
        Effect.fail(
          new OutboxInitError({
            message: "set OUTBOX_URL to the database (postgres://… or mysql://…) where the outbox table goes"
          })
        ),
      onSome: (config) => init(config, { notify, createTable: !env.OUTBOX_MAPPING?.trim() })
    })
  })
