/**
 * The outbox's database goes away in the middle of a run and comes back: the role backs off and says
 * so on `/ready` and `/metrics`, the rest of the gateway keeps delivering, and once the database is
 * back the rows claimed before are brought up to date and new rows flow again.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { messageIdFor } from "../../src/domain/Ids.js"
import { init } from "../../src/outbox/Init.js"
import * as OutboxRole from "../../src/outbox/Role.js"
import { DB_PASSWORD, startDatabase } from "../support/databases.js"
import { awaitFinal, providerEntry, simulator, startGateway } from "../support/inProcessGateway.js"
import { configFor, insertRows, readRows, sqlClient, waitUntil } from "./support.js"

const httpText = (url: string) =>
  Effect.promise(() =>
    fetch(url).then(
      async (response) => ({ status: response.status, text: await response.text() }),
      () => ({ status: 0, text: "" })
    )
  )

const outboxCheck = (baseUrl: string) =>
  Effect.map(httpText(`${baseUrl}/ready`), ({ status, text }) => {
    const body = JSON.parse(text || "{}") as { checks?: { outbox?: { ok: boolean; detail?: string } } }
    return { status, outbox: body.checks?.outbox, text }
  })

const metric = (text: string, pattern: RegExp) => Number(pattern.exec(text)?.[1] ?? Number.NaN)

for (const kind of ["postgres", "mysql"] as const) {
  describe(`SQL outbox on ${kind === "postgres" ? "PostgreSQL" : "MariaDB"}, database restarted mid-run`, () => {
    it.scopedLive(
      "the role backs off while the database is down, the gateway keeps working, and all rows end up written",
      () =>
        Effect.gen(function* () {
          const db = yield* startDatabase(kind)
          // reports come a second or more after the dispatch: they land while the database is down
          const sim = yield* simulator({ dlr: { delayMs: { min: 1500, max: 2000 } } })
          const gw = yield* startGateway([providerEntry("sim", sim.url)])
          const config = configFor(db)
          yield* init(config, { notify: false, createTable: true })
          yield* gw.provide(Layer.build(OutboxRole.layer(config)))
          const before = yield* sqlClient(kind, db.url)

          const first = yield* insertRows(
            before,
            kind,
            Array.from({ length: 5 }, (_, i) => ({ to: `+44791112345${i}`, body: `before ${i}` }))
          )
          yield* waitUntil("rows queued", readRows(before, first), (rows) =>
            rows.every((row) => row.message_id !== null)
          )

          yield* db.stop
          const down = yield* waitUntil(
            "/ready shows the outbox down",
            outboxCheck(gw.publicUrl),
            (ready) => ready.outbox?.ok === false,
            "20 seconds"
          )
          // shown, not deciding: the API stays in its load balancer while the business database is down
          expect(down.status).toBe(200)
          expect(down.outbox?.detail).toMatch(/unreachable/)
          expect(down.text).not.toContain(DB_PASSWORD)
          const metrics = (yield* httpText(`${gw.publicUrl}/metrics`)).text
          expect(metric(metrics, /^sms_outbox_database_up\{table="sms_outbox"\} (\d+)/m)).toBe(0)
          expect(
            metric(metrics, /^sms_outbox_errors_total\{table="sms_outbox",kind="unavailable"\} (\d+)/m)
          ).toBeGreaterThan(0)

          // the rest of the gateway is not held up: a command on NATS is delivered meanwhile, and so
          // are the messages the outbox stored before the database went
          const viaNats = yield* gw.send({ to: "+447911123499", body: "while the outbox database is down" })
          const delivered = yield* awaitFinal(gw, [
            viaNats,
            ...first.map((id) => messageIdFor("shop", `outbox:sms_outbox:${id}`))
          ])
          expect(delivered.map((message) => message.state.status)).toEqual(Array(6).fill("delivered"))

          yield* db.start
          const after = yield* sqlClient(kind, db.url)
          const second = yield* insertRows(
            after,
            kind,
            Array.from({ length: 5 }, (_, i) => ({ to: `+44791112346${i}`, body: `after ${i}` }))
          )
          const rows = yield* waitUntil(
            "every row delivered and written back",
            readRows(after, [...first, ...second]),
            (rows) => rows.every((row) => row.status === "delivered"),
            "40 seconds"
          )
          expect(rows).toHaveLength(10)
          for (const row of rows)
            expect(row.message_id).toBe(messageIdFor("shop", `outbox:sms_outbox:${row.id}`))
          // every row's message was submitted exactly once
          for (const row of rows) expect(sim.submissions(row.message_id ?? "")).toHaveLength(1)
          const up = yield* waitUntil(
            "/ready shows the outbox up",
            outboxCheck(gw.publicUrl),
            (ready) => ready.outbox?.ok === true
          )
          expect(up.status).toBe(200)
        }),
      120_000
    )
  })
}
