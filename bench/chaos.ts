/**
 * `npm run chaos`: a bounded fault run on loopback. While a producer sends N messages: the gateway is
 * killed with SIGKILL and restarted twice, nats-server is restarted once, the provider is down for a
 * while, then answers only 429s for a while; its delivery reports come late, shuffled and duplicated.
 * At the end, against the simulator's submission logs and the event store:
 *   - every message reached a final state, none lost;
 *   - every submission beyond one per message is explained by the history (its attempt numbers: a
 *     call whose outcome was lost to a crash leaves a gap, see ProviderActor).
 * Prints one JSON line; exits 1 on a violation. `N=5000 RATE=100 npm run chaos` for a longer run.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { randomUUID } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { jetstream } from "@nats-io/jetstream"
import { connect } from "@nats-io/transport-node"
import { Effect, Layer } from "effect"
import { load } from "../src/actors/MessageRepository.js"
import { type MessageId, messageIdFor } from "../src/domain/Ids.js"
import * as JetStreamEventStore from "../src/eventstore/JetStreamEventStore.js"
import { Nats } from "../src/nats/Nats.js"
import { findNatsServer } from "../src/nats/NatsServer.js"
import { freePort, spawnCli, stop, waitForLine } from "./processes.js"

const N = Number(process.env.N ?? 1200)
const RATE = Number(process.env.RATE ?? 120)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

interface Submission {
  readonly reference?: string
  readonly outcome: string
}

const main = async () => {
  const dir = mkdtempSync(join(tmpdir(), "sms-gw-chaos-"))
  const natsPort = await freePort()
  const simPort = await freePort()
  const httpPort = await freePort()
  const natsUrl = `nats://127.0.0.1:${natsPort}`
  const children = new Set<ChildProcess>()
  const track = (child: ChildProcess) => {
    children.add(child)
    child.once("exit", () => children.delete(child))
    return child
  }

  const startNats = async () => {
    const bin = findNatsServer()
    if (!bin) throw new Error("nats-server not found")
    const child = track(
      spawn(bin, ["-js", "-a", "127.0.0.1", "-p", String(natsPort), "-sd", join(dir, "nats")], {
        stdio: ["ignore", "ignore", "pipe"]
      })
    )
    await waitForLine(child, /Listening for client connections/, "nats-server")
    return child
  }
  // the provider's submission log survives the simulator's restarts here
  const submissions: Array<Submission> = []
  const startSimulator = async (extra: ReadonlyArray<string> = []) => {
    const child = track(
      spawnCli([
        "simulator",
        "--port",
        String(simPort),
        "--api-key",
        "chaos-key",
        "--webhook-secret",
        "chaos-secret",
        "--dlr-min-ms",
        "0",
        "--dlr-max-ms",
        "400",
        "--duplicate-rate",
        "0.3",
        // a provider keeps retrying a report while the gateway restarts
        "--dlr-retries",
        "20",
        ...extra
      ])
    )
    await waitForLine(child, /listening/, "simulator")
    return child
  }
  const stopSimulator = async (child: ChildProcess) => {
    // a provider's outage stops its API, not the reports it owes: let the simulator's queue drain
    for (let waited = 0; waited < 60_000; waited += 250) {
      const stats = (await fetch(`http://127.0.0.1:${simPort}/_stats`).then((r) => r.json())) as {
        dlrPending: number
      }
      if (stats.dlrPending === 0) break
      await sleep(250)
    }
    const log = (await fetch(`http://127.0.0.1:${simPort}/_submissions`).then((r) =>
      r.json()
    )) as Array<Submission>
    submissions.push(...log)
    await stop(child, 5_000)
  }
  const providers = join(dir, "providers.json")
  writeFileSync(
    providers,
    JSON.stringify({
      providers: [
        {
          id: "sim",
          type: "generic-http",
          baseUrl: `http://127.0.0.1:${simPort}`,
          apiKeyEnv: "CHAOS_KEY",
          webhookSecretEnv: "CHAOS_SECRET",
          timeoutMs: 5000,
          retry: { initialDelayMs: 500, maxRetries: 20, maxDelayMs: 3000 },
          circuitBreaker: { failureThreshold: 5, openForMs: 1000 }
        }
      ]
    })
  )
  const startGateway = async () => {
    const child = track(
      spawnCli(["start", "--http-port", String(httpPort), "--data-dir", join(dir, "gw")], {
        NATS_URL: natsUrl,
        PROVIDERS_CONFIG: providers,
        CHAOS_KEY: "chaos-key",
        CHAOS_SECRET: "chaos-secret"
      })
    )
    await waitForLine(child, /sms-gateway is running/, "gateway")
    return child
  }
  const kill9 = (child: ChildProcess) =>
    new Promise<void>((resolve) => {
      child.once("exit", () => resolve())
      child.kill("SIGKILL")
    })

  const faults: Array<string> = []
  try {
    let nats = await startNats()
    let simulator = await startSimulator()
    let gateway = await startGateway()
    const nc = await connect({ servers: natsUrl, maxReconnectAttempts: -1, reconnectTimeWait: 200 })
    const js = jetstream(nc)

    const keys = Array.from({ length: N }, () => randomUUID())
    let published = 0
    const producer = (async () => {
      for (const key of keys) {
        const command = JSON.stringify({
          clientId: "chaos",
          idempotencyKey: key,
          to: "+447911123456",
          body: "chaos"
        })
        // an at-least-once producer: retried until JetStream acks (idempotency makes that safe)
        for (;;) {
          try {
            await js.publish("sms.commands.send", command, { msgID: `chaos:${key}`, timeout: 2000 })
            break
          } catch {
            await sleep(200)
          }
        }
        published++
        await sleep(1000 / RATE)
      }
    })()

    const window = (N / RATE) * 1000
    const at = (share: number) => sleep(window * share)
    await at(0.15)
    faults.push("gateway kill -9")
    await kill9(gateway)
    await sleep(500)
    gateway = await startGateway()
    await at(0.1)
    faults.push("nats-server restart")
    await stop(nats, 10_000)
    await sleep(500)
    nats = await startNats()
    await at(0.1)
    faults.push("gateway kill -9")
    await kill9(gateway)
    await sleep(500)
    gateway = await startGateway()
    await at(0.1)
    faults.push("provider down 3 s")
    await stopSimulator(simulator)
    await sleep(3000)
    simulator = await startSimulator()
    await at(0.1)
    faults.push("429 storm 2 s")
    await stopSimulator(simulator)
    simulator = await startSimulator(["--throttle-rate", "1"])
    await sleep(2000)
    await stopSimulator(simulator)
    simulator = await startSimulator()
    await producer

    // until every message is final, read from the event store (the system of record)
    const ids = keys.map((key) => messageIdFor("chaos", key))
    const store = JetStreamEventStore.layer.pipe(Layer.provideMerge(Nats.layer(natsUrl, "chaos-check")))
    const deadline = Date.now() + 180_000
    let histories = await Effect.runPromise(
      Effect.forEach(ids, (id) => load(id as MessageId), { concurrency: 32 }).pipe(Effect.provide(store))
    )
    while (
      histories.some((h) => h.state.status !== "delivered" && h.state.status !== "failed") &&
      Date.now() < deadline
    ) {
      await sleep(2000)
      histories = await Effect.runPromise(
        Effect.forEach(ids, (id) => load(id as MessageId), { concurrency: 32 }).pipe(Effect.provide(store))
      )
    }
    await stopSimulator(simulator)

    const accepted = new Map<string, number>()
    for (const s of submissions)
      if (s.outcome === "accepted" && s.reference)
        accepted.set(s.reference, (accepted.get(s.reference) ?? 0) + 1)
    const lost = histories.filter((h) => h.state.status === "none").length
    const open = histories.filter(
      (h) => h.state.status !== "none" && h.state.status !== "delivered" && h.state.status !== "failed"
    ).length
    let extra = 0
    let unexplained = 0
    histories.forEach((h, i) => {
      const sent = accepted.get(ids[i] ?? "") ?? 0
      if (sent <= 1) return
      extra += sent - 1
      // calls the history accounts for: the highest attempt number it records
      const attempts = Math.max(0, ...h.events.map((e) => ("attempt" in e ? e.attempt : 0)))
      if (sent > attempts) unexplained++
    })
    const result = {
      n: N,
      published,
      faults,
      lost,
      not_final: open,
      delivered: histories.filter((h) => h.state.status === "delivered").length,
      failed: histories.filter((h) => h.state.status === "failed").length,
      provider_submissions: submissions.length,
      extra_submissions: extra,
      unexplained_extra: unexplained
    }
    console.log(JSON.stringify(result))
    // the messages that did not finish, with their histories, to see where they stopped
    const unfinished = histories.filter((h) => h.state.status !== "delivered" && h.state.status !== "failed")
    for (const h of unfinished.slice(0, 5)) {
      const trail = h.events.map((e) => `${e._tag}${"attempt" in e ? `#${e.attempt}` : ""}`).join(" ")
      console.error(`open: ${h.state.status} ${trail}`)
    }
    await nc.close()
    return lost === 0 && open === 0 && unexplained === 0 && published === N
  } finally {
    await Promise.all([...children].map((child) => stop(child, 5_000)))
    rmSync(dir, { recursive: true, force: true })
  }
}

main().then(
  (ok) => process.exit(ok ? 0 : 1),
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
