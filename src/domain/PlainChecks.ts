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

/**
 * Whether JSON-parsed `value` nests more than `max` arrays/objects deep. Iterative: the input is
 * untrusted, and a recursive walk is what a deep input breaks.
 */
export const nestedDeeperThan = (value: unknown, max: number): boolean => {
  const stack: Array<{ readonly node: unknown; readonly depth: number }> = [{ node: value, depth: 0 }]
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const { node, depth } = next
    if (typeof node !== "object" || node === null) continue
    if (depth + 1 > max) return true
    for (const child of Array.isArray(node) ? node : Object.values(node)) {
      if (typeof child === "object" && child !== null) stack.push({ node: child, depth: depth + 1 })
    }
  }
  return false
}

/**
 * Whether JSON text nests more than `max` arrays/objects deep, by one scan of the text (strings and
 * their escapes skipped): a cheap look before a parser and a Schema walk the value, since a deep
 * enough value overflows the stack of whichever of them recurses (an answer-less 500 before).
 */
export const jsonTextDeeperThan = (text: string, max: number): boolean => {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92 /* \ */) i++
      else if (c === 34 /* " */) inString = false
    } else if (c === 34) inString = true
    else if (c === 91 /* [ */ || c === 123 /* { */) {
      if (++depth > max) return true
    } else if (c === 93 /* ] */ || c === 125 /* } */) depth--
  }
  return false
}
