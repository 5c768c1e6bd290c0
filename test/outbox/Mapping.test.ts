/** The outbox's settings: the mapping file's checks and the environment's, all pure. */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Either, Option } from "effect"
import { configFromEnv, dialectOf, maskUrl } from "../../src/outbox/Config.js"
import { DEFAULT_COLUMNS, decodeMapping } from "../../src/outbox/Mapping.js"

const good = {
  table: "billing.sms_queue",
  columns: {
    id: "sms_id",
    to: "phone",
    body: "text",
    status: "state",
    messageId: "gw_id",
    lastEventPosition: "gw_pos"
  }
}

const problemsOf = (json: unknown) =>
  Either.match(decodeMapping(json, "mapping.json"), { onLeft: (e) => e.message, onRight: () => "valid" })

describe("the mapping file", () => {
  it("maps the required columns, leaves the optional ones out, and keeps the default statuses", () => {
    const mapping = Either.getOrThrow(decodeMapping(good, "mapping.json"))
    expect(mapping.table).toBe("billing.sms_queue")
    expect(mapping.columns).toEqual(good.columns)
    expect(mapping.statuses.pending).toBe("pending")
    expect(mapping.defaultClientId).toBe("outbox")
  })

  it("takes the application's own status values and client id; null means no such column", () => {
    const mapping = Either.getOrThrow(
      decodeMapping(
        {
          ...good,
          columns: { ...good.columns, error: "gw_err", from: null },
          statuses: { pending: "NEW", delivered: "DONE" },
          defaultClientId: "billing"
        },
        "mapping.json"
      )
    )
    expect(mapping.columns.error).toBe("gw_err")
    expect(mapping.columns).not.toHaveProperty("from")
    expect(mapping.statuses).toMatchObject({ pending: "NEW", delivered: "DONE", failed: "failed" })
    expect(mapping.defaultClientId).toBe("billing")
  })

  it("lists every problem at once, each with where it is", () => {
    const message = problemsOf({
      table: "sms; DROP TABLE x",
      columns: { id: "sms id", to: "phone", body: "text", status: "state", recipent: "x" },
      statuses: { pending: "" }
    })
    expect(message).toContain("mapping.json is not a valid outbox mapping")
    expect(message).toContain("table: must be a table name")
    expect(message).toContain("columns.id: must be a column name")
    expect(message).toContain("columns.messageId: is missing")
    expect(message).toContain("columns.lastEventPosition: is missing")
    expect(message).toContain("columns.recipent: is unexpected")
    expect(message).toContain("statuses.pending: must not be empty")
  })

  it("refuses two roles on one column and two statuses stored alike", () => {
    expect(problemsOf({ ...good, columns: { ...good.columns, error: "STATE" } })).toContain(
      "columns: status and error both name column state"
    )
    expect(problemsOf({ ...good, statuses: { delivered: "DONE", failed: "DONE" } })).toContain(
      "statuses: delivered and failed would both be stored as 'DONE'"
    )
    expect(problemsOf({ ...good, statuses: { queued: "pending" } })).toContain(
      "statuses: pending and queued would both be stored as 'pending'"
    )
  })

  it("the default schema's names are what `outbox init` creates", () => {
    expect(DEFAULT_COLUMNS).toMatchObject({ to: "recipient", from: "sender", messageId: "message_id" })
  })
})

describe("the environment", () => {
  const url = "postgres://gateway:s3cret@db.internal:5432/app"

  it("no OUTBOX_URL: the role is off", () => {
    expect(configFromEnv({})).toEqual(Either.right(Option.none()))
    expect(configFromEnv({ OUTBOX_URL: "  " })).toEqual(Either.right(Option.none()))
  })

  it("reads the database kind from the URL's scheme", () => {
    expect(dialectOf(url)).toBe("postgres")
    expect(dialectOf("postgresql://x@h/db")).toBe("postgres")
    expect(dialectOf("mysql://x@h/db")).toBe("mysql")
    expect(dialectOf("mariadb://x@h/db")).toBe("mysql")
    expect(dialectOf("sqlite:///tmp/x")).toBeUndefined()
  })

  it("defaults: table sms_outbox, 500 ms polls, batches of 500", () => {
    const config = Option.getOrThrow(Either.getOrThrow(configFromEnv({ OUTBOX_URL: url })))
    expect(config.dialect).toBe("postgres")
    expect(config.mapping.table).toBe("sms_outbox")
    expect(Duration.toMillis(config.pollInterval)).toBe(500)
    expect(config.batchSize).toBe(500)
    const tuned = Option.getOrThrow(
      Either.getOrThrow(
        configFromEnv({
          OUTBOX_URL: url,
          OUTBOX_TABLE: "app.texts",
          OUTBOX_POLL_MS: "50",
          OUTBOX_BATCH: "100"
        })
      )
    )
    expect([tuned.mapping.table, Duration.toMillis(tuned.pollInterval), tuned.batchSize]).toEqual([
      "app.texts",
      50,
      100
    ])
  })

  it("refuses what it cannot use, in one sentence that never holds the password", () => {
    const refusal = (env: Record<string, string>) =>
      Either.match(configFromEnv(env), { onLeft: (e) => e.message, onRight: () => "accepted" })
    const scheme = refusal({ OUTBOX_URL: "redis://u:s3cret@h/0" })
    expect(scheme).toContain("OUTBOX_URL must start with postgres:// or mysql://")
    expect(scheme).not.toContain("s3cret")
    expect(refusal({ OUTBOX_URL: url, OUTBOX_POLL_MS: "soon" })).toContain(
      "OUTBOX_POLL_MS must be a whole number"
    )
    expect(refusal({ OUTBOX_URL: url, OUTBOX_BATCH: "100000" })).toContain(
      "OUTBOX_BATCH must be a whole number from 1 to 5000"
    )
    expect(refusal({ OUTBOX_URL: url, OUTBOX_TABLE: "a b" })).toContain("OUTBOX_TABLE must be a table name")
    expect(refusal({ OUTBOX_URL: url, OUTBOX_TABLE: "t", OUTBOX_MAPPING: "m.json" })).toContain("not both")
    expect(refusal({ OUTBOX_URL: url, OUTBOX_MAPPING: "/nonexistent/mapping.json" })).toContain(
      "cannot read the outbox mapping /nonexistent/mapping.json"
    )
  })

  it("masks the password (and any query string) wherever the URL is shown", () => {
    expect(maskUrl(url)).toBe("postgres://gateway:***@db.internal:5432/app")
    expect(maskUrl("mysql://root@h:3306/db?password=x")).toBe("mysql://root@h:3306/db")
    expect(maskUrl("not a url://u:pw@h")).not.toContain("pw@")
  })
})
