/**
 * `npm run bench`: nats-server, the simulator and the gateway as separate processes; this process is
 * the producer (JetStream publishes, pipelined) and the observer (a KV watch on the status read model).
 *
 *   N=20000 npm run bench          # messages, default 20000
 *   RATE=1000 WARMUP=2000 npm run bench   # open loop at a fixed rate after a warm-up
 *   PRESEED=1000000 npm run bench         # with a million events of history in the store first
 *   GATEWAY_PROCESSES="intake,providers,dlr;http,projector" npm run bench  # two gateway processes
 *   GATEWAY_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" npm run bench   # profile the gateway
 *   SIMULATOR_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" npm run bench # ... or the simulator
 *   SYNC_WRITES=1 npm run bench           # every JetStream write on disk before its ack (see below)
 *
 * Measures publish -> delivered-and-visible throughput and latency, gateway RSS, and prints one JSON line.
 */
import { type ChildProcess, execFileSync } from "node:child_process"
import { randomUUID } from "node:crypto"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { jetstream, jetstreamManager, StorageType } from "@nats-io/jetstream"
import { Kvm } from "@nats-io/kv"
import { connect } from "@nats-io/transport-node"
import { Effect } from "effect"
import { messageIdFor } from "../src/domain/Ids.js"
import { startNatsServer } from "../src/nats/NatsServer.js"
import { seedHistory } from "./seed.js"
import { sqlIntakeFromEnv } from "./sqlProducer.js"
import { cpuSeconds, freePort, GATEWAY_V8_FLAGS, rssMb, spawnCli, stop, waitForLine } from "./processes.js"

const N = Number(process.env.N ?? 20_000)
const WARMUP = Number(process.env.WARMUP ?? 0)
const RATE = Number(process.env.RATE ?? 0)
/**
 * Messages published together. At a fixed RATE, 200 small chunks a second, as the peers' producers
 * pace (a chunk of 500 every 1.7 s at 300 msg/s measured the burst, not the rate).
 */
const CHUNK = Number(process.env.CHUNK ?? (RATE > 0 ? Math.max(1, Math.round(RATE / 200)) : 500))
const TIMEOUT_S = Number(process.env.TIMEOUT_S ?? 300)
/** the gateway's processes, each a group of roles (see below) */
const DEFAULT_LAYOUT = "all"
/** events of finished messages written to the store before the gateway starts (issue 6: 1,000,000) */
const PRESEED = Number(process.env.PRESEED ?? 0)
/**
 * `sync_interval: always` (fsync before each ack) came with nats-server 2.10; the 2.9.10 here refuses
 * it. A single 2.9 server writes each message to its block file before it acks (measured: an ack waits
 * for the write), so a store folder with ext4's synchronous-updates attribute (`chattr +S`, inherited by
 * every file created inside) puts each acked write on the disk, as `sync_interval: always` does.
 */
const SYNC_WRITES = process.env.SYNC_WRITES === "1"

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted.length === 0 ? 0 : (sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0)

/**
 * The floor to compare with, in the same run: a plain producer publishing the same payloads, acks
 * pipelined the same way, to a file-backed stream on the same server.
 */
const rawJetStreamRate = async (url: string, count: number) => {
  const nc = await connect({ servers: url, name: "bench-raw" })
  const jsm = await jetstreamManager(nc)
  await jsm.streams.add({ name: "BENCH_RAW", subjects: ["bench.raw"], storage: StorageType.File })
  const js = jetstream(nc)
  const started = Date.now()
  for (let start = 0; start < count; start += CHUNK) {
    const acks: Array<Promise<unknown>> = []
    for (let i = start; i < Math.min(count, start + CHUNK); i++) {
      const payload = {
        clientId: "bench",
        idempotencyKey: randomUUID(),
        to: "+447911123456",
        body: `bench message ${i}`
      }
      acks.push(js.publish("bench.raw", JSON.stringify(payload)))
    }
    await Promise.all(acks)
  }
  const perSecond = Math.round(count / ((Date.now() - started) / 1000))
  await jsm.streams.delete("BENCH_RAW")
  await nc.close()
  return perSecond
}

/** Polls the gateway's own projection lag metric until every projection has applied the whole store. */
const projectionsCaughtUp = async (httpPort: number) => {
  const started = Date.now()
  let stableZero = 0
  while (stableZero < 3) {
    await new Promise((resolve) => setTimeout(resolve, 1000))
    const text = await fetch(`http://127.0.0.1:${httpPort}/metrics`).then(
      (response) => response.text(),
      () => ""
    )
    const lags = [...text.matchAll(/^sms_projection_lag_appends\{[^}]*\} (\d+)/gm)].map((m) => Number(m[1]))
    stableZero = lags.length > 0 && lags.every((lag) => lag === 0) ? stableZero + 1 : 0
    if (Date.now() - started > TIMEOUT_S * 1000) throw new Error("projections did not catch up")
  }
  console.error(
    `projections caught up with the seeded history in ${((Date.now() - started) / 1000).toFixed(0)} s`
  )
}

