/**
 * Runs effects side by side, forking only when there is more than one: `Effect.forEach` with
 * unbounded concurrency forks a fiber per item even for a single one (about 50 µs of CPU each,
 * measured), and at a steady rate most batches hold one message.
 */
import { Effect } from "effect"

export const eachAtOnce = <A, E, R>(
  items: ReadonlyArray<A>,
  f: (item: A, index: number) => Effect.Effect<unknown, E, R>
): Effect.Effect<void, E, R> => {
  if (items.length === 0) return Effect.void
  const [only] = items
  if (items.length === 1 && only !== undefined) return Effect.asVoid(f(only, 0))
  return Effect.forEach(items, f, { concurrency: "unbounded", discard: true })
}
