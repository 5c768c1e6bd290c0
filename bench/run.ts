/**
 * `npm run bench`: nats-server, the simulator and the gateway as separate processes; this process is
 * the producer (JetStream publishes, pipelined) and the observer (a KV watch on the status read model).
 *
 *   N=20000 npm run bench          # messages, default 20000
 *   RATE=1000 WARMUP=2000 npm run bench   # open loop at a fixed rate after a warm-up
 *   GATEWAY_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" npm run bench   # profile the gateway
 *
 * Measures publish -> delivered-and-visible throughput and latency, gateway RSS, and prints one JSON line.
 */
import type { ChildProcess } from "node:child_process"
import { randomUUID } from "node:crypto"
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { jetstream, jetstreamManager } from "@nats-io/jetstream"
import { Kvm } from "@nats-io/kv"
import { connect } from "@nats-io/transport-node"
import { Effect } from "effect"
import { messageIdFor } from "../src/domain/Ids.js"
import { startNatsServer } from "../src/nats/NatsServer.js"
import { freePort, rssMb, spawnCli, stop, waitForLine } from "./processes.js"

const N = Number(process.env.N ?? 20_000)
const WARMUP = Number(process.env.WARMUP ?? 0)
const RATE = Number(process.env.RATE ?? 0)
const CHUNK = Number(process.env.CHUNK ?? 500)
const TIMEOUT_S = Number(process.env.TIMEOUT_S ?? 300)

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted.length === 0 ? 0 : (sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0)

const main = Effect.gen(function* () {
  const dir = yield* Effect.acquireRelease(
    Effect.sync(() => mkdtempSync(join(tmpdir(), "sms-gw-bench-"))),
    (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
  )
  const nats = yield* startNatsServer({ storeDir: join(dir, "nats") })
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

  const httpPort = yield* Effect.promise(freePort)
  const simPort = yield* Effect.promise(freePort)
  const simulator = spawnNode([
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
  ])
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
          concurrency: Number(process.env.PROVIDER_CONCURRENCY ?? 200)
        }
      ]
    })
  )
  mkdirSync(join(dir, "gw"), { recursive: true })
  const gateway = spawnNode(
    ["start", "--http-port", String(httpPort), "--data-dir", join(dir, "gw")],
    {
      NATS_URL: nats.url,
      PROVIDERS_CONFIG: providersFile,
      BENCH_SIM_KEY: "bench-key",
      BENCH_SIM_SECRET: "bench-secret"
    },
    (process.env.GATEWAY_NODE_ARGS ?? "").split(" ").filter((a) => a.length > 0)
  )
  yield* Effect.promise(() => waitForLine(gateway, /sms-gateway is running/, "gateway"))

  const nc = yield* Effect.acquireRelease(
    Effect.promise(() => connect({ servers: nats.url, name: "bench-producer" })),
    (nc) => Effect.promise(() => nc.close())
  )
  const js = jetstream(nc)
  const kv = yield* Effect.promise(() => new Kvm(js).open("sms_messages"))

  const total = WARMUP + N
  const ids = Array.from({ length: total }, () => randomUUID())
  const messageIds = ids.map((key) => messageIdFor("bench", key))
  const index = new Map(messageIds.map((id, i) => [id as string, i]))
  const publishedAt = new Float64Array(total)
  const dispatchedAt = new Float64Array(total)
  const deliveredAt = new Float64Array(total)
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
      const view = entry.json<{ status: string; dispatchedAt?: string }>()
      const now = Date.now()
      if (dispatchedAt[i] === 0 && view.dispatchedAt) dispatchedAt[i] = Date.parse(view.dispatchedAt)
      if (view.status === "delivered" && deliveredAt[i] === 0) {
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
    const sum = rssMb(gateway.pid ?? 0)
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
  if (progress) clearInterval(progress)
  watcher.stop()

  const latencies: Array<number> = []
  const dispatchLatencies: Array<number> = []
  let lastDelivered = 0
  for (let i = WARMUP; i < total; i++) {
    latencies.push((deliveredAt[i] ?? 0) - (publishedAt[i] ?? 0))
    if ((dispatchedAt[i] ?? 0) > 0) dispatchLatencies.push((dispatchedAt[i] ?? 0) - (publishedAt[i] ?? 0))
    lastDelivered = Math.max(lastDelivered, deliveredAt[i] ?? 0)
  }
  latencies.sort((a, b) => a - b)
  dispatchLatencies.sort((a, b) => a - b)
  const seconds = (lastDelivered - measuredStart) / 1000
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
    gateway_rss_mb_max: Math.round(peakRss)
  }
  console.log(JSON.stringify(result))
  void simulator
})

Effect.runPromise(Effect.scoped(main)).then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
