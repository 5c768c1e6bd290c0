/**
 * The SQL outbox against real servers, on PostgreSQL and on MariaDB alike: a gateway (every role, in
 * this process) on a real nats-server with the provider simulator, and the outbox role reading a table
 * that this test fills as a business application would, with plain INSERTs.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, layer } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { Clients } from "../../src/clients/Clients.js"
import { messageIdFor, type MessageId } from "../../src/domain/Ids.js"
import { Nats } from "../../src/nats/Nats.js"
import { make as makeDatabase } from "../../src/outbox/Database.js"
import { init } from "../../src/outbox/Init.js"
import { loadMapping } from "../../src/outbox/Mapping.js"
import * as OutboxRole from "../../src/outbox/Role.js"
import type { StatusPatch } from "../../src/outbox/StatusPatch.js"
import type { RunningSimulator } from "../../src/providers/Simulator.js"
import { type DatabaseKind, DB_PASSWORD, startDatabase, type TestDatabase } from "../support/databases.js"
import { providerEntry, simulator, startGateway } from "../support/inProcessGateway.js"
import { configFor, insertRows, readRows, type Sql, sqlClient, waitUntil } from "./support.js"

/** The simulator calls numbers starting with this invalid: their messages fail `invalid_number`. */
const INVALID_PREFIX = "+4479000"

type Gateway = Effect.Effect.Success<ReturnType<typeof startGateway>>

class Harness extends Context.Tag("test/OutboxHarness")<
  Harness,
  {
    readonly db: TestDatabase
    readonly sql: Sql
    readonly gw: Gateway
    readonly sim: RunningSimulator
  }
>() {}

const harness = (kind: DatabaseKind) =>
  Layer.scoped(
    Harness,
    Effect.gen(function* () {
      const db = yield* startDatabase(kind)
      const sim = yield* simulator({ invalidPrefixes: [INVALID_PREFIX] })
      const gw = yield* startGateway([providerEntry("sim", sim.url)])
      const config = configFor(db)
      yield* init(config, { notify: kind === "postgres", createTable: true })
      yield* gw.provide(Layer.build(OutboxRole.layer(config)))
      const sql = yield* sqlClient(kind, db.url)
      return { db, sql, gw, sim }
    }).pipe(Effect.orDie)
  )

const idFor = (clientId: string, table: string, key: string): MessageId =>
  messageIdFor(clientId, `outbox:${table}:${key}`)

const final = (status: string) => status !== "pending" && status !== "queued" && status !== "dispatched"

/** Records on `sms.rejects` whose source is `source`, read from the stream's start. */
const rejectsFrom = (gw: Gateway, source: string) =>
  gw.provide(
    Effect.gen(function* () {
      const { js } = yield* Nats
      const consumer = yield* Effect.promise(() => js.consumers.get("SMS_REJECTS"))
      const batch = yield* Effect.promise(() => consumer.fetch({ max_messages: 1000, expires: 1000 }))
      const records: Array<{ source: string; ref?: string; error: { field: string; reason: string } }> = []
      yield* Effect.promise(async () => {
        for await (const msg of batch) records.push(msg.json())
      })
      return records.filter((record) => record.source === source)
    })
  )

