/**
 * The search read model: the projection (idempotent, a rebuild gives the same rows), the filters
 * read from and written to the URL, and pages through each access path, newest first.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { search } from "../../src/console/MessageSearch.js"
import { applyEvents, latencyBound, latencyBucket } from "../../src/console/SearchProjection.js"
import {
  filterFromParams,
  filterToParams,
  PAGE_SIZE,
  parseTime,
  queryString
} from "../../src/console/SearchQuery.js"
import { SearchProjector } from "../../src/console/SearchProjector.js"
import { makeStore, SearchStore, type SearchStoreService } from "../../src/console/SearchStore.js"
import { quantile } from "../../src/console/Figures.js"
import { messageIdFor } from "../../src/domain/Ids.js"
import { SmsDelivered, SmsDispatched, SmsFailed, SmsRequested } from "../../src/domain/Message.js"
import { EventStore, ExpectedRevision, type RecordedEvent } from "../../src/eventstore/EventStore.js"
import * as MemoryEventStore from "../../src/eventstore/MemoryEventStore.js"
import { toStored } from "../../src/eventstore/MessageEvents.js"

const T0 = Date.parse("2026-11-01T00:00:00Z")
const NOW = T0 + 60 * 60 * 1000

let position = 0
const recorded = (event: Parameters<typeof toStored>[0], revision: number, at: number): RecordedEvent => {
  position += 1024
  const stored = toStored(event, revision)
  return {
    id: stored.id,
    type: stored.type,
    data: stored.data,
    streamName: `sms-${event.messageId}`,
    revision,
    position,
    recordedAt: new Date(at)
  }
}

/** Message `i`: requested `i` seconds after T0 by client-(i % 3) to +4479111<6 digits of i>; every 4th fails. */
const messageEvents = (i: number): Array<RecordedEvent> => {
  const clientId = `client-${i % 3}`
  const messageId = messageIdFor(clientId, `order-${i}`)
  const at = T0 + i * 1000
  const to = `+4479111${String(100000 + i).slice(-6)}`
  const events = [
    recorded(
      new SmsRequested({
        messageId,
        clientId,
        idempotencyKey: `order-${i}`,
        to,
        body: "hi",
        encoding: "GSM-7",
        segments: 1,
        ...(i % 2 === 0 ? { trackingId: `track-${i}` } : {}),
        requestedAt: new Date(at)
      }),
      0,
      at
    )
  ]
  if (i % 4 === 3) {
    events.push(
      recorded(
        new SmsFailed({
          messageId,
          provider: "p",
          reason: "invalid_number",
          permanent: true,
          failedAt: new Date(at + 100)
        }),
        1,
        at + 100
      )
    )
    return events
  }
  events.push(
    recorded(
      new SmsDispatched({
        messageId,
        provider: i % 2 === 0 ? "p" : "q",
        providerMessageId: `x-${i}`,
        attempt: 1,
        dispatchedAt: new Date(at + 200)
      }),
      1,
      at + 200
    ),
    recorded(
      new SmsDelivered({
        messageId,
        provider: i % 2 === 0 ? "p" : "q",
        providerMessageId: `x-${i}`,
        rawStatus: "DELIVRD",
        deliveredAt: new Date(at + 1200)
      }),
      2,
      at + 1200
    )
  )
  return events
}

const COUNT = 240
const allEvents = (() => {
  position = 0
  return Array.from({ length: COUNT }, (_, i) => messageEvents(i))
    .flat()
    .sort((a, b) => a.position - b.position)
})()
const lastPosition = allEvents[allEvents.length - 1]?.position ?? 0

const filled = (store: SearchStoreService = makeStore(":memory:")) =>
  Effect.as(applyEvents(store, allEvents, lastPosition, NOW), store)

const snapshot = (store: SearchStoreService) => ({
  messages: store.rows({ sql: "SELECT * FROM messages ORDER BY seq", params: [] }),
  activity: store.rows({ sql: "SELECT * FROM activity ORDER BY bucket, status, provider", params: [] }),
  latency: store.rows({ sql: "SELECT * FROM latency ORDER BY bucket, kind, provider, le", params: [] })
})

