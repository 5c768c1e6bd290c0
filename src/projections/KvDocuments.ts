/**
 * A read model of one document per key (the documents port: NATS KV in the gateway, memory in
 * tests), built from events. Each document carries the position of the last event it applied
 * (`applyEvent` skips anything at or below it), and is written with the revision that was read: a
 * concurrent writer (another process, a rebuild) makes the write fail, and the events are applied
 * again to what it wrote. Replays and races therefore change nothing.
 *
 * A batch is applied in rounds, each with its reads in flight together and then its writes in flight
 * together: every document is folded over all of the batch's events for it and written once, and only
 * the keys whose write failed go round again (re-read, re-apply, re-write).
 */
import type { KV, KvEntry } from "@nats-io/kv"
import { Effect, Option, Predicate, Schema, SchemaAST } from "effect"
import { EventStoreError, type RecordedEvent } from "../eventstore/EventStore.js"
import type { Documents, StoredDocument } from "../platform/Documents.js"
import { NatsError, natsRequest } from "../nats/Nats.js"
import type { Projection } from "./ProjectionRunner.js"

export interface KvDocumentsSpec<E, V extends { readonly position: number }, I> {
  readonly name: string
  /** where the documents are kept (`platform/Documents.ts`: NATS KV, or memory) */
  readonly documents: Documents
  readonly handles: ReadonlySet<string>
  readonly schema: Schema.Schema<V, I>
  /** synchronous (one decode per event, no Effect each): the event, or the error the batch fails with */
  readonly decodeEvent: (recorded: RecordedEvent) => E | EventStoreError
  readonly keyOf: (event: E) => string
  /** pure; returns the same object when the event changes nothing */
  readonly applyEvent: (view: V | undefined, event: E, at: RecordedEvent) => V | undefined
  /** the event that starts a document: a batch beginning with it writes without reading first */
  readonly startsDocument?: (event: E) => boolean
}

/** Documents as this process last wrote or read them, so an update usually needs no read first. */
const CACHE_LIMIT = 50_000
/** Rounds of a batch before giving up on a key that keeps conflicting (the runner then restarts). */
const MAX_ROUNDS = 6

interface Known<V> {
  readonly view: V
  readonly revision: number
}

const entryDecoder = <V, I>(schema: Schema.Schema<V, I>) => {
  const decode = Schema.decodeUnknownOption(Schema.parseJson(schema))
  return (entry: KvEntry | null): Option.Option<Known<V>> =>
    entry === null || entry.operation !== "PUT"
      ? Option.none()
      : Option.map(decode(entry.string()), (view) => ({ view, revision: entry.revision }))
}

export const readDocument = <V, I>(kv: KV, schema: Schema.Schema<V, I>, key: string) => {
  const decode = entryDecoder(schema)
  return natsRequest(`cannot read ${key}`, () => kv.get(key)).pipe(Effect.map(decode))
}

type Copy = (value: unknown) => unknown
const same: Copy = (value) => value

/**
 * A copy of a value in the shape and key order the Schema encodes it to, for a schema whose encoded
 * form is its type: structs of strings, numbers, booleans and literals, optional fields, arrays of
 * those. `undefined` for any other schema (transformations, refinements, records...).
 */
const plainCopy = (ast: SchemaAST.AST): Copy | undefined => {
  switch (ast._tag) {
    case "StringKeyword":
    case "NumberKeyword":
    case "BooleanKeyword":
    case "Literal":
    case "UndefinedKeyword":
      return same
    case "Union":
      return ast.types.every((member) => plainCopy(member) === same) ? same : undefined
    case "TupleType": {
      const item = ast.elements.length === 0 && ast.rest.length === 1 ? ast.rest[0] : undefined
      const copyItem = item && plainCopy(item.type)
      if (copyItem === undefined) return undefined
      return copyItem === same
        ? (value) => (Array.isArray(value) ? value.slice() : value)
        : (value) => (Array.isArray(value) ? value.map(copyItem) : value)
    }
    case "TypeLiteral": {
      if (ast.indexSignatures.length > 0) return undefined
      const fields: Array<readonly [string, Copy]> = []
      for (const { name, type } of ast.propertySignatures) {
        const copyField = plainCopy(type)
        if (typeof name !== "string" || copyField === undefined) return undefined
        fields.push([name, copyField])
      }
      return (value) => {
        if (!Predicate.isRecord(value)) return value
        const copy: Record<string, unknown> = {}
        for (const [name, copyField] of fields) {
          const field = value[name]
          if (field !== undefined) copy[name] = copyField(field)
        }
        return copy
      }
    }
    default:
      return undefined
  }
}

/**
 * What `Schema.encodeSync(Schema.parseJson(schema))` gives, at a fraction of its cost when the
 * schema's encoded form is its type (the Schema's encode was most of a write's CPU). Not
 * `JSON.stringify(view)` itself: a view's keys come in the order `applyEvent` added them, which
 * depends on the path the document took, so a rebuilt bucket would differ byte for byte from the live
 * one. Test: KvDocuments.test.ts.
 */
