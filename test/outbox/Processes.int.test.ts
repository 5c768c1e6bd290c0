/**
 * The outbox role in gateway processes of its own (started by the CLI, as in production), sharing one
 * PostgreSQL table: two gateways take every row exactly once, and a gateway killed with SIGKILL in the
 * middle of a claim (commands stored, rows not yet marked) loses no row and sends none twice. Every
 * count of what was sent comes from the provider simulator's own log.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { connect } from "@nats-io/transport-node"
import { jetstreamManager } from "@nats-io/jetstream"
import { messageIdFor } from "../../src/domain/Ids.js"
import { startNatsServer } from "../../src/nats/NatsServer.js"
import { init } from "../../src/outbox/Init.js"
import * as Simulator from "../../src/providers/Simulator.js"
import { startPostgres } from "../support/databases.js"
import { spawnProcess } from "../support/processes.js"
import { freePort } from "../support/gateway.js"
import { configFor, insertRows, readRows, type Sql, sqlClient, waitUntil } from "./support.js"

const SIM_KEY = "outbox-sim-key"
const SIM_SECRET = "outbox-sim-secret"

/** nats-server, the simulator, PostgreSQL with the outbox table, and a providers file, for the scope. */
const world = Effect.gen(function* () {
  const dir = yield* Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "sms-gw-outbox-procs-"))),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )
  const nats = yield* startNatsServer({ storeDir: join(dir, "nats") })
  const sim = yield* Simulator.start({
    apiKey: SIM_KEY,
    webhookSecret: SIM_SECRET,
    dlr: { delayMs: { min: 0, max: 5 } },
    seed: 3
  })
  const providersFile = join(dir, "providers.json")
  writeFileSync(
    providersFile,
    JSON.stringify({
      providers: [
        {
          id: "sim",
          type: "generic-http",
          baseUrl: sim.url,
          apiKeyEnv: "OUTBOX_SIM_KEY",
          webhookSecretEnv: "OUTBOX_SIM_SECRET",
          echoesReference: true
        }
      ]
    })
  )
  const db = yield* startPostgres
  yield* init(configFor(db), { notify: true, createTable: true })
  const sql = yield* sqlClient("postgres", db.url)
  return { dir, nats, sim, providersFile, db, sql }
})

type World = Effect.Effect.Success<typeof world>

/** `sms-gateway start` as its own process, outbox settings from the environment. */
const gateway = (w: World, name: string, roles?: string) =>
  Effect.gen(function* () {
    const port = yield* freePort
    const dataDir = join(w.dir, name)
    const spawned = yield* spawnProcess(
      process.execPath,
      [
        "bin/sms-gateway.mjs",
        "start",
        "--http-port",
        String(port),
        "--data-dir",
        dataDir,
        ...(roles === undefined ? [] : ["--roles", roles])
      ],
      {
        env: {
          ...process.env,
          NATS_URL: w.nats.url,
          PROVIDERS_CONFIG: w.providersFile,
          OUTBOX_SIM_KEY: SIM_KEY,
          OUTBOX_SIM_SECRET: SIM_SECRET,
          OUTBOX_URL: w.db.url,
          OUTBOX_BATCH: "25",
          OUTBOX_POLL_MS: "100",
          LOG_LEVEL: "Warning",
          // two gateways with every role on one machine: any other listener on a free port too
          GRPC_PORT: "0"
        }
      }
    )
    yield* spawned.waitFor("sms-gateway is running", "60 seconds")
    return { ...spawned, httpUrl: `http://127.0.0.1:${port}` }
  })

const queuedBy = (httpUrl: string) =>
  Effect.promise(() =>
    fetch(`${httpUrl}/metrics`)
      .then((response) => response.text())
      .then((text) =>
        Number(/^sms_outbox_rows_total\{table="sms_outbox",outcome="queued"\} (\d+)/m.exec(text)?.[1] ?? 0)
      )
  )

const allDelivered = (sql: Sql, ids: ReadonlyArray<string>) =>
  waitUntil(
    "every row delivered",
    readRows(sql, ids),
    (rows) => rows.every((row) => row.status === "delivered"),
    "90 seconds"
  )

/** Accepted submissions per message reference, from the simulator's log. */
const submissionsPerMessage = (sim: Simulator.RunningSimulator) => {
  const counts = new Map<string, number>()
  for (const s of sim.submissions()) {
    if (s.outcome === "accepted" && s.reference) counts.set(s.reference, (counts.get(s.reference) ?? 0) + 1)
  }
  return counts
}

const expectEachSentOnce = (sim: Simulator.RunningSimulator, ids: ReadonlyArray<string>) => {
  const counts = submissionsPerMessage(sim)
  const expected = ids.map((id) => messageIdFor("shop", `outbox:sms_outbox:${id}`))
  expect(expected.filter((messageId) => counts.get(messageId) !== 1)).toEqual([])
  expect([...counts.values()].reduce((a, b) => a + b, 0)).toBe(ids.length)
}

