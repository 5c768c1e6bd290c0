/**
 * The outbox's statements, pure: identifiers quoted, values only as parameters (a property: every
 * placeholder has its parameter, whatever the batch), and the catalog check's words.
 */
import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import { decodeMapping, defaultMapping, type Mapping } from "../../src/outbox/Mapping.js"
import {
  outboxSql,
  quoteTable,
  type RowOutcome,
  schemaProblems,
  type TableInfo
} from "../../src/outbox/Sql.js"
import type { StatusPatch } from "../../src/outbox/StatusPatch.js"
import { Either } from "effect"

const mapping = defaultMapping()
const mysqlInfo: TableInfo = {
  types: new Map(
    Object.values(mapping.columns).map((column) => [
      column ?? "",
      column === "id" ? "bigint(20) unsigned" : "varchar(64)"
    ])
  )
}
const pgInfo: TableInfo = {
  types: new Map(
    Object.values(mapping.columns).map((column) => [column ?? "", column === "id" ? "bigint" : "text"])
  )
}

const outcome = fc.oneof(
  fc.record({ _tag: fc.constant("Queued" as const), key: fc.string(), messageId: fc.uuid() }),
  fc.record({ _tag: fc.constant("Rejected" as const), key: fc.string(), error: fc.string() })
)
const patch = fc.record({
  messageId: fc.uuid(),
  key: fc.option(fc.string(), { nil: undefined }),
  position: fc.nat(),
  status: fc.constantFrom("queued", "dispatched", "delivered", "failed" as const),
  provider: fc.option(fc.string(), { nil: undefined }),
  providerMessageId: fc.option(fc.string(), { nil: undefined }),
  error: fc.option(fc.string(), { nil: null }),
  dispatchedAt: fc.option(fc.date(), { nil: undefined }),
  completedAt: fc.option(fc.date(), { nil: null })
}) as fc.Arbitrary<StatusPatch>

const placeholders = (sql: string) => (sql.match(/\?/g) ?? []).length

describe("outbox SQL", () => {
  it("quotes identifiers per dialect, schema and table apart", () => {
    expect(quoteTable("postgres", "billing.sms")).toBe('"billing"."sms"')
    expect(quoteTable("mysql", "billing.sms")).toBe("`billing`.`sms`")
  })

  it("the claim locks pending rows in key order and skips rows other claims hold", () => {
    const pg = outboxSql("postgres", mapping, pgInfo).claim(100)
    expect(pg.sql).toContain('WHERE "status" = $1 ORDER BY "id" LIMIT $2 FOR UPDATE SKIP LOCKED')
    expect(pg.sql).toContain('"recipient" AS "to"')
    expect(pg.params).toEqual(["pending", 100])
    const my = outboxSql("mysql", mapping, mysqlInfo).claim(100)
    expect(my.sql).toContain("WHERE `status` = ? ORDER BY `id` LIMIT ? FOR UPDATE SKIP LOCKED")
    expect(my.params).toEqual(["pending", 100])
  })

  it("MySQL: every placeholder has its parameter, values never in the text (property)", () => {
    const sql = outboxSql("mysql", mapping, mysqlInfo)
    fc.assert(
      fc.property(
        fc.array(outcome, { minLength: 1, maxLength: 30 }),
        (outcomes: ReadonlyArray<RowOutcome>) => {
          const statement = sql.mark(outcomes)
          expect(placeholders(statement.sql)).toBe(statement.params.length)
          for (const o of outcomes) if (o.key.length > 3) expect(statement.sql).not.toContain(o.key)
        }
      )
    )
    fc.assert(
      fc.property(fc.array(patch, { minLength: 1, maxLength: 30 }), (patches) => {
        for (const statement of [sql.patchByKey(patches), sql.patchByMessageId(patches)]) {
          if (statement === undefined) continue
          expect(placeholders(statement.sql)).toBe(statement.params.length)
        }
      })
    )
  })

  it("MySQL compares an integer key as an integer (as text it would compare as a double, wrong past 2^53)", () => {
    const statement = outboxSql("mysql", mapping, mysqlInfo).mark([
      { _tag: "Queued", key: "9007199254740993", messageId: "m" }
    ])
    expect(statement.sql).toContain("CAST(? AS UNSIGNED)")
    const textKeys = outboxSql("mysql", mapping, { types: new Map([["id", "char(36)"]]) }).mark([
      { _tag: "Queued", key: "k", messageId: "m" }
    ])
    expect(textKeys.sql).not.toContain("CAST(")
  })

  it("PostgreSQL: one statement text for any batch, one typed array per column, only newer positions written", () => {
    const sql = outboxSql("postgres", mapping, pgInfo)
    const sample = (n: number) => fc.sample(patch, { numRuns: n, seed: 1 }).map((p) => ({ ...p, key: "1" }))
    const small = sql.patchByKey(sample(2))
    const big = sql.patchByKey(sample(50))
    expect(small?.sql).toBe(big?.sql)
    expect(big?.params.every((values) => Array.isArray(values) && values.length === 50)).toBe(true)
    expect(big?.sql).toContain('(t."last_event_position" IS NULL OR t."last_event_position" < v.position)')
    expect(big?.sql).toContain("unnest($1::bigint[]")
    expect(sql.patchByMessageId([])).toBeUndefined()
  })

  it("a mapping without optional columns writes only what it has", () => {
    const lean: Mapping = Either.getOrThrow(
      decodeMapping(
        {
          table: "t",
          columns: { id: "id", to: "to_", body: "b", status: "s", messageId: "m", lastEventPosition: "p" }
        },
        "test"
      )
    )
    const info: TableInfo = {
      types: new Map([
        ["id", "integer"],
        ["s", "text"],
        ["m", "text"],
        ["p", "bigint"]
      ])
    }
    const statement = outboxSql("postgres", lean, info).mark([
      { _tag: "Rejected", key: "1", error: "to_: is missing" }
    ])
    expect(statement.sql).not.toContain("error")
    expect(statement.sql).not.toContain("updated_at")
    expect(statement.params).toHaveLength(3)
  })

  it("says which mapped columns the table lacks", () => {
    expect(schemaProblems("postgres", mapping, []).problems).toEqual([
      "table sms_outbox does not exist (create it with `sms-gateway outbox init`)"
    ])
    const found = [
      { name: "id", type: "bigint" },
      { name: "recipient", type: "text" }
    ]
    expect(schemaProblems("postgres", mapping, found).problems[0]).toMatch(
      /^table sms_outbox has no column client_id \(clientId\), sender \(from\), body \(body\)/
    )
    // MySQL's column names are case-insensitive
    const upper = Object.values(mapping.columns).map((name) => ({
      name: (name ?? "").toUpperCase(),
      type: "text"
    }))
    expect(schemaProblems("mysql", mapping, upper).problems).toEqual([])
    expect(schemaProblems("postgres", mapping, upper).problems).not.toEqual([])
  })
})
