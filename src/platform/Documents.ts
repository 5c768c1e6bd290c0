/**
 * The documents port: values by key, each with a revision that a conditional write names. Read
 * models write through it (`projections/KvDocuments.ts`), and so do the client registry and its
 * quotas (`clients/`); the adapters are NATS KV (`nats/KvDocumentStore.ts`) and the in-memory one
 * below, and one contract suite holds both (`test/contracts/DocumentsContract.ts`).
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
  /** Writes `value` at `key` whatever is there, and answers the new revision. */
  readonly set: (key: string, value: string) => Promise<number>
  /** The keys that hold a document and start with `prefix`, sorted. */
  readonly keys: (prefix: string) => Promise<ReadonlyArray<string>>
  /**
   * Tells `onChange` of every write made after it started, by any writer, in the store's order
   * (`undefined`: the key was deleted), until the answered `stop` is called.
   */
  readonly watch: (
    onChange: (key: string, document: StoredDocument | undefined) => void
  ) => Promise<() => void>
}

/** Another writer moved the document since the revision the write named. */
export class DocumentConflict extends Error {
  constructor(readonly key: string) {
    super(`document ${key} was written by another writer`)
    this.name = "DocumentConflict"
  }
}

/**
 * Documents in this process's memory: tests, and a read model nobody else reads. Watchers hear of
 * a write after the write's promise settles, as they would from a server.
 */
export const memoryDocuments = (): Documents => {
  const documents = new Map<string, StoredDocument>()
  const watchers = new Set<(key: string, document: StoredDocument | undefined) => void>()
  let lastRevision = 0
  const write = (key: string, value: string) => {
    lastRevision += 1
    const document = { value, revision: lastRevision }
    documents.set(key, document)
    for (const watcher of watchers) queueMicrotask(() => watcher(key, document))
    return Promise.resolve(lastRevision)
  }
  return {
    get: (key) => Promise.resolve(documents.get(key)),
    put: (key, value, revision) =>
      documents.get(key)?.revision === revision
        ? write(key, value)
        : Promise.reject(new DocumentConflict(key)),
    set: write,
    keys: (prefix) => Promise.resolve([...documents.keys()].filter((key) => key.startsWith(prefix)).sort()),
    watch: (onChange) => {
      // a stopped watcher hears nothing more, even of a write already queued for it
      let stopped = false
      const watcher = (key: string, document: StoredDocument | undefined) => {
        if (!stopped) onChange(key, document)
      }
      watchers.add(watcher)
      return Promise.resolve(() => {
        stopped = true
        watchers.delete(watcher)
      })
    }
  }
}