const rowsOf = (n: number, tag: string) =>
  Array.from({ length: n }, (_, i) => ({
    to: `+4479111${String(10000 + i).padStart(5, "0")}`,
    body: `${tag} ${i}`
  }))

describe("SQL outbox in gateway processes sharing one table", () => {
  it.scopedLive(
    "two gateways take every row exactly once",
    () =>
      Effect.gen(function* () {
        const w = yield* world
        // every role by default: with OUTBOX_URL set, `start` runs the outbox role too
        const [a, b] = yield* Effect.all([gateway(w, "a"), gateway(w, "b")], { concurrency: 2 })
        const ids: Array<string> = []
        for (let wave = 0; wave < 4; wave++) {
          ids.push(...(yield* insertRows(w.sql, "postgres", rowsOf(100, `wave ${wave}`))))
          yield* Effect.sleep("100 millis")
        }
        const rows = yield* allDelivered(w.sql, ids)
        expect(new Set(rows.map((row) => row.message_id)).size).toBe(400)
        expectEachSentOnce(w.sim, ids)
        const [byA, byB] = yield* Effect.all([queuedBy(a.httpUrl), queuedBy(b.httpUrl)])
        // each row was claimed once, by one of them: no row was stored twice
        expect(byA + byB).toBe(400)
        expect(byA, "gateway a claimed some rows").toBeGreaterThan(0)
        expect(byB, "gateway b claimed some rows").toBeGreaterThan(0)
      }),
    180_000
  )

  it.scopedLive(
    "a gateway killed with SIGKILL mid-claim loses nothing and duplicates nothing",
    () =>
      Effect.gen(function* () {
        const w = yield* world
        // the rest of the pipeline in a process of its own, which is not killed
        yield* gateway(w, "pipeline", "intake,providers,dlr,projector,http")
        // the third claim hangs in its UPDATE: its batch is stored in JetStream, its rows not marked
        yield* hangThirdClaim(w.sql)
        const ids = yield* insertRows(w.sql, "postgres", rowsOf(200, "row"))
        const victim = yield* gateway(w, "victim", "outbox")

        const nc = yield* Effect.acquireRelease(
          Effect.promise(() => connect({ servers: w.nats.url, name: "outbox-test" })),
          (nc) => Effect.promise(() => nc.close())
        )
        const jsm = yield* Effect.promise(() => jetstreamManager(nc))
        const commands = Effect.promise(() => jsm.streams.info("SMS_COMMANDS")).pipe(
          Effect.map((info) => info.state.messages)
        )
        const marked = Effect.map(
          w.sql.query("SELECT count(*)::int AS n FROM sms_outbox WHERE status <> 'pending'"),
          (rows) => Number(rows[0]?.n ?? 0)
        )
        // two batches committed, the third stored in JetStream and not committed: mid-claim
        yield* waitUntil(
          "a claim between storing and committing",
          Effect.all({ commands, marked }),
          ({ commands, marked }) => marked === 50 && commands === 75,
          "60 seconds"
        )
        victim.child.kill("SIGKILL")
        yield* victim.exited("10 seconds")
        // the server would end the dead client's session at its statement's end (statement_timeout):
        // end it now, which rolls the claim back as a crash does
        yield* w.sql.query(
          "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'sms-gateway-outbox%'"
        )
        const afterKill = yield* Effect.all({ commands, marked })
        expect(afterKill).toEqual({ commands: 75, marked: 50 })

        yield* w.sql.query("DROP TRIGGER hang_third_claim ON sms_outbox")
        yield* gateway(w, "successor", "outbox")
        const rows = yield* allDelivered(w.sql, ids)
        expect(rows).toHaveLength(200)
        for (const row of rows)
          expect(row.message_id).toBe(messageIdFor("shop", `outbox:sms_outbox:${row.id}`))
        expectEachSentOnce(w.sim, ids)
      }),
    240_000
  )
})

/**
 * A trigger that makes an UPDATE of the outbox table hang once two batches (50 rows) are marked: the
 * third claim then has its batch stored in JetStream and cannot commit.
 */
const hangThirdClaim = (sql: Sql) =>
  Effect.zipRight(
    sql.query(
      "CREATE OR REPLACE FUNCTION hang_third_claim() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF (SELECT count(*) FROM sms_outbox WHERE status <> 'pending') >= 50 THEN PERFORM pg_sleep(60); END IF; RETURN NULL; END $$"
    ),
    sql.query(
      "CREATE TRIGGER hang_third_claim BEFORE UPDATE ON sms_outbox FOR EACH STATEMENT EXECUTE FUNCTION hang_third_claim()"
    )
  )
