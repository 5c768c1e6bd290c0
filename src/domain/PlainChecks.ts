/**
 * The checks the lean codecs share: what a Schema would accept, by plain functions (the hot path
 * reads every command, event, work item and report with them; see the property tests that hold
 * them equal to the Schemas).
 */
import { Predicate } from "effect"

/** The fields of a JSON object, or undefined for anything else (invalid JSON included). */
export const jsonObject = (text: string): Readonly<Record<string, unknown>> | undefined => {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    return undefined
  }
  return Predicate.isRecord(json) ? json : undefined
}

/** `Schema.Date`: `new Date(string)`, refused when invalid. */
export const dateFrom = (value: unknown): Date | undefined => {
  if (typeof value !== "string") return undefined
  const date = new Date(value)
  return Number.isNaN(date.getTime()) ? undefined : date
}

/**
 * `Schema.Record({ key: String, value: String })` builds a new object by assignment, as here: a
 * `__proto__` key is dropped the same way.
 */
export const stringRecord = (value: unknown): Record<string, string> | undefined => {
  if (!Predicate.isRecord(value)) return undefined
  const record: Record<string, string> = {}
  for (const [key, entry] of Object.entries(value)) {
    if (typeof entry !== "string") return undefined
    record[key] = entry
  }
  return record
}