describe("console search projection", () => {
  it.effect("applies each event once: a batch applied again changes nothing, counts included", () =>
    Effect.gen(function* () {
      const store = yield* filled()
      const once = snapshot(store)
      expect(once.messages).toHaveLength(COUNT)
      yield* applyEvents(store, allEvents, lastPosition, NOW)
      expect(snapshot(store)).toEqual(once)
      expect(store.position()).toBe(lastPosition)
    })
  )

  it.effect("a rebuild from position 0 gives the same rows, and so does applying in many small batches", () =>
    Effect.gen(function* () {
      const store = yield* filled()
      const before = snapshot(store)
      store.reset()
      expect(store.position()).toBe(0)
      for (let i = 0; i < allEvents.length; i += 7) {
        const batch = allEvents.slice(i, i + 7)
        yield* applyEvents(store, batch, batch[batch.length - 1]?.position ?? 0, NOW)
      }
      expect(snapshot(store)).toEqual(before)
    })
  )

  it.effect("folds the status as the status read model does, and counts latencies", () =>
    Effect.gen(function* () {
      const store = yield* filled()
      const statuses = store.rows<{ status: string; n: number }>({
        sql: "SELECT status, count(*) AS n FROM messages GROUP BY status ORDER BY status",
        params: []
      })
      expect(statuses).toEqual([
        { status: "delivered", n: 180 },
        { status: "failed", n: 60 }
      ])
      const delivery = store.rows<{ le: number; n: number }>({
        sql: "SELECT le, sum(n) AS n FROM latency WHERE kind = 'delivery' GROUP BY le",
        params: []
      })
      expect(delivery).toEqual([{ le: latencyBucket(1200), n: 180 }])
      expect(latencyBound(latencyBucket(1200))).toBeGreaterThanOrEqual(1200)
      expect(latencyBound(latencyBucket(1200))).toBeLessThan(1200 * 1.25)
    })
  )
})

describe("console message search", () => {
  it.effect("newest first, paged by cursors both ways", () =>
    Effect.gen(function* () {
      const store = yield* filled()
      const first = search(store, {}, { limit: PAGE_SIZE })
      expect(first.rows.map((r) => r.idempotencyKey).slice(0, 2)).toEqual(["order-239", "order-238"])
      expect(first.newer).toBeUndefined()
      const second = search(store, {}, { before: first.older ?? 0, limit: PAGE_SIZE })
      expect(second.rows[0]?.idempotencyKey).toBe(`order-${239 - PAGE_SIZE}`)
      const back = search(store, {}, { after: second.newer ?? 0, limit: PAGE_SIZE })
      expect(back.rows.map((r) => r.messageId)).toEqual(first.rows.map((r) => r.messageId))
    })
  )

  it.effect(
    "by any part of the recipient (trigram index from 3 digits, a scan below), with other filters",
    () =>
      Effect.gen(function* () {
        const store = yield* filled()
        const exact = search(store, { to: "4479111100123" }, { limit: PAGE_SIZE })
        expect([exact.driver, exact.rows.map((r) => r.idempotencyKey)]).toEqual(["Recipient", ["order-123"]])
        const part = search(store, { to: "0123" }, { limit: PAGE_SIZE })
        expect(part.rows.map((r) => r.idempotencyKey)).toEqual(["order-123"])
        const two = search(store, { to: "23" }, { limit: PAGE_SIZE })
        expect(two.driver).toBe("Scan")
        expect(two.rows.every((r) => r.recipient.includes("23"))).toBe(true)
        const failed = search(store, { to: "10011", status: "failed" }, { limit: PAGE_SIZE })
        expect(failed.rows.map((r) => r.idempotencyKey)).toEqual(["order-119", "order-115", "order-111"])
      })
  )

  it.effect("by status, client, provider and time range through their indexes", () =>
    Effect.gen(function* () {
      const store = yield* filled()
      const rows = search(store, { client: "client-1", status: "failed" }, { limit: 500 }).rows
      expect(rows.length).toBe(20)
      expect(rows.every((r) => r.clientId === "client-1" && r.status === "failed")).toBe(true)
      const q = search(store, { provider: "q" }, { limit: 500 }).rows
      expect(q.every((r) => r.provider === "q")).toBe(true)
      const hour = search(store, { from: T0 + 10_000, until: T0 + 20_000 }, { limit: 500 }).rows
      expect(hour.map((r) => r.idempotencyKey)).toEqual(
        Array.from({ length: 10 }, (_, i) => `order-${19 - i}`)
      )
    })
  )

  it.effect("by exact message id, idempotency key or tracking id", () =>
    Effect.gen(function* () {
      const store = yield* filled()
      const id = messageIdFor("client-1", "order-7")
      expect(search(store, { id }, { limit: PAGE_SIZE }).rows.map((r) => r.idempotencyKey)).toEqual([
        "order-7"
      ])
      expect(search(store, { id: "order-7" }, { limit: PAGE_SIZE }).rows.map((r) => r.messageId)).toEqual([
        id
      ])
      expect(
        search(store, { id: "track-8" }, { limit: PAGE_SIZE }).rows.map((r) => r.idempotencyKey)
      ).toEqual(["order-8"])
      expect(search(store, { id: "track-7" }, { limit: PAGE_SIZE }).rows).toEqual([])
    })
  )
})

