/**
 * Parameters written into a statement's text, for PostgreSQL's simple query protocol: it has no
 * parameters, and so is the one way `pg` sends several statements in one round trip (the outbox's
 * claim: `Database.ts`).
 */
import type { Statement } from "./Sql.js"

/**
 * A statement's `$n` parameters written in as literals, for the simple query protocol (which has no
 * parameters, and so can carry several statements in one round trip): each value serialised as the
 * driver serialises a parameter (arrays, dates, null) and quoted with its `escapeLiteral`, which is
 * right whatever `standard_conforming_strings` says. `$n` inside a quoted identifier (`$` is allowed
 * in a name) or a string is left alone.
 */
export const inlineParameters = (statement: Statement, literal: (value: unknown) => string): string => {
  let text = ""
  // the quote that opened the identifier or string we are in, if any (a doubled quote closes and
  // reopens it)
  let quote: string | undefined
  const sql = statement.sql
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i] as string
    if (quote === undefined && (c === '"' || c === "'")) quote = c
    else if (c === quote) quote = undefined
    const digits = quote === undefined && c === "$" ? /^\d+/.exec(sql.slice(i + 1)) : null
    if (digits === null) {
      text += c
      continue
    }
    const index = Number(digits[0]) - 1
    if (index < 0 || index >= statement.params.length)
      throw new Error(`statement has no parameter $${digits[0]}`)
    text += literal(statement.params[index])
    i += digits[0].length
  }
  return text
}

/**
 * A value as a PostgreSQL literal, the way `pg` sends it as a parameter: its own serialiser
 * (`utils.prepareValue`, exported at run time though not in its types) and `escapeLiteral`.
 */
export const postgresLiteral = (pg: typeof import("pg").default) => {
  const { prepareValue } = (pg as unknown as { utils: { prepareValue: (value: unknown) => unknown } }).utils
  return (value: unknown): string => {
    const prepared = prepareValue(value)
    if (Buffer.isBuffer(prepared)) throw new Error("a binary value cannot be written in")
    return prepared === null ? "NULL" : pg.escapeLiteral(String(prepared))
  }
}
