/**
 * Projection checkpoints in KV, written with optimistic concurrency: a save names the revision it
 * read. When another process got there first, the furthest position wins and is never moved back.
 */
import type { KV } from "@nats-io/kv"
import { Effect, Schedule } from "effect"
import { natsRequest } from "../nats/Nats.js"
import { ReadModels } from "./ReadModels.js"

export interface Checkpoint {
  readonly position: number
  /** KV revision of the stored checkpoint; 0 when none exists yet */
  readonly revision: number
}

const read = (kv: KV, name: string) =>
  natsRequest(`cannot read checkpoint ${name}`, () => kv.get(name)).pipe(
    Effect.map(
      (entry): Checkpoint =>
        entry === null || entry.operation !== "PUT"
          ? { position: 0, revision: 0 }
          : { position: Number(entry.string()), revision: entry.revision }
    )
  )

export const load = (name: string) => Effect.flatMap(ReadModels, ({ checkpoints }) => read(checkpoints, name))

export const save = (name: string, position: number, known: Checkpoint) =>
  Effect.gen(function* () {
    const { checkpoints } = yield* ReadModels
    let current = known
    for (;;) {
      if (current.position >= position) return current
      const attempt = current
      const written = yield* natsRequest(`cannot save checkpoint ${name}`, () =>
        attempt.revision === 0
          ? checkpoints.create(name, String(position))
          : checkpoints.update(name, String(position), attempt.revision)
      ).pipe(Effect.option)
      if (written._tag === "Some") return { position, revision: written.value }
      current = yield* read(checkpoints, name)
    }
  }).pipe(Effect.retry(Schedule.recurs(3)))