describe("console search filters in the URL", () => {
  it("reads what it understands, leaves the rest out, and writes it back the same", () => {
    const filter = filterFromParams({
      status: "failed",
      client: " shop ",
      to: "+44 7911-12",
      from: "2026-11-01T10:00",
      until: "not a time",
      id: "",
      provider: "p"
    })
    expect(filter).toEqual({
      status: "failed",
      client: "shop",
      provider: "p",
      to: "44791112",
      from: Date.parse("2026-11-01T10:00Z")
    })
    expect(filterFromParams({ status: "nonsense" })).toEqual({})
    expect(filterFromParams(Object.fromEntries(filterToParams(filter)))).toEqual(filter)
    expect(queryString(filterToParams({ to: "123", client: "a&b" }))).toBe("?client=a%26b&to=123")
    expect(parseTime("2026-11-01T10:00:00+02:00")).toBe(Date.parse("2026-11-01T08:00:00Z"))
  })

  it("a quantile of latency buckets is the upper bound of the bucket holding it", () => {
    expect(quantile([], 0.5)).toBeUndefined()
    const buckets = [
      { le: 10, n: 50 },
      { le: 20, n: 49 },
      { le: 30, n: 1 }
    ]
    expect(quantile(buckets, 0.5)).toBe(latencyBound(10))
    expect(quantile(buckets, 0.99)).toBe(latencyBound(20))
    expect(quantile(buckets, 1)).toBe(latencyBound(30))
  })
})

describe("the search projector", () => {
  const appendRequested = (i: number) =>
    Effect.flatMap(EventStore, (store) => {
      const [event] = messageEvents(i)
      return store.append(
        event?.streamName ?? "",
        [{ id: event?.id ?? "", type: event?.type ?? "", data: event?.data }],
        ExpectedRevision.NoStream()
      )
    })

  it.live("an in-memory store is built from the first console request on, a file from the start", () =>
    Effect.gen(function* () {
      const caughtUp = (store: SearchStoreService, wanted: number) =>
        Effect.gen(function* () {
          for (let tries = 0; tries < 100 && store.position() < wanted; tries++)
            yield* Effect.sleep("20 millis")
          return store.position()
        })
      const run = (followFromStart: boolean) =>
        Effect.gen(function* () {
          yield* appendRequested(1)
          const projector = yield* SearchProjector
          const store = yield* SearchStore
          const { position } = yield* appendRequested(2)
          const before = yield* caughtUp(store, position)
          yield* projector.ensureRunning
          yield* projector.ensureRunning // a second call changes nothing
          return { before, after: yield* caughtUp(store, position), head: position }
        }).pipe(
          Effect.provide(
            SearchProjector.layer(followFromStart).pipe(
              Layer.provideMerge(SearchStore.layerMemory),
              Layer.provideMerge(MemoryEventStore.layer)
            )
          )
        )
      const lazy = yield* run(false)
      expect(lazy.before).toBeLessThan(lazy.head)
      expect(lazy.after).toBe(lazy.head)
      const eager = yield* run(true)
      expect(eager.before).toBe(eager.head)
    })
  )
})
