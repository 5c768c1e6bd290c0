/**
 * PostgreSQL's wake-up: with `outbox init --notify`, an insert notifies the table's channel and the
 * role claims the row at once instead of at its next poll. The poll here is a minute, and each row is
 * inserted only once the role is idle (its last claim done, its LISTEN session open), so a row taken
 * within seconds was taken because of the notification; a row inserted before the trigger exists
 * stays pending, which shows nothing else takes it.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { OutboxHealth } from "../../src/outbox/Health.js"
import { init } from "../../src/outbox/Init.js"
import * as OutboxRole from "../../src/outbox/Role.js"
import { startPostgres } from "../support/databases.js"
import { providerEntry, simulator, startGateway } from "../support/inProcessGateway.js"
import { configFor, insertRows, readRows, type Sql, sqlClient, waitUntil } from "./support.js"

const taken = (status: string) => status !== "pending"

/** The role's LISTEN session, as the server sees it (after a restart, only a new one can be there). */
const listenSession = (sql: Sql) =>
  Effect.map(
    sql.query(
      "SELECT pid FROM pg_stat_activity WHERE application_name = 'sms-gateway-outbox-listen' AND query ILIKE 'LISTEN%'"
    ),
    (rows) => (rows[0] === undefined ? undefined : Number(rows[0].pid))
  )

/**
 * Until the role is idle: LISTENing, its last claim succeeded, then a moment for the claim that the
 * LISTEN's (re)connection triggers to end. From here on only a notification (or the minute's poll)
 * makes it claim.
 */
const idle = (sql: Sql) =>
  Effect.gen(function* () {
    yield* waitUntil("the role LISTENing", listenSession(sql), (pid) => pid !== undefined, "20 seconds")
    yield* waitUntil(
      "the role's claims succeeding",
      Effect.sync(() => OutboxHealth.of("sms_outbox")?.up),
      (up) => up === true,
      "20 seconds"
    )
    yield* Effect.sleep("1 second")
  })

describe("SQL outbox on PostgreSQL, woken by NOTIFY", () => {
  it.scopedLive(
    "an insert is claimed at once with the trigger, not before it exists, and again after a database restart",
    () =>
      Effect.gen(function* () {
        const db = yield* startPostgres
        const sim = yield* simulator()
        const gw = yield* startGateway([providerEntry("sim", sim.url)])
        const config = configFor(db, { pollMs: 60_000 })
        yield* init(config, { notify: false, createTable: true })
        yield* gw.provide(Layer.build(OutboxRole.layer(config)))
        const sql = yield* sqlClient("postgres", db.url)
        yield* idle(sql)

        const [early = ""] = yield* insertRows(sql, "postgres", [
          { to: "+447911123456", body: "before the trigger" }
        ])
        yield* Effect.sleep("2 seconds")
        expect((yield* readRows(sql, [early]))[0]?.status, "no trigger: nothing wakes the role").toBe(
          "pending"
        )

        yield* init(config, { notify: true, createTable: true })
        const [late = ""] = yield* insertRows(sql, "postgres", [
          { to: "+447911123457", body: "with the trigger" }
        ])
        // the notification wakes the role: it takes every pending row, the early one too
        yield* waitUntil(
          "both rows taken",
          readRows(sql, [early, late]),
          (rows) => rows.every((row) => taken(row.status)),
          "10 seconds"
        )

        // the LISTEN connection comes back after a restart, and notifications wake the role again
        yield* db.stop
        yield* db.start
        const again = yield* sqlClient("postgres", db.url)
        yield* idle(again)
        const [afterRestart = ""] = yield* insertRows(again, "postgres", [
          { to: "+447911123458", body: "after a restart" }
        ])
        yield* waitUntil(
          "the row after the restart taken",
          readRows(again, [afterRestart]),
          (rows) => rows.every((row) => taken(row.status)),
          "10 seconds"
        )
        const rows = yield* waitUntil(
          "all delivered",
          readRows(again, [early, late, afterRestart]),
          (rows) => rows.every((row) => row.status === "delivered"),
          "20 seconds"
        )
        expect(rows.map((row) => row.status)).toEqual(["delivered", "delivered", "delivered"])
      }),
    90_000
  )
})