export const jsonEncoder = <V, I>(schema: Schema.Schema<V, I>): ((view: V) => string) => {
  const copy = plainCopy(schema.ast)
  return copy === undefined
    ? Schema.encodeSync(Schema.parseJson(schema))
    : (view) => JSON.stringify(copy(view))
}

export const kvDocuments = <E, V extends { readonly position: number }, I>(
  spec: KvDocumentsSpec<E, V, I>
): Projection<unknown, never> => {
  const encode = jsonEncoder(spec.schema)
  const { documents } = spec
  const decodeView = Schema.decodeUnknownOption(Schema.parseJson(spec.schema))
  const decodeStored = (stored: StoredDocument | undefined): Known<V> | undefined => {
    if (stored === undefined) return undefined
    const view = decodeView(stored.value)
    return Option.isSome(view) ? { view: view.value, revision: stored.revision } : undefined
  }
  const cache = new Map<string, Known<V>>()
  /**
   * Set by `reset` (a rebuild emptied the bucket): a key this instance has not written since is taken
   * to be absent and created without a read. Wrong when another writer created it meanwhile: the
   * create then fails and the key goes round again, read this time.
   */
  let emptied = false

  const remember = (key: string, known: Known<V>) => {
    cache.delete(key)
    cache.set(key, known)
    if (cache.size > CACHE_LIMIT) cache.delete(cache.keys().next().value ?? "")
  }

  interface Write {
    readonly key: string
    readonly view: V
    /** the revision read; `undefined` for a create */
    readonly revision: number | undefined
  }

  const writeAll = (writes: ReadonlyArray<Write>) =>
    Effect.promise(() =>
      Promise.allSettled(writes.map(({ key, view, revision }) => documents.put(key, encode(view), revision)))
    )

  /** Applies each key's events to its document; one round per conflict, all keys of a round together. */
  const applyGroups = (groups: ReadonlyMap<string, ReadonlyArray<readonly [E, RecordedEvent]>>) =>
    Effect.gen(function* () {
      let pending = [...groups.keys()]
      for (let round = 0; pending.length > 0; round++) {
        if (round === MAX_ROUNDS) {
          return yield* new NatsError({
            reason: "RequestFailed",
            message: `${spec.name}: ${pending.length} documents keep conflicting (${pending[0]}...)`
          })
        }
        // where each document starts: cached, taken to be absent (a guess until a create proves it), or read
        const known = new Map<string, Known<V> | undefined>()
        const guessed = new Set<string>()
        const toRead: Array<string> = []
        for (const key of pending) {
          const cached = round === 0 ? cache.get(key) : undefined
          const first = groups.get(key)?.[0]?.[0]
          if (cached !== undefined) known.set(key, cached)
          else if (round === 0 && (emptied || (first !== undefined && spec.startsDocument?.(first) === true)))
            guessed.add(key)
          else toRead.push(key)
        }
        if (toRead.length > 0) {
          const entries = yield* natsRequest(`cannot read ${spec.name} documents`, () =>
            Promise.all(toRead.map((key) => documents.get(key)))
          )
          toRead.forEach((key, i) => {
            const stored = decodeStored(entries[i])
            known.set(key, stored)
            if (stored !== undefined) remember(key, stored)
          })
        }

        const writes: Array<Write> = []
        const retry: Array<string> = []
        for (const key of pending) {
          const start = known.get(key)
          let view = start?.view
          for (const [event, recorded] of groups.get(key) ?? []) view = spec.applyEvent(view, event, recorded)
          if (view !== undefined && view !== start?.view) {
            writes.push({ key, view, revision: start?.revision })
          } else if (guessed.has(key)) {
            // nothing to write proves nothing about a guess (the document may exist): read it next round
            retry.push(key)
          }
        }
        const outcomes = yield* writeAll(writes)
        writes.forEach((write, i) => {
          const outcome = outcomes[i]
          if (outcome?.status === "fulfilled") {
            remember(write.key, { view: write.view, revision: outcome.value })
          } else {
            // refused (another writer moved the document) or unknown: read it and apply again
            cache.delete(write.key)
            retry.push(write.key)
          }
        })
        pending = retry
      }
    })

  return {
    name: spec.name,
    handles: spec.handles,
    reset: Effect.sync(() => {
      cache.clear()
      emptied = true
    }),
    applyBatch: (recorded) =>
      Effect.suspend((): Effect.Effect<void, EventStoreError | NatsError> => {
        const groups = new Map<string, Array<readonly [E, RecordedEvent]>>()
        for (const record of recorded) {
          const event = spec.decodeEvent(record)
          if (event instanceof EventStoreError) return Effect.fail(event)
          const key = spec.keyOf(event)
          const list = groups.get(key)
          if (list) list.push([event, record])
          else groups.set(key, [[event, record]])
        }
        return applyGroups(groups)
      })
  }
}
