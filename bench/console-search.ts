/**
 * The console's message search at scale (issue 15: at most 100 ms with 1,000,000 messages).
 *
 *   node --import tsx bench/console-search.ts            # N=1000000, 30 runs of each filter
 *   N=100000 RUNS=10 node --import tsx bench/console-search.ts
 *
 * 1. fills an SQLite search store in a temporary folder with N messages through the projection
 *    itself (`applyEvents`, batches of 5,000 events, as a rebuild does): about 2.9 events a message,
 *    requested over 30 days by 50 clients (a few large, many small), through 3 providers, to 200,000
 *    distinct numbers in four countries (client-1 only to one of them); 93 % delivered, 4 % failed,
 *    the rest on the way;
 * 2. times each filter of the messages list (the first page, 50 rows, newest first, as the console
 *    asks for it; the next page for the keyset ones), RUNS times, after one warm-up run;
 * 3. prints a table (p50, p99, max in ms, rows found) and one JSON line; the file is deleted unless
 *    KEEP=1.
 *
 * Also prints the time the projection took to apply the events (generating them is not counted) and
 * the file's size. Runs on one core: SQLite is synchronous.
 */
import { mkdtempSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { SmsDelivered, SmsDispatched, SmsFailed, SmsRequested, SmsRetried } from "../src/domain/Message.js"
import { messageIdFor } from "../src/domain/Ids.js"
import type { RecordedEvent } from "../src/eventstore/EventStore.js"
import { toStored } from "../src/eventstore/MessageEvents.js"
import { applyEvents } from "../src/console/SearchProjection.js"
import { search } from "../src/console/MessageSearch.js"
import { type MessageFilter, PAGE_SIZE } from "../src/console/SearchQuery.js"
import { makeStore } from "../src/console/SearchStore.js"

const N = Number(process.env.N ?? 1_000_000)
const RUNS = Number(process.env.RUNS ?? 30)
const BATCH = 5_000
const DAY = 24 * 60 * 60 * 1000
const END = Date.parse("2026-11-30T00:00:00Z")
const START = END - 30 * DAY

/** mulberry32: the same data on every run */
const random = (() => {
  let seed = 15
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = seed
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
})()

const PREFIXES = ["+447", "+1202", "+4915", "+3361"]
const numberAt = (i: number) => {
  const prefix = PREFIXES[i % PREFIXES.length] ?? "+447"
  return `${prefix}${String(1_000_000 + ((i * 7919) % 9_000_000)).padStart(9 - (prefix.length - 3), "0")}`
}
const NUMBERS = 200_000

/** client-0 sends 30 %, client-1 15 %, … a long tail of small ones */
const clientAt = () => {
  const r = random()
  if (r < 0.3) return "client-0"
  if (r < 0.45) return "client-1"
  if (r < 0.55) return "client-2"
  return `client-${3 + Math.floor(random() * 47)}`
}

const providerAt = () => {
  const r = random()
  return r < 0.6 ? "primary" : r < 0.9 ? "secondary" : "backup"
}

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

/** One message's events, requested at `at`. */
const messageEvents = (i: number, at: number): Array<RecordedEvent> => {
  const clientId = clientAt()
  const idempotencyKey = `order-${i}`
  const messageId = messageIdFor(clientId, idempotencyKey)
  // client-1 sends to US numbers only (index 1 of PREFIXES): a broad filter that never meets "447"
  const drawn = Math.floor(random() * NUMBERS)
  const to = numberAt(clientId === "client-1" ? drawn - (drawn % PREFIXES.length) + 1 : drawn)
  const provider = providerAt()
  const events: Array<RecordedEvent> = []
  let revision = 0
  const requestedAt = new Date(at)
  events.push(
    recorded(
      new SmsRequested(
        {
          messageId,
          clientId,
          idempotencyKey,
          to,
          body: "Your code is 1234",
          encoding: "GSM-7",
          segments: 1,
          ...(random() < 0.3 ? { trackingId: `track-${i}` } : {}),
          requestedAt
        },
        true
      ),
      revision++,
      at
    )
  )
  const fate = random()
  if (fate < 0.01) return events // still requested
  let t = at + 50 + Math.floor(random() * 400)
  if (fate < 0.03) {
    events.push(
      recorded(
        new SmsRetried(
          { messageId, provider, attempt: 1, reason: "http_5xx", nextAttemptAt: new Date(t + 5000) },
          true
        ),
        revision++,
        t
      )
    )
    if (fate < 0.02) return events // retrying
    t += 5000
  }
  if (fate < 0.05) {
    events.push(
      recorded(
        new SmsFailed(
          {
            messageId,
            reason: fate < 0.04 ? "invalid_number" : "retries_exhausted",
            permanent: true,
            provider,
            failedAt: new Date(t)
          },
          true
        ),
        revision++,
        t
      )
    )
    return events
  }
  events.push(
    recorded(
      new SmsDispatched(
        { messageId, provider, providerMessageId: `p-${i}`, attempt: 1, dispatchedAt: new Date(t) },
        true
      ),
      revision++,
      t
    )
  )
  if (fate < 0.07) return events // dispatched, no report yet
  t += 500 + Math.floor(random() * 3000)
  events.push(
    recorded(
      new SmsDelivered(
        { messageId, provider, providerMessageId: `p-${i}`, deliveredAt: new Date(t), rawStatus: "DELIVRD" },
        true
      ),
      revision++,
      t
    )
  )
  return events
}

const dir = mkdtempSync(join(tmpdir(), "console-search-"))
const file = join(dir, "console-search.sqlite")
const store = makeStore(file)

/** Generates the events batch by batch and times only their application (what a rebuild costs). */
const fill = Effect.gen(function* () {
  let batch: Array<RecordedEvent> = []
  let events = 0
  let applying = 0
  const step = (END - START) / N
  for (let i = 0; i < N; i++) {
    batch.push(...messageEvents(i, Math.floor(START + i * step)))
    if (batch.length >= BATCH || i === N - 1) {
      events += batch.length
      const t0 = performance.now()
      yield* applyEvents(store, batch, position, END)
      applying += performance.now() - t0
      batch = []
    }
    if (i > 0 && i % 100_000 === 0) process.stderr.write(`\r${i} messages`)
  }
  process.stderr.write("\r")
  return { events, applySeconds: applying / 1000 }
})

const { events, applySeconds } = Effect.runSync(fill)
const mb = statSync(file).size / 1024 / 1024

// the ids of real rows, to look up exactly
const [sample] = store.messages({
  sql: "SELECT * FROM messages WHERE seq >= ? AND tracking_id IS NOT NULL ORDER BY seq LIMIT 1",
  params: [(START + 15 * DAY) * 1024]
})
if (sample === undefined) throw new Error("no rows")
const rare = sample.recipient.slice(-7)

interface Case {
  readonly name: string
  readonly filter: MessageFilter
  readonly nextPage?: boolean
}

const cases: ReadonlyArray<Case> = [
  { name: "no filter (newest 50)", filter: {} },
  { name: "no filter, page 2", filter: {}, nextPage: true },
  { name: "status failed", filter: { status: "failed" } },
  { name: "status requested (1 %)", filter: { status: "requested" } },
  { name: "client-0 (30 %)", filter: { client: "client-0" } },
  { name: "client-17 (~1 %)", filter: { client: "client-17" } },
  { name: "client-17, failed", filter: { client: "client-17", status: "failed" } },
  { name: "provider backup, retrying", filter: { provider: "backup", status: "retrying" } },
  { name: "client-17, provider backup", filter: { client: "client-17", provider: "backup" } },
  {
    name: "client-17, provider backup, requested",
    filter: { client: "client-17", provider: "backup", status: "requested" }
  },
  { name: "recipient 7 digits (~5 numbers)", filter: { to: rare } },
  { name: "recipient whole number", filter: { to: sample.recipient.slice(1) } },
  { name: "recipient 4 digits", filter: { to: rare.slice(-4) } },
  { name: "recipient 3 digits", filter: { to: "447" } },
  { name: "recipient 2 digits (scan)", filter: { to: "12" } },
  { name: "recipient 7 digits, failed", filter: { to: rare, status: "failed" } },
  { name: "recipient 4 digits, failed", filter: { to: rare.slice(-4), status: "failed" } },
  {
    name: "recipient 3 digits, client-17, failed",
    filter: { to: "447", client: "client-17", status: "failed" }
  },
  { name: "one day", filter: { from: START + 10 * DAY, until: START + 11 * DAY } },
  {
    name: "one day, client-17, failed",
    filter: { from: START + 10 * DAY, until: START + 11 * DAY, client: "client-17", status: "failed" }
  },
  {
    name: "one hour, recipient 4 digits",
    filter: { from: START + 10 * DAY, until: START + 10 * DAY + 3_600_000, to: rare.slice(-4) }
  },
  { name: "exact message id", filter: { id: sample.messageId } },
  { name: "exact idempotency key", filter: { id: sample.idempotencyKey } },
  { name: "exact tracking id", filter: { id: sample.trackingId ?? "" } },
  { name: "no match (unknown client)", filter: { client: "nobody" } },
  { name: "unknown status, client-0 (no rows)", filter: { client: "client-0", status: "unknown" } },
  // client-1 (15 %) sends only to +1202 numbers, "4470" starts every UK one (25 %): they hardly meet, the worst
  // case, read in bounded pages
  { name: "client-1 and recipient 4470: hardly together", filter: { to: "4470", client: "client-1" } }
]

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0
const round = (n: number) => Number(n.toFixed(2))

const results = cases.map((c) => {
  const first = search(store, c.filter, { limit: PAGE_SIZE })
  const page = {
    limit: PAGE_SIZE,
    ...(c.nextPage && first.older !== undefined ? { before: first.older } : {})
  }
  let found = search(store, c.filter, page)
  const times: Array<number> = []
  for (let run = 0; run < RUNS; run++) {
    const t0 = performance.now()
    found = search(store, c.filter, page)
    times.push(performance.now() - t0)
  }
  times.sort((a, b) => a - b)
  return {
    filter: c.name,
    rows: found.rows.length,
    path: found.driver,
    bounded: found.searchedTo !== undefined,
    p50: round(percentile(times, 50)),
    p99: round(percentile(times, 99)),
    max: round(times[times.length - 1] ?? 0)
  }
})

store.close()
if (process.env.KEEP !== "1") rmSync(dir, { recursive: true, force: true })

console.error(
  `${N} messages (${events} events) applied in ${applySeconds.toFixed(1)} s ` +
    `(${Math.round(events / applySeconds)} events/s, ${((applySeconds * 1e6) / events).toFixed(1)} µs an event); file ${mb.toFixed(0)} MB`
)
console.error(
  `${"filter".padEnd(44)} ${"rows".padStart(4)} ${"path".padEnd(10)} ${"p50".padStart(8)} ${"p99".padStart(8)} ${"max".padStart(8)}  (ms)`
)
for (const r of results) {
  console.error(
    `${r.filter.padEnd(44)} ${String(r.rows).padStart(4)} ${`${r.path}${r.bounded ? "*" : ""}`.padEnd(10)} ${String(r.p50).padStart(8)} ${String(r.p99).padStart(8)} ${String(r.max).padStart(8)}`
  )
}
console.error("path: the access path the planner chose; * = the page stopped at its bound (20,000 rows read)")
console.log(
  JSON.stringify({
    bench: "console-search",
    messages: N,
    events,
    applySeconds: round(applySeconds),
    eventsPerSecond: Math.round(events / applySeconds),
    fileMB: round(mb),
    runs: RUNS,
    worstMaxMs: Math.max(...results.map((r) => r.max)),
    results
  })
)
