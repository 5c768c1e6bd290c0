/**
 * `sms-gateway outbox init [--notify]` and the `outbox` role's switch, through the CLI as an operator
 * runs them, against real databases. The password in OUTBOX_URL is never printed.
 */
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { DB_PASSWORD, startMariaDb, startPostgres } from "../support/databases.js"
import { spawnProcess, tempFolder } from "../support/processes.js"
import { sqlClient } from "./support.js"

const cli = (args: ReadonlyArray<string>, env: Record<string, string | undefined>) =>
  Effect.gen(function* () {
    const environment: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1" }
    for (const [name, value] of Object.entries(env)) {
      if (value === undefined) delete environment[name]
      else environment[name] = value
    }
    const spawned = yield* spawnProcess(process.execPath, ["bin/sms-gateway.mjs", ...args], {
      env: environment
    })
    const code = yield* spawned.exited("60 seconds")
    return { code, stdout: spawned.stdout(), stderr: spawned.stderr() }
  })

describe("sms-gateway outbox init", () => {
  it.scopedLive(
    "creates the table and the NOTIFY trigger on PostgreSQL, again without harm, never printing the password",
    () =>
      Effect.gen(function* () {
        const db = yield* startPostgres
        const env = { OUTBOX_URL: db.url, OUTBOX_TABLE: undefined, OUTBOX_MAPPING: undefined }
        const first = yield* cli(["outbox", "init", "--notify"], env)
        expect(first, first.stderr).toMatchObject({ code: 0 })
        expect(first.stdout).toContain("outbox table sms_outbox ready on postgres://gateway:***@127.0.0.1")
        expect(first.stdout).toContain("inserts notify channel sms_outbox")
        expect(`${first.stdout}${first.stderr}`).not.toContain(DB_PASSWORD)
        const again = yield* cli(["outbox", "init", "--notify"], env)
        expect(again.code).toBe(0)

        const sql = yield* sqlClient("postgres", db.url)
        const triggers = yield* sql.query(
          "SELECT tgname FROM pg_trigger WHERE tgrelid = 'sms_outbox'::regclass AND NOT tgisinternal"
        )
        expect(triggers.map((row) => row.tgname)).toEqual(["sms_outbox_notify"])
        const indexes = yield* sql.query(
          "SELECT indexname FROM pg_indexes WHERE tablename = 'sms_outbox' ORDER BY 1"
        )
        expect(indexes.map((row) => row.indexname)).toEqual([
          "sms_outbox_message_id",
          "sms_outbox_pending",
          "sms_outbox_pkey"
        ])
      }),
    120_000
  )

  it.scopedLive(
    "creates the table on MariaDB, refuses --notify there, and names a missing column of a mapped table",
    () =>
      Effect.gen(function* () {
        const db = yield* startMariaDb
        const made = yield* cli(["outbox", "init"], {
          OUTBOX_URL: db.url,
          OUTBOX_TABLE: "texts",
          OUTBOX_MAPPING: undefined
        })
        expect(made, made.stderr).toMatchObject({ code: 0 })
        expect(made.stdout).toContain("outbox table texts ready on mysql://gateway:***@127.0.0.1")
        const notify = yield* cli(["outbox", "init", "--notify"], {
          OUTBOX_URL: db.url,
          OUTBOX_MAPPING: undefined
        })
        expect(notify.code).toBe(1)
        expect(notify.stderr).toContain("--notify needs PostgreSQL")

        const sql = yield* sqlClient("mysql", db.url)
        yield* sql.query(
          "CREATE TABLE legacy (sms_id INT PRIMARY KEY, phone VARCHAR(20), txt TEXT, state VARCHAR(10))"
        )
        const dir = yield* tempFolder("sms-gw-outbox-cli-")
        const mappingFile = join(dir, "mapping.json")
        writeFileSync(
          mappingFile,
          JSON.stringify({
            table: "legacy",
            columns: {
              id: "sms_id",
              to: "phone",
              body: "txt",
              status: "state",
              messageId: "gw_id",
              lastEventPosition: "gw_pos"
            }
          })
        )
        const check = yield* cli(["outbox", "init"], {
          OUTBOX_URL: db.url,
          OUTBOX_TABLE: undefined,
          OUTBOX_MAPPING: mappingFile
        })
        expect(check.code).toBe(1)
        expect(check.stderr).toContain(
          "table legacy has no column gw_id (messageId), gw_pos (lastEventPosition)"
        )
        expect(`${check.stdout}${check.stderr}`).not.toContain(DB_PASSWORD)
      }),
    120_000
  )

  it.scopedLive(
    "without OUTBOX_URL, init and an explicit outbox role are refused with one sentence",
    () =>
      Effect.gen(function* () {
        const init = yield* cli(["outbox", "init"], { OUTBOX_URL: undefined })
        expect(init.code).toBe(1)
        expect(init.stderr).toContain("set OUTBOX_URL")
        const start = yield* cli(["start", "--roles", "outbox"], {
          OUTBOX_URL: undefined,
          NATS_URL: "nats://127.0.0.1:1"
        })
        expect(start.code).toBe(1)
        expect(start.stderr).toContain("the outbox role needs OUTBOX_URL")
        const wrong = yield* cli(["outbox", "init"], { OUTBOX_URL: "redis://user:hunter2@localhost/0" })
        expect(wrong.code).toBe(1)
        expect(wrong.stderr).toContain("OUTBOX_URL must start with postgres:// or mysql://")
        expect(wrong.stderr).not.toContain("hunter2")
      }),
    120_000
  )
})
