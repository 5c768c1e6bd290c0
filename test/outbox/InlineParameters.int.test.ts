/**
 * PostgreSQL's claim goes in two round trips by writing its parameters into the statements' text
 * (`inlineParameters`). Written in, every value must reach the server exactly as the same value sent
 * as a parameter: checked on a real server, with quotes, backslashes, braces and nulls, and with
 * `standard_conforming_strings` both on and off.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { inlineParameters, postgresLiteral } from "../../src/outbox/InlineParameters.js"
import { startPostgres } from "../support/databases.js"

const noLiteral = () => {
  throw new Error("no value expected")
}

describe("parameters written into a statement", () => {
  it("replaces $n by its value's literal, $10 as ten, and leaves quoted names and strings alone", () => {
    const literal = (value: unknown) => `<${String(value)}>`
    const params = Array.from({ length: 10 }, (_, i) => `p${i + 1}`)
    expect(inlineParameters({ sql: `SELECT $1, $10, "col$1", 'it''s $2' FROM t$x`, params }, literal)).toBe(
      `SELECT <p1>, <p10>, "col$1", 'it''s $2' FROM t$x`
    )
    expect(() => inlineParameters({ sql: "SELECT $2", params: ["only one"] }, noLiteral)).toThrow(
      "statement has no parameter $2"
    )
  })

  it.live(
    "gives the server the same values as parameters would, whatever standard_conforming_strings says",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const db = yield* startPostgres
          const { default: pg } = yield* Effect.promise(() => import("pg"))
          const client = yield* Effect.acquireRelease(
            Effect.promise(async () => {
              const created = new pg.Client({ connectionString: db.url })
              await created.connect()
              return created
            }),
            (client) => Effect.promise(() => client.end())
          )
          const values = [
            `it's a "quote", a back\\slash \\' and $1`,
            ["a,b", `{braces}`, `q"uote`, `back\\slash`, null, "NULL", ""],
            "18446744073709551",
            null,
            "ünïcødé ✓ 😀"
          ]
          const statement = {
            sql: "SELECT $1::text AS a, $2::text[] AS b, $3::numeric AS c, $4::text AS d, $5::text AS e",
            params: values
          }
          const asParameters = (yield* Effect.promise(() => client.query(statement.sql, values))).rows
          const literal = postgresLiteral(pg)
          for (const setting of ["on", "off"]) {
            yield* Effect.promise(() => client.query(`SET standard_conforming_strings = ${setting}`))
            const writtenIn = (yield* Effect.promise(() =>
              client.query(inlineParameters(statement, literal))
            )).rows
            expect(writtenIn).toEqual(asParameters)
          }
          expect(asParameters[0]?.a).toBe(values[0])
          expect(asParameters[0]?.b).toEqual(values[1])
        })
      ),
    60_000
  )
})