for (const kind of ["postgres", "mysql"] as const) {
  describe(`SQL outbox on ${kind === "postgres" ? "PostgreSQL" : "MariaDB"}`, () => {
    // the real clock (no TestClock): these tests wait on real servers
    layer(harness(kind), { timeout: "120 seconds", excludeTestServices: true })("the outbox role", (it) => {
      it.effect(
        "rows inserted are delivered once each, and their statuses are written back to them",
        () =>
          Effect.gen(function* () {
            const { sql, gw, sim } = yield* Harness
            const ids = yield* insertRows(sql, kind, [
              { to: "+447911123456", body: "Your code is 1234", from: "Shop", metadata: '{"order":"42"}' },
              { to: "+447911123457", body: "Hello", providers: '["sim"]', validUntil: "2030-01-01 00:00:00" },
              { to: `${INVALID_PREFIX}00001`, body: "to a number the provider refuses" },
              ...Array.from({ length: 12 }, (_, i) => ({
                to: `+4479111234${String(60 + i)}`,
                body: `row ${i}`
              }))
            ])
            const rows = yield* waitUntil("every row final", readRows(sql, ids), (rows) =>
              rows.every((row) => final(row.status))
            )
            const submissions = sim.submissions()
            for (const row of rows) {
              const messageId = idFor("shop", "sms_outbox", row.id)
              expect(row.message_id).toBe(messageId)
              expect(row.provider).toBe("sim")
              expect(Number(row.last_event_position)).toBeGreaterThan(0)
              expect(row.queued_at).toBeInstanceOf(Date)
              expect(row.completed_at).toBeInstanceOf(Date)
              const sent = submissions.filter((s) => s.reference === messageId)
              expect(sent, `submissions of row ${row.id}`).toHaveLength(1)
              if (row.id === ids[2]) {
                expect(row.status).toBe("failed")
                expect(row.error).toMatch(/^invalid_number/)
              } else {
                expect(row.status).toBe("delivered")
                expect(row.error).toBeNull()
                expect(row.dispatched_at).toBeInstanceOf(Date)
                expect(row.provider_message_id).toBe(sent[0]?.messageId)
              }
            }
            // the row's fields reached the message as a SendSms would carry them
            const first = yield* gw.load(idFor("shop", "sms_outbox", ids[0] ?? ""))
            expect(first.state.status === "none" ? undefined : first.state.request).toMatchObject({
              clientId: "shop",
              idempotencyKey: `outbox:sms_outbox:${ids[0]}`,
              to: "+447911123456",
              from: "Shop",
              body: "Your code is 1234",
              metadata: { order: "42" }
            })
            const second = yield* gw.load(idFor("shop", "sms_outbox", ids[1] ?? ""))
            expect(second.state.status === "none" ? undefined : second.state.request).toMatchObject({
              providers: ["sim"],
              validUntil: new Date("2030-01-01T00:00:00Z")
            })
          }),
        90_000
      )

      it.effect(
        "bad rows are rejected with the column and the reason, on sms.rejects too, and never block the rows after them",
        () =>
          Effect.gen(function* () {
            const { sql, gw } = yield* Harness
            const ids = yield* insertRows(sql, kind, [
              { to: null, body: "no recipient" },
              { to: "12345", body: "not E.164" },
              { to: "+447911123456", body: "x".repeat(2000) },
              { to: "+447911123456", body: "bad provider", providers: '["Not Valid!"]' },
              { to: "+447911123456", body: null },
              { to: "+447911123458", body: "after the bad ones" }
            ])
            const rows = yield* waitUntil("every row final", readRows(sql, ids), (rows) =>
              rows.every((row) => final(row.status))
            )
            expect(rows.map((row) => [row.status, row.error, row.message_id])).toEqual([
              ["rejected", "recipient: is missing", null],
              ["rejected", "recipient: must be E.164: '+' then 7 to 15 digits, no spaces", null],
              [
                "rejected",
                "body: is longer than 10 segments can hold (1530 GSM-7 characters, 670 UCS-2)",
                null
              ],
              ["rejected", "providers.0: provider ids are 1-32 of a-z, 0-9, '_' and '-'", null],
              ["rejected", "body: is missing", null],
              ["delivered", null, idFor("shop", "sms_outbox", ids[5] ?? "")]
            ])
            // the same refusals on sms.rejects, one per bad row, each naming its row
            const rejects = yield* rejectsFrom(gw, "outbox:sms_outbox")
            const refusals = ids.slice(0, 5).map((id) => {
              const records = rejects.filter((record) => record.ref === `sms_outbox:${id}`)
              return records.map((record) => `${record.error.field}: ${record.error.reason}`)
            })
            expect(refusals).toEqual(rows.slice(0, 5).map((row) => [row.error]))
            expect(rejects.some((record) => record.ref === `sms_outbox:${ids[5]}`)).toBe(false)
          }),
        90_000
      )

      it.scoped(
        "a row whose command JetStream refuses stays pending while its batch's other rows go on, and goes once it is taken",
        () =>
          Effect.gen(function* () {
            const { sql, gw } = yield* Harness
            const { jsm } = yield* gw.provide(Nats)
            // SMS_COMMANDS refuses a long command for a while: the claim's marks were written side
            // by side with the stores, and must come back for the refused row alone
            const setMaxSize = (bytes: number) =>
              Effect.promise(async () => {
                const info = await jsm.streams.info("SMS_COMMANDS")
                await jsm.streams.update("SMS_COMMANDS", { ...info.config, max_msg_size: bytes })
              })
            yield* Effect.acquireRelease(setMaxSize(700), () => setMaxSize(-1))
            const ids = yield* insertRows(sql, kind, [
              { to: "+447911123456", body: "short" },
              { to: "+447911123457", body: "a long one ".repeat(80) },
              { to: "+447911123458", body: "short too" }
            ])
            const first = yield* waitUntil("the short rows final", readRows(sql, ids), (rows) =>
              [rows[0], rows[2]].every((row) => row !== undefined && final(row.status))
            )
            expect(first.map((row) => [row.status, row.message_id])).toEqual([
              ["delivered", idFor("shop", "sms_outbox", ids[0] ?? "")],
              ["pending", null],
              ["delivered", idFor("shop", "sms_outbox", ids[2] ?? "")]
            ])
            yield* setMaxSize(-1)
            const rows = yield* waitUntil("the long row final", readRows(sql, ids), (rows) =>
              rows.every((row) => final(row.status))
            )
            expect(rows[1]).toMatchObject({
              status: "delivered",
              message_id: idFor("shop", "sms_outbox", ids[1] ?? "")
            })
          }),
        90_000
      )

      it.effect(
        "a client over its daily quota gets its row rejected, the others go on",
        () =>
          Effect.gen(function* () {
            const { sql, gw } = yield* Harness
            yield* gw.provide(Effect.flatMap(Clients, (clients) => clients.setQuota("tight", 1)))
            const ids = yield* insertRows(sql, kind, [
              { clientId: "tight", to: "+447911123456", body: "first" },
              { clientId: "tight", to: "+447911123456", body: "second" },
              { clientId: "roomy", to: "+447911123456", body: "third" }
            ])
            const rows = yield* waitUntil("every row final", readRows(sql, ids), (rows) =>
              rows.every((row) => final(row.status))
            )
            expect(rows.map((row) => [row.status, row.error])).toEqual([
              ["delivered", null],
              ["rejected", "client_id: daily quota exceeded"],
              ["delivered", null]
            ])
          }),
        90_000
      )

      it.scoped(
        "a mapping file points the role at an existing table with its own column names and status values",
        () =>
          Effect.gen(function* () {
            const { db, sql, gw } = yield* Harness
            yield* sql.query(
              kind === "postgres"
                ? "CREATE TABLE legacy_sms (sms_id serial PRIMARY KEY, phone varchar(20), txt text, state varchar(10) NOT NULL DEFAULT 'NEW', gw_id varchar(36), gw_pos bigint, gw_err varchar(200), gw_ref varchar(100))"
                : "CREATE TABLE legacy_sms (sms_id INT AUTO_INCREMENT PRIMARY KEY, phone VARCHAR(20), txt TEXT, state VARCHAR(10) NOT NULL DEFAULT 'NEW', gw_id VARCHAR(36), gw_pos BIGINT, gw_err VARCHAR(200), gw_ref VARCHAR(100))"
            )
            const dir = yield* Effect.acquireRelease(
              Effect.sync(() => mkdtempSync(join(tmpdir(), "sms-gw-mapping-"))),
              (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
            )
            const file = join(dir, "mapping.json")
            writeFileSync(
              file,
              JSON.stringify({
                table: "legacy_sms",
                columns: {
                  id: "sms_id",
                  to: "phone",
                  body: "txt",
                  status: "state",
                  messageId: "gw_id",
                  lastEventPosition: "gw_pos",
                  error: "gw_err",
                  providerMessageId: "gw_ref"
                },
                statuses: {
                  pending: "NEW",
                  queued: "QUEUED",
                  dispatched: "SENT",
                  delivered: "DONE",
                  rejected: "BAD"
                },
                defaultClientId: "legacy"
              })
            )
            const mapping = yield* loadMapping(file)
            const config = configFor(db, { mapping })
            // the same check `outbox init` makes for a mapped table: nothing created, columns checked
            yield* init(config, { notify: false, createTable: false })
            yield* gw.provide(Layer.build(OutboxRole.layer(config)))
            yield* sql.query(
              "INSERT INTO legacy_sms (phone, txt) VALUES ('+447911123456', 'one'), ('+447911123457', 'two'), ('', 'three')"
            )
            const rows = yield* waitUntil(
              "legacy rows final",
              sql.query("SELECT sms_id, state, gw_id, gw_err, gw_ref FROM legacy_sms ORDER BY sms_id"),
              (rows) => rows.length === 3 && rows.every((row) => row.state === "DONE" || row.state === "BAD")
            )
            expect(rows.map((row) => [row.state, row.gw_err])).toEqual([
              ["DONE", null],
              ["DONE", null],
              ["BAD", "phone: is missing"]
            ])
            expect(rows[0]?.gw_id).toBe(idFor("legacy", "legacy_sms", String(rows[0]?.sms_id)))
            expect(rows[0]?.gw_ref).toEqual(expect.any(String))
          }),
        90_000
      )

      it.scoped(
        "status writes are idempotent by event position: a replay changes nothing, an older event never overwrites a newer",
        () =>
          Effect.gen(function* () {
            const { db, sql } = yield* Harness
            const messageId = idFor("shop", "sms_outbox", "status-test")
            // a row the role will not claim (already queued), whose message has no events of its own
            yield* sql.query(
              "INSERT INTO sms_outbox (client_id, recipient, body, status, message_id) VALUES ('shop', '+447911123456', 'x', 'queued', ?)",
              [messageId]
            )
            const [row] = yield* sql.query("SELECT id FROM sms_outbox WHERE message_id = ?", [messageId])
            const key = String(row?.id)
            const database = yield* makeDatabase(configFor(db))
            const patch = (position: number, status: StatusPatch["status"], byKey: boolean): StatusPatch => ({
              messageId,
              key: byKey ? key : undefined,
              position,
              status,
              provider: "sim",
              providerMessageId: `p-${position}`,
              error: null,
              dispatchedAt: new Date("2026-01-01T00:00:00Z"),
              completedAt: status === "delivered" ? new Date("2026-01-01T00:00:05Z") : null
            })
            expect(yield* database.writeStatuses([patch(3000, "delivered", false)])).toBe(1)
            // the same batch again (a reactor restarted before its checkpoint), by message id or by key
            expect(yield* database.writeStatuses([patch(3000, "delivered", false)])).toBe(0)
            expect(yield* database.writeStatuses([patch(3000, "delivered", true)])).toBe(0)
            // an older event (another gateway's reactor behind this one) does not take the row back
            expect(yield* database.writeStatuses([patch(2000, "dispatched", false)])).toBe(0)
            expect(yield* database.writeStatuses([patch(1000, "queued", true)])).toBe(0)
            const [after] = yield* readRows(sql, [key])
            expect(after).toMatchObject({
              status: "delivered",
              provider_message_id: "p-3000",
              last_event_position: "3000"
            })
            // a newer event is written
            expect(yield* database.writeStatuses([patch(4000, "failed", true)])).toBe(1)
            expect((yield* readRows(sql, [key]))[0]?.status).toBe("failed")
            // a batch with both kinds of write (one round trip on PostgreSQL): by key first, both counted
            expect(
              yield* database.writeStatuses([
                patch(5000, "dispatched", true),
                patch(6000, "delivered", false)
              ])
            ).toBe(2)
            expect((yield* readRows(sql, [key]))[0]).toMatchObject({
              status: "delivered",
              last_event_position: "6000"
            })
          }),
        30_000
      )

      it.effect(
        "/ready and /metrics show the outbox's state, never the database password",
        () =>
          Effect.gen(function* () {
            const { gw } = yield* Harness
            const ready = yield* Effect.promise(() =>
              fetch(`${gw.publicUrl}/ready`).then(async (r) => ({ status: r.status, text: await r.text() }))
            )
            expect(ready.status).toBe(200)
            const checks = (
              JSON.parse(ready.text) as { checks: Record<string, { ok: boolean; detail?: string }> }
            ).checks
            expect(checks.outbox?.ok).toBe(true)
            expect(checks.outbox?.detail).toContain("sms_outbox on")
            expect(ready.text).not.toContain(DB_PASSWORD)
            const metrics = yield* Effect.promise(() =>
              fetch(`${gw.publicUrl}/metrics`).then((r) => r.text())
            )
            expect(metrics).toMatch(/^sms_outbox_rows_total\{table="sms_outbox",outcome="queued"\} \d+/m)
            expect(metrics).toMatch(/^sms_outbox_rows_total\{table="sms_outbox",outcome="rejected"\} \d+/m)
            expect(metrics).toMatch(/^sms_outbox_database_up\{table="sms_outbox"\} 1$/m)
            expect(metrics).toMatch(/^sms_outbox_claim_duration_seconds_count\{table="sms_outbox"\} \d+/m)
            expect(metrics).toMatch(/^sms_outbox_status_writes_total\{table="sms_outbox"\} \d+/m)
          }),
        30_000
      )
    })
  })
}
