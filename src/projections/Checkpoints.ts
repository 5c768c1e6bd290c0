/**
 * Projection checkpoints, documents of the KV bucket `sms_checkpoints` (through the documents port),
 * written with optimistic concurrency: a save names the revision it read. When another process got
 * there first, the furthest position wins and is never moved back.
 */
import { Effect, Schedule } from "effect"
import { kvDocumentStore } from "../nats/KvDocumentStore.js"
import { natsRequest } from "../nats/Nats.js"
import type { Documents } from "../platform/Documents.js"
import { ReadModels } from "./ReadModels.js"

export interface Checkpoint {
  readonly position: number
  /** revision of the stored checkpoint; 0 when none exists yet */
  readonly revision: number
}

const read = (documents: Documents, name: string) =>
  natsRequest(`cannot read checkpoint ${name}`, () => documents.get(name)).pipe(
    Effect.map(
      (stored): Checkpoint =>
        stored === undefined
          ? { position: 0, revision: 0 }
          : { position: Number(stored.value), revision: stored.revision }
    )
  )

const checkpointDocuments = Effect.map(ReadModels, ({ checkpoints }) => kvDocumentStore(checkpoints))

export const load = (name: string) =>
  Effect.flatMap(checkpointDocuments, (documents) => read(documents, name))

export const save = (name: string, position: number, known: Checkpoint) =>
  Effect.gen(function* () {
    const documents = yield* checkpointDocuments
    let current = known
    for (;;) {
      if (current.position >= position) return current
      const attempt = current
      const written = yield* natsRequest(`cannot save checkpoint ${name}`, () =>
        documents.put(name, String(position), attempt.revision === 0 ? undefined : attempt.revision)
      ).pipe(Effect.option)
      if (written._tag === "Some") return { position, revision: written.value }
      current = yield* read(documents, name)
    }
  }).pipe(Effect.retry(Schedule.recurs(3)))
