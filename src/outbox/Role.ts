/**
 * The `outbox` role: claims new rows of the outbox table in batches, stores each as a `SendSms` in
 * JetStream, marks it `queued` (or `rejected`) in the claim's transaction, and writes the message's
 * status back to the row as its events come (`StatusReactor`).
 *
 * Wake-up: after a full batch at once (there may be more); otherwise at the next poll (`Polling`:
 * early enough for a row to be requested within `OUTBOX_POLL_MS`), or at once on PostgreSQL when
 * the table's trigger notifies (`outbox init --notify`). The database down or slow, or NATS refusing
 * the commands: the claim backs off (`claimBackoff`), `/ready` and `/metrics` say so, and the other
 * roles of the process carry on.
 */
import { Clock, Data, Duration, Effect, Either, Layer, Option, Queue, Schedule } from "effect"
import { outboxClaimed, outboxError, outboxPending, outboxUp } from "../observability/Metrics.js"
import * as ProjectionRunner from "../projections/ProjectionRunner.js"
import { configFromEnv, type OutboxConfig } from "./Config.js"
import { make, OutboxDbError, type OutboxDatabaseService } from "./Database.js"
import { OutboxHealth } from "./Health.js"
import { statusReactor } from "./StatusReactor.js"
import { nextPollIn, pollLead, remember } from "./Polling.js"
import { planRows } from "./StoreRows.js"

/** Some rows of a claim could not be stored in NATS: they stay pending, and the claim backs off. */
export class OutboxStoreError extends Data.TaggedError("OutboxStoreError")<{ readonly message: string }> {}

/**
 * Claims after a failure: 250 ms, doubling, at most every 10 s, jittered, for as long as it takes (a
 * database restart, a failover, a table created later by `outbox init`). Every failure of a claim is
 * worth retrying: nothing was marked that was not stored.
 */
export const claimBackoff = Schedule.exponential("250 millis", 2).pipe(
  Schedule.union(Schedule.spaced("10 seconds")),
  Schedule.jittered
)

/** How often the pending rows are counted (`sms_outbox_rows_pending`, `/ready`). */
const COUNT_EVERY = "5 seconds"

const kindOf = (error: OutboxDbError | OutboxStoreError) =>
  error._tag === "OutboxStoreError" ? "nats" : error.reason.toLowerCase()

/** One claim transaction; answers the rows it took. */
const claimOnce = (db: OutboxDatabaseService, config: OutboxConfig) =>
  Effect.gen(function* () {
    const table = config.mapping.table
    const started = performance.now()
    let stored: { unstored: number; firstFailure: string | undefined } = {
      unstored: 0,
      firstFailure: undefined
    }
    const result = yield* db.claim(config.batchSize, (rows) =>
      Effect.map(planRows(config.mapping, rows), (planned) => ({
        outcomes: planned.outcomes,
        store: Effect.map(planned.store, (batch) => {
          stored = batch
          return batch.outcomes
        })
      }))
    )
    const now = yield* Clock.currentTimeMillis
    const wasDown = OutboxHealth.of(table)?.up === false
    OutboxHealth.claimed(table, now)
    yield* outboxUp(table, true)
    if (wasDown) yield* Effect.logInfo(`outbox: claiming from ${db.target}`)
    if (result.claimed > 0) {
      const queued = result.outcomes.filter((o) => o._tag === "Queued").length
      yield* outboxClaimed(
        table,
        queued,
        result.outcomes.length - queued,
        (performance.now() - started) / 1000
      )
    }
    if (stored.unstored > 0) {
      return yield* new OutboxStoreError({
        message: `${stored.unstored} of ${result.claimed} rows left pending: ${stored.firstFailure ?? "not stored"}`
      })
    }
    return result.claimed
  })

/** Records a failed claim: metrics, `/ready`, and a log line when the state changes (not every retry). */
const reportFailure =
  (db: OutboxDatabaseService, table: string) => (error: OutboxDbError | OutboxStoreError) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const before = OutboxHealth.of(table)
      yield* outboxError(table, kindOf(error))
      // NATS refusing the commands is the `nats` check's news on `/ready`: the database is still up
      if (error._tag === "OutboxDbError") {
        OutboxHealth.failed(table, error.message, now)
        yield* outboxUp(table, false)
      }
      if (error._tag === "OutboxStoreError" || before?.up !== false || before.lastError !== error.message) {
        yield* Effect.logWarning(`outbox: ${error.message}; backing off and retrying`).pipe(
          Effect.annotateLogs({ table, target: db.target })
        )
      }
    })

const claimLoop = (db: OutboxDatabaseService, config: OutboxConfig, wake: Queue.Queue<void>) => {
  const table = config.mapping.table
  const pollMs = Duration.toMillis(config.pollInterval)
  let recent: ReadonlyArray<number> = []
  const waitForWake = (claimStarted: number) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Queue.take(wake).pipe(
        Effect.timeout(Duration.millis(nextPollIn(pollMs, pollLead(recent, pollMs), now - claimStarted))),
        Effect.ignore
      )
    )
  const claim = claimOnce(db, config).pipe(
    Effect.tapError(reportFailure(db, table)),
    Effect.retry(claimBackoff)
  )
  return Effect.forever(
    Effect.gen(function* () {
      const started = yield* Clock.currentTimeMillis
      const claimed = yield* claim
      recent = remember(recent, (yield* Clock.currentTimeMillis) - started)
      // a full batch: more may be waiting, claim again at once
      if (claimed < config.batchSize) yield* waitForWake(started)
    })
  )
}

const countLoop = (db: OutboxDatabaseService, table: string) =>
  Effect.forever(
    Effect.zipRight(
      db.countPending.pipe(
        Effect.tap((pending) => Effect.sync(() => OutboxHealth.counted(table, pending))),
        Effect.flatMap((pending) => outboxPending(table, pending)),
        // the claim loop reports the database's failures
        Effect.ignore
      ),
      Effect.sleep(COUNT_EVERY)
    )
  )

/** The role over `config`'s database; needs the infrastructure (NATS, the event store, checkpoints). */
export const layer = (config: OutboxConfig) =>
  Layer.scopedDiscard(
    Effect.gen(function* () {
      const db = yield* make(config)
      const table = config.mapping.table
      OutboxHealth.started(table, db.target, yield* Clock.currentTimeMillis)
      yield* Effect.addFinalizer(() => Effect.sync(() => OutboxHealth.stopped(table)))
      yield* outboxUp(table, false)
      const wake = yield* Queue.sliding<void>(1)
      yield* db.listen(() => {
        Queue.unsafeOffer(wake, undefined)
      })
      yield* Effect.forkScoped(claimLoop(db, config, wake))
      yield* Effect.forkScoped(countLoop(db, table))
      yield* Effect.forkScoped(ProjectionRunner.runAll([statusReactor(db, table)]))
      yield* Effect.logInfo(
        `outbox: reading ${db.target} (batches of ${config.batchSize}, polling every ` +
          `${Duration.toMillis(config.pollInterval)} ms${db.dialect === "postgres" ? ", woken by NOTIFY" : ""})`
      )
    })
  )

/** The role from `OUTBOX_URL` and the other settings; nothing when `OUTBOX_URL` is unset. */
export const fromEnv = Layer.unwrapEffect(
  // read when the layer is built, not when this module loads
  Effect.suspend(() =>
    Either.match(configFromEnv(process.env), {
      onLeft: (error) => Effect.fail(error),
      onRight: (config) =>
        Effect.succeed(
          Option.match(config, {
            onNone: () => Layer.empty,
            onSome: (settings) => layer(settings)
          })
        )
    })
  )
)