const main = Effect.gen(function* () {
  const dir = yield* Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "sms-gw-bench-"))),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )
  const monitorPort = yield* Effect.promise(freePort)
  if (SYNC_WRITES) {
    mkdirSync(join(dir, "nats"))
    execFileSync("chattr", ["+S", join(dir, "nats")])
  }
  const nats = yield* startNatsServer({ storeDir: join(dir, "nats"), monitorPort })
  // messages each client sent to and received from nats-server, per SendSms (round trips and acks)
  const natsTraffic = () =>
    fetch(`http://127.0.0.1:${monitorPort}/connz?limit=1000`)
      .then(
        (response) =>
          response.json() as Promise<{
            connections: Array<{ name?: string; cid: number; in_msgs: number; out_msgs: number }>
          }>
      )
      .then(({ connections }) => connections)
  const children: Array<ChildProcess> = []
  yield* Effect.addFinalizer(() => Effect.promise(() => Promise.all(children.map((child) => stop(child)))))
  const spawnNode = (
    args: ReadonlyArray<string>,
    env: Record<string, string> = {},
    nodeArgs: ReadonlyArray<string> = []
  ) => {
    const child = spawnCli(args, env, nodeArgs)
    children.push(child)
    return child
  }

  const rawPerSecond = yield* Effect.promise(() => rawJetStreamRate(nats.url, WARMUP + N))
  const seeded = PRESEED > 0 ? yield* seedHistory(nats.url, PRESEED) : 0
  // INTAKE=postgres|mysql: the producer inserts outbox rows instead of publishing (bench/sqlProducer.ts)
  const sqlIntake = yield* sqlIntakeFromEnv
  const httpPort = yield* Effect.promise(freePort)
  const simPort = yield* Effect.promise(freePort)
  const simulator = spawnNode(
    [
      "simulator",
      "--port",
      String(simPort),
      "--api-key",
      "bench-key",
      "--webhook-secret",
      "bench-secret",
      "--dlr-min-ms",
      "0",
      "--dlr-max-ms",
      "5"
    ],
    {},
    (process.env.SIMULATOR_NODE_ARGS ?? "").split(" ").filter((a) => a.length > 0)
  )
  yield* Effect.promise(() => waitForLine(simulator, /listening (http:\/\/\S+)/, "simulator"))

  const providersFile = join(dir, "providers.json")
  writeFileSync(
    providersFile,
    JSON.stringify({
      providers: [
        {
          id: "sim",
          type: "generic-http",
          baseUrl: `http://127.0.0.1:${simPort}`,
          apiKeyEnv: "BENCH_SIM_KEY",
          webhookSecretEnv: "BENCH_SIM_SECRET",
          // the simulator sends our reference back in its reports, as generic-http providers may
          echoesReference: true,
          concurrency: Number(process.env.PROVIDER_CONCURRENCY ?? 1000)
        }
      ]
    })
  )
  // One gateway process per group of roles; by default one with every role, as `npm start` runs it.
  // GATEWAY_PROCESSES="intake,providers,dlr;http,projector" splits the actors (intake, provider calls,
  // delivery reports: each message's state stays in the process that records it) from the edge (the
  // HTTP webhook and API, the projections), the way the peer runs a worker and a webhook.
  const layout = process.env.GATEWAY_PROCESSES ?? DEFAULT_LAYOUT
  const groups = layout === "all" ? [] : layout.split(";").filter((g) => g.length > 0)
  const gateways = (groups.length > 0 ? groups : [undefined]).map((roles, i) => {
    mkdirSync(join(dir, `gw${i}`), { recursive: true })
    return spawnNode(
      [
        "start",
        ...(roles === undefined ? [] : ["--roles", roles]),
        "--http-port",
        String(httpPort),
        "--grpc-port",
        "0",
        "--data-dir",
        join(dir, `gw${i}`)
      ],
      {
        NATS_URL: nats.url,
        PROVIDERS_CONFIG: providersFile,
        BENCH_SIM_KEY: "bench-key",
        BENCH_SIM_SECRET: "bench-secret",
        ...sqlIntake?.env
      },
      [...GATEWAY_V8_FLAGS, ...(process.env.GATEWAY_NODE_ARGS ?? "").split(" ").filter((a) => a.length > 0)]
    )
  })
  yield* Effect.promise(() =>
    Promise.all(gateways.map((gateway) => waitForLine(gateway, /sms-gateway is running/, "gateway")))
  )
  if (seeded > 0) yield* Effect.promise(() => projectionsCaughtUp(httpPort))
  const trafficAtStart = yield* Effect.promise(natsTraffic)
  const cpuAtStart = gateways.map((gateway) => cpuSeconds(gateway.pid ?? 0))
  const simulatorCpuAtStart = cpuSeconds(simulator.pid ?? 0)
  const natsCpuAtStart = cpuSeconds(nats.pid)

  const nc = yield* Effect.acquireRelease(
    Effect.promise(() => connect({ servers: nats.url, name: "bench-producer" })),
    (nc) => Effect.promise(() => nc.close())
  )
  const js = jetstream(nc)
  const kv = yield* Effect.promise(() => new Kvm(js).open("sms_messages"))

  const total = WARMUP + N
  const ids = Array.from({ length: total }, () => randomUUID())
  const messageIds = ids.map((key, i) => sqlIntake?.messageIdOf(i) ?? messageIdFor("bench", key))
  const index = new Map(messageIds.map((id, i) => [id as string, i]))
  const publishedAt = new Float64Array(total)
  const dispatchedAt = new Float64Array(total)
  const deliveredAt = new Float64Array(total)
  // from the read model: when the gateway recorded each step (its own clock, the same machine)
  const requestedAt = new Float64Array(total)
  const reportedAt = new Float64Array(total)
  let delivered = 0
  let allDelivered: () => void = () => undefined
  const done = new Promise<void>((resolve) => {
    allDelivered = resolve
  })

  const watcher = yield* Effect.promise(() => kv.watch({ include: "updates" as never }))
  void (async () => {
    for await (const entry of watcher) {
      if (entry.operation !== "PUT") continue
      const i = index.get(entry.key)
      if (i === undefined) continue
      const view = entry.json<{
        status: string
        requestedAt?: string
        dispatchedAt?: string
        deliveredAt?: string
      }>()
      const now = Date.now()
      if (requestedAt[i] === 0 && view.requestedAt) requestedAt[i] = Date.parse(view.requestedAt)
      if (dispatchedAt[i] === 0 && view.dispatchedAt) dispatchedAt[i] = Date.parse(view.dispatchedAt)
      if (view.status === "delivered" && deliveredAt[i] === 0) {
        if (view.deliveredAt) reportedAt[i] = Date.parse(view.deliveredAt)
        deliveredAt[i] = now
        delivered++
        if (delivered === total) allDelivered()
      }
    }
  })()

  // PROGRESS=1: once a second, the backlog of each consumer (where the time goes)
  const jsm = yield* Effect.promise(() => jetstreamManager(nc))
  const progress = process.env.PROGRESS
    ? setInterval(async () => {
        const pending = async (stream: string, consumer: string) => {
          const info = await jsm.consumers.info(stream, consumer).catch(() => undefined)
          return info ? `${info.num_pending}+${info.num_ack_pending}` : "-"
        }
        const events = (await jsm.streams.info("SMS_EVENTS")).state.messages
        console.error(
          `t=${((Date.now() - firstPublish) / 1000).toFixed(1)}s intake=${await pending("SMS_COMMANDS", "intake")} ` +
            `work=${await pending("SMS_WORK", "provider-sim")} dlr=${await pending("SMS_DLR", "delivery-reports")} ` +
            `events=${events} delivered=${delivered}`
        )
      }, 1000)
    : undefined

  let peakRss = 0
  const sampler = setInterval(() => {
    const sum = gateways.reduce((total, gateway) => total + rssMb(gateway.pid ?? 0), 0)
    peakRss = Math.max(peakRss, sum)
  }, 250)

  const publishRange = async (from: number, to: number) => {
    for (let start = from; start < to; start += CHUNK) {
      const end = Math.min(to, start + CHUNK)
      const chunkStart = Date.now()
      if (RATE > 0) {
        const due = firstPublish + ((start - from) / RATE) * 1000
        if (due > chunkStart) await new Promise((r) => setTimeout(r, due - chunkStart))
      }
      if (sqlIntake) {
        await sqlIntake.insert(start, end, publishedAt)
        continue
      }
      const acks: Array<Promise<unknown>> = []
      for (let i = start; i < end; i++) {
        publishedAt[i] = Date.now()
        const command = {
          clientId: "bench",
          idempotencyKey: ids[i],
          to: "+447911123456",
          body: `bench message ${i}`
        }
        acks.push(js.publish("sms.commands.send", JSON.stringify(command), { msgID: `bench:${ids[i]}` }))
      }
      await Promise.all(acks)
    }
  }

  let firstPublish = Date.now()
  if (WARMUP > 0) {
    yield* Effect.promise(() => publishRange(0, WARMUP))
    yield* Effect.promise(
      () =>
        new Promise<void>((resolve) => {
          const check = setInterval(() => {
            if (delivered >= WARMUP) {
              clearInterval(check)
              resolve()
            }
          }, 20)
        })
    )
  }
  firstPublish = Date.now()
  const measuredStart = firstPublish
  yield* Effect.promise(() => publishRange(WARMUP, total))
  const publishSeconds = (Date.now() - measuredStart) / 1000
  yield* Effect.promise(() =>
    Promise.race([
      done,
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error(`timeout: ${delivered}/${total} delivered`)), TIMEOUT_S * 1000)
      )
    ])
  )
  clearInterval(sampler)
  const trafficAtEnd = yield* Effect.promise(natsTraffic)
  const natsMessagesPerSms = Object.fromEntries(
    trafficAtEnd.map((connection) => {
      const before = trafficAtStart.find((c) => c.cid === connection.cid)
      const sent = connection.in_msgs - (before?.in_msgs ?? 0)
      const received = connection.out_msgs - (before?.out_msgs ?? 0)
      return [
        `${connection.name ?? "?"}#${connection.cid}`,
        `${(sent / total).toFixed(1)} out / ${(received / total).toFixed(1)} in`
      ]
    })
  )
  if (progress) clearInterval(progress)
  watcher.stop()

  const latencies: Array<number> = []
  const dispatchLatencies: Array<number> = []
  const toRequested: Array<number> = []
  const requestedToDispatched: Array<number> = []
  const reportToVisible: Array<number> = []
  let lastDelivered = 0
  const at = (values: Float64Array, i: number) => values[i] ?? 0
  for (let i = WARMUP; i < total; i++) {
    latencies.push(at(deliveredAt, i) - at(publishedAt, i))
    if (at(dispatchedAt, i) > 0) dispatchLatencies.push(at(dispatchedAt, i) - at(publishedAt, i))
    if (at(requestedAt, i) > 0) toRequested.push(at(requestedAt, i) - at(publishedAt, i))
    if (at(requestedAt, i) > 0 && at(dispatchedAt, i) > 0)
      requestedToDispatched.push(at(dispatchedAt, i) - at(requestedAt, i))
    if (at(reportedAt, i) > 0) reportToVisible.push(at(deliveredAt, i) - at(reportedAt, i))
    lastDelivered = Math.max(lastDelivered, at(deliveredAt, i))
  }
  for (const list of [latencies, dispatchLatencies, toRequested, requestedToDispatched, reportToVisible]) {
    list.sort((a, b) => a - b)
  }
  const stage = (list: ReadonlyArray<number>) => ({
    p50: percentile(list, 50),
    p95: percentile(list, 95),
    p99: percentile(list, 99)
  })
  const seconds = (lastDelivered - measuredStart) / 1000
  const gatewayCpu = gateways.map((gateway, i) => cpuSeconds(gateway.pid ?? 0) - (cpuAtStart[i] ?? 0))
  const result = {
    n: N,
    warmup: WARMUP,
    rate: RATE,
    seconds: Number(seconds.toFixed(2)),
    delivered_per_s: Math.round(N / seconds),
    publish_per_s: Math.round(N / publishSeconds),
    p50_ms: percentile(latencies, 50),
    p95_ms: percentile(latencies, 95),
    p99_ms: percentile(latencies, 99),
    dispatched_p50_ms: percentile(dispatchLatencies, 50),
    dispatched_p99_ms: percentile(dispatchLatencies, 99),
    stages_ms: {
      publish_to_requested: stage(toRequested),
      requested_to_dispatched: stage(requestedToDispatched),
      report_to_visible: stage(reportToVisible)
    },
    raw_jetstream_per_s: rawPerSecond,
    ratio_to_raw_jetstream: Number((N / seconds / rawPerSecond).toFixed(4)),
    gateway_rss_mb_max: Math.round(peakRss),
    gateway_cpu_s: Object.fromEntries(
      gatewayCpu.map((seconds, i) => [groups[i] ?? "all", Number(seconds.toFixed(1))])
    ),
    gateway_cpu_ms_per_sms: Number(((1000 * gatewayCpu.reduce((a, b) => a + b, 0)) / total).toFixed(2)),
    nats_server_cpu_s: Number((cpuSeconds(nats.pid) - natsCpuAtStart).toFixed(1)),
    nats_messages_per_sms: natsMessagesPerSms,
    simulator_cpu_s: Number((cpuSeconds(simulator.pid ?? 0) - simulatorCpuAtStart).toFixed(1)),
    event_store: process.env.EVENT_STORE ?? "jetstream",
    sync_writes: SYNC_WRITES,
    events_in_store_before: seeded,
    ...sqlIntake?.figures()
  }
  console.log(JSON.stringify(result))
  mkdirSync("bench-results", { recursive: true })
  const file = join("bench-results", `bench-${new Date().toISOString().replace(/[:.]/g, "-")}.json`)
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`)
  console.error(`written to ${file}`)
  void simulator
})

Effect.runPromise(Effect.scoped(main)).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
