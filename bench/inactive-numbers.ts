/**
 * The in-process view of inactive numbers (src/intake/InactiveNumbers.ts, issue 11 item 4): its start
 * time and memory with N inactive numbers, and its lag.
 *
 *   node --import tsx bench/inactive-numbers.ts           # N=1000000
 *   N=100000 LAG_WRITES=1000 RATE=200 node --import tsx bench/inactive-numbers.ts
 *
 * 1. writes N inactive numbers to the `sms_phones` read model (pipelined puts), starts the view, and
 *    reports the time to `ready` and the heap it keeps (heapUsed after a full GC, before and after);
 * 2. while the view runs, writes LAG_WRITES deactivations one at a time at RATE per second and reports
 *    the time from each put returning to `mayBeInactive` answering true.
 *
 * The lag measured here is the KV watch's part only (read model written -> view refusing). The
 * projector's part (PhoneDeactivated appended -> read model written) comes before it and is measured
 * separately; the lag the intake sees is the sum of the two. Prints one JSON line.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import type { KV } from "@nats-io/kv"
import { Context, Effect, Layer } from "effect"
import { InactiveNumbers, type InactiveNumbersService } from "../src/intake/InactiveNumbers.js"
import { Nats } from "../src/nats/Nats.js"
import { startNatsServer } from "../src/nats/NatsServer.js"
import { Buckets, openBucket } from "../src/nats/Topology.js"
import type { PhoneNumberView } from "../src/projections/PhoneNumbers.js"
import { ReadModels } from "../src/projections/ReadModels.js"

const N = Number(process.env.N ?? 1_000_000)
const LAG_WRITES = Number(process.env.LAG_WRITES ?? 1_000)
const RATE = Number(process.env.RATE ?? 200)
const CHUNK = Number(process.env.CHUNK ?? 1_000)

// without --expose-gc on the command line: turned on now, and the function taken from a fresh context
setFlagsFromString("--expose-gc")
const gc: () => void = globalThis.gc ?? runInNewContext("gc")

const heapAfterGc = () => {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

const mb = (bytes: number) => Number((bytes / 1024 / 1024).toFixed(1))

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted.length === 0 ? 0 : (sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0)

const round = (ms: number) => Number(ms.toFixed(2))

/** Distinct 12-digit UK mobile numbers, above 2^31 like every real E.164 number. */
const numberAt = (i: number) => `+447${String(i).padStart(9, "0")}`

/** A document as the phone-numbers projection writes it after one deactivation. */
const deactivated = (e164: string): string => {
  const view: PhoneNumberView = {
    number: e164,
    status: "inactive",
    since: "2026-01-01T00:00:00.000Z",
    reason: "provider reported the number unallocated",
    history: [
      {
        event: "PhoneDeactivated",
        at: "2026-01-01T00:00:00.000Z",
        reason: "provider reported the number unallocated",
        messageId: "8a0c0b6e-2f1d-5a3e-9c4b-7d6e5f4a3b2c",
        provider: "sim",
        code: "unallocated"
      }
    ],
    position: 1
  }
  return JSON.stringify(view)
}

const writeInactive = async (kv: KV, count: number) => {
  for (let start = 0; start < count; start += CHUNK) {
    const puts: Array<Promise<number>> = []
    for (let i = start; i < Math.min(count, start + CHUNK); i++) {
      const e164 = numberAt(i)
      puts.push(kv.put(e164.slice(1), deactivated(e164)))
    }
    await Promise.all(puts)
  }
}

/**
 * put returned -> view says inactive, for numbers the view has never held. The watch's copy often
 * arrives before the put's acknowledgement, hence 0 ms; put sent -> inactive is reported beside it.
 */
const measureLag = async (kv: KV, view: InactiveNumbersService, first: number) => {
  const lags: Array<number> = []
  const fromSent: Array<number> = []
  const measureOne = async (e164: string) => {
    const sent = performance.now()
    await kv.put(e164.slice(1), deactivated(e164))
    const returned = performance.now()
    // one check per event-loop turn: the watch's entries are handled between two checks
    while (!view.mayBeInactive(e164)) {
      if (performance.now() - returned > 10_000) throw new Error(`${e164} not inactive after 10 s`)
      await new Promise((resolve) => setImmediate(resolve))
    }
    lags.push(performance.now() - returned)
    fromSent.push(performance.now() - sent)
  }
  const started = performance.now()
  const all: Array<Promise<void>> = []
  for (let i = 0; i < LAG_WRITES; i++) {
    const wait = started + (i * 1000) / RATE - performance.now()
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
    all.push(measureOne(numberAt(first + i)))
  }
  await Promise.all(all)
  const seconds = (performance.now() - started) / 1000
  const stats = (all: Array<number>) => {
    const sorted = all.sort((a, b) => a - b)
    return {
      p50_ms: round(percentile(sorted, 50)),
      p99_ms: round(percentile(sorted, 99)),
      max_ms: round(sorted[sorted.length - 1] ?? 0)
    }
  }
  return {
    writes: lags.length,
    rate_per_s: Math.round(lags.length / seconds),
    ...stats(lags),
    from_put_sent: stats(fromSent)
  }
}

const main = Effect.gen(function* () {
  const dir = yield* Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "sms-gw-inactive-"))),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )
  const nats = yield* startNatsServer({ storeDir: join(dir, "nats") })

  // the writer stands for the projector: its own connection
  const writer = yield* Layer.build(Nats.layer(nats.url, "bench-projector"))
  const kv = yield* openBucket(Buckets.phones).pipe(Effect.provide(writer))
  const writeStarted = performance.now()
  yield* Effect.promise(() => writeInactive(kv, N))
  const writeSeconds = (performance.now() - writeStarted) / 1000
  console.error(`${N} inactive numbers written in ${writeSeconds.toFixed(1)} s`)

  // the view's connection and buckets are there before the first measure: only the view is counted
  const readSide = yield* Layer.build(
    ReadModels.layer.pipe(Layer.provideMerge(Nats.layer(nats.url, "bench-view")))
  )
  const heapBefore = heapAfterGc()
  // garbage included: the most the load holds at once (set growth, entries waiting in the watch)
  let heapPeak = 0
  const sampler = setInterval(() => {
    heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed)
  }, 50)
  const started = performance.now()
  const view = Context.get(
    yield* Layer.build(InactiveNumbers.layer).pipe(Effect.provide(readSide)),
    InactiveNumbers
  )
  yield* view.ready
  const readyMs = performance.now() - started
  clearInterval(sampler)
  const heapAfter = heapAfterGc()
  if (view.size() !== N) throw new Error(`the view holds ${view.size()} numbers, not ${N}`)
  console.error(`view ready in ${(readyMs / 1000).toFixed(1)} s`)

  const lag = yield* Effect.promise(() => measureLag(kv, view, N))
  console.log(
    JSON.stringify({
      numbers: N,
      write_s: Number(writeSeconds.toFixed(1)),
      puts_per_s: Math.round(N / writeSeconds),
      ready_ms: Math.round(readyMs),
      view_heap_mb: mb(heapAfter - heapBefore),
      view_bytes_per_number: Math.round((heapAfter - heapBefore) / N),
      heap_used_mb: { before: mb(heapBefore), after: mb(heapAfter), peak_during_load: mb(heapPeak) },
      watch_lag: lag,
      lag_measured: "KV put returned -> mayBeInactive true (the projector's part is not included)",
      node: process.version
    })
  )
})

Effect.runPromise(Effect.scoped(main)).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
