/**
 * The documents port: values by key, each with a revision that a conditional write names. Read
 * models write through it (`projections/KvDocuments.ts`); the adapters are NATS KV
 * (`nats/KvDocumentStore.ts`) and the in-memory one below, and one contract suite holds both
 * (`test/contracts/DocumentsContract.ts`).
 *
 * Promises, not Effects: a read model's batch puts all its reads, then all its writes, in flight
 * together, one Effect per batch (issue 11).
 */

export interface StoredDocument {
  readonly value: string
  /** increases with every write to the store */
  readonly revision: number
}

export interface Documents {
  /** the value at `key` and its revision; undefined when it was never written or was deleted */
  readonly get: (key: string) => Promise<StoredDocument | undefined>
  /**
   * Writes `value` at `key` if its revision is still `revision` (undefined: only if absent), and
   * answers the new revision. When another writer moved it first, rejects with `DocumentConflict`
   * and stores nothing; any other rejection means the store could not be reached.
   */
  readonly put: (key: string, value: string, revision: number | undefined) => Promise<number>
}

/** Another writer moved the document since the revision the write named. */
export class DocumentConflict extends Error {
  constructor(readonly key: string) {
    super(`document ${key} was written by another writer`)
    this.name = "DocumentConflict"
  }
}

/** Documents in this process's memory: tests, and a read model nobody else reads. */
export const memoryDocuments = (): Documents => {
  const documents = new Map<string, StoredDocument>()
  let lastRevision = 0
  return {
    get: (key) => Promise.resolve(documents.get(key)),
    put: (key, value, revision) => {
      if (documents.get(key)?.revision !== revision) return Promise.reject(new DocumentConflict(key))
      lastRevision += 1
      documents.set(key, { value, revision: lastRevision })
      return Promise.resolve(lastRevision)
    }
  }
}
