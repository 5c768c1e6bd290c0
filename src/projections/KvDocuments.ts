/**
 * A read model of one KV document per key, built from events. Each document carries the position of
 * the last event it applied (`applyEvent` skips anything at or below it), and is written with the
 * revision that was read: a concurrent writer (another process, a rebuild) makes the write fail, and
 * the events are applied again to what it wrote. Replays and races therefore change nothing.
 */
import type { KV } from "@nats-io/kv"
import { Effect, Option, Schema } from "effect"
import type { RecordedEvent } from "../eventstore/EventStore.js"
import { NatsError } from "../nats/Nats.js"
import type { Projection } from "./ProjectionRunner.js"

export interface KvDocumentsSpec<E, V extends { readonly position: number }, I> {
  readonly name: string
  readonly kv: KV
  readonly handles: ReadonlySet<string>
  readonly schema: Schema.Schema<V, I>
  readonly decodeEvent: (recorded: RecordedEvent) => Effect.Effect<E, unknown>
  readonly keyOf: (event: E) => string
  /** pure; returns the same object when the event changes nothing */
  readonly applyEvent: (view: V | undefined, event: E, at: RecordedEvent) => V | undefined
  /** the event that starts a document: a batch beginning with it writes without reading first */
  readonly startsDocument?: (event: E) => boolean
}

const request = <A>(what: string, run: () => Promise<A>) =>
  Effect.tryPromise({
    try: run,
    catch: (cause) => new NatsError({ reason: "RequestFailed", message: what, cause })
  })

/** Documents this process wrote last, so an update usually needs no read first. */
const CACHE_LIMIT = 50_000

export const readDocument = <V, I>(kv: KV, schema: Schema.Schema<V, I>, key: string) => {
  const decode = Schema.decodeUnknownOption(Schema.parseJson(schema))
  return request(`cannot read ${key}`, () => kv.get(key)).pipe(
    Effect.map((entry) =>
      entry === null || entry.operation !== "PUT"
        ? Option.none()
        : Option.map(decode(entry.string()), (view) => ({ view, revision: entry.revision }))
    )
  )
}

export const kvDocuments = <E, V extends { readonly position: number }, I>(
  spec: KvDocumentsSpec<E, V, I>
): Projection<unknown, never> => {
  const encode = Schema.encodeSync(Schema.parseJson(spec.schema))
  const cache = new Map<string, { readonly view: V; readonly revision: number }>()

  const applyToDocument = (key: string, events: ReadonlyArray<readonly [E, RecordedEvent]>) =>
    Effect.gen(function* () {
      const startsDocument =
        spec.startsDocument !== undefined && events[0] !== undefined && spec.startsDocument(events[0][0])
      for (let attempt = 0; ; attempt++) {
        let known = attempt === 0 ? cache.get(key) : undefined
        if (known === undefined && !(attempt === 0 && startsDocument)) {
          known = Option.getOrUndefined(yield* readDocument(spec.kv, spec.schema, key))
        }
        let view = known?.view
        for (const [event, recorded] of events) view = spec.applyEvent(view, event, recorded)
        if (view === undefined || view === known?.view) return
        const next = view
        const written = yield* request(`cannot write ${key}`, () =>
          known === undefined
            ? spec.kv.create(key, encode(next))
            : spec.kv.update(key, encode(next), known.revision)
        ).pipe(Effect.option)
        if (Option.isSome(written)) {
          cache.delete(key)
          cache.set(key, { view: next, revision: written.value })
          if (cache.size > CACHE_LIMIT) cache.delete(cache.keys().next().value ?? "")
          return
        }
        cache.delete(key)
        if (attempt >= 5)
          return yield* new NatsError({ reason: "RequestFailed", message: `${key} keeps conflicting` })
      }
    })

  return {
    name: spec.name,
    handles: spec.handles,
    reset: Effect.sync(() => cache.clear()),
    applyBatch: (recorded) =>
      Effect.gen(function* () {
        const byKey = new Map<string, Array<readonly [E, RecordedEvent]>>()
        for (const record of recorded) {
          const event = yield* spec.decodeEvent(record)
          const key = spec.keyOf(event)
          const list = byKey.get(key)
          if (list) list.push([event, record])
          else byKey.set(key, [[event, record]])
        }
        yield* Effect.forEach(byKey, ([key, events]) => applyToDocument(key, events), {
          concurrency: 64,
          discard: true
        })
      })
  }
}
