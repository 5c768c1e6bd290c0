/**
 * `npm run chaos`: a bounded fault run on loopback. While a producer sends N messages: the gateway is
 * killed with SIGKILL and restarted twice, nats-server is restarted once, the provider's API is down
 * for 3 s and then answers only 429s for 2 s; its delivery reports come late, shuffled and duplicated.
 * At the end, against the simulator's submission logs and the event store:
 *   - every message reached a final state, none lost;
 *   - every submission beyond one per message is explained by the history (its attempt numbers: a
 *     call whose outcome was lost to a crash leaves a gap, see ProviderActor) or, where a call was
 *     repeated under one attempt number, by the call journal (see CallJournal).
 * Prints one JSON line; exits 1 on a violation. `N=5000 RATE=100 npm run chaos` for a longer run.
 *
 *   CLUSTER=3 npm run chaos    # three clustered nats-servers, every stream and bucket at three
 *                              # replicas; one node is killed with SIGKILL and restarted later
 *   LONG=1 npm run chaos       # 20 SIGKILLs over two gateway processes running every role side by
 *                              # side, plus reports lost (they end at the report deadline), early ones
 *
 * Knobs (LONG sets the first five): KILLS, PROCESSES, LOSE_RATE, EARLY_RATE, REPORT_DEADLINE_MS.
 *
 * Each fault waits for a condition, not for the clock: a share of the messages published and the
 * gateway submitting to the provider again since the previous fault. The producer never runs more
 * than one share ahead of the faults, so every fault lands on a gateway with work in hand, however
 * slow the machine (a slow start would otherwise leave the late faults hitting an idle system).
 *
 * The provider's API is reached through a proxy in this process: an outage closes it (connections
 * refused, those open reset), the 429 storm points it at a second simulator that throttles every
 * call. The simulator itself keeps running, so the reports it owes still arrive, as a real
 * provider's would (a stopped simulator would drop them and leave messages dispatched forever).
 */
import { type ChildProcess, spawn } from "node:child_process"
import { randomUUID } from "node:crypto"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { createServer, connect as connectTcp, type Socket } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { jetstream, jetstreamManager } from "@nats-io/jetstream"
import { connect } from "@nats-io/transport-node"
import { Effect, Layer } from "effect"
import { journaledCallsByMessage, readCallJournal } from "../src/dispatch/CallJournal.js"
import { load } from "../src/messages/MessageRepository.js"
import { type MessageId, messageIdFor } from "../src/domain/Ids.js"
import * as JetStreamEventStore from "../src/eventstore/JetStreamEventStore.js"
import { Nats } from "../src/nats/Nats.js"
import { clusterNodeArgs, findNatsServer } from "../src/nats/NatsServer.js"
import { freePort, GATEWAY_V8_FLAGS, spawnCli, stop, waitForLine } from "./processes.js"

const LONG = process.env.LONG === "1"
const N = Number(process.env.N ?? (LONG ? 4000 : 1200))
const RATE = Number(process.env.RATE ?? (LONG ? 60 : 120))
/** nats-servers in one cluster (1 or 3); with 3, every stream and bucket keeps three replicas */
const CLUSTER = Number(process.env.CLUSTER ?? 1)
/** gateway processes running every role side by side; the kills alternate between them */
const PROCESSES = Number(process.env.PROCESSES ?? (LONG ? 2 : 1))
/** SIGKILLs of a gateway process over the run */
const KILLS = Number(process.env.KILLS ?? (LONG ? 20 : 2))
/** share of accepted submissions whose delivery report the provider never sends */
const LOSE_RATE = Number(process.env.LOSE_RATE ?? (LONG ? 0.02 : 0))
/** share of reports sent before the provider's submit answer */
const EARLY_RATE = Number(process.env.EARLY_RATE ?? (LONG ? 0.1 : 0))
/** the provider's report deadline: a lost report ends there, `unknown` (SmsStatusUnknown) */
const REPORT_DEADLINE_MS = Number(process.env.REPORT_DEADLINE_MS ?? 20_000)
if (CLUSTER !== 1 && CLUSTER !== 3) throw new Error("CLUSTER must be 1 or 3")
/** how long the gateway may take to submit again after a fault before the run calls it a stall */
const RESUME_WITHIN_MS = 60_000
/**
 * The end: how long the run waits with no message reaching a final state, and at most. Longer than
 * the longest wait between two deliveries of an early report (60 s, `DeliveryReportActor`): a report
 * that came while its dispatch was not recorded yet (the gateway killed mid-batch) is applied at its
 * next delivery, possibly a minute after the message went `unknown` (seen once in CI on the cluster).
 */
const SETTLE_IDLE_MS = 90_000
const SETTLE_MAX_MS = 180_000

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const seconds = (ms: number) => Math.round(ms / 100) / 10

interface Submission {
  readonly reference?: string
  readonly outcome: string
}

interface SimulatorStats {
  readonly accepted: number
  readonly dlrDuplicates: number
  readonly dlrFailed: number
  readonly dlrLost: number
  readonly dlrEarly: number
}

/** The provider's API endpoint: passes through to `up`, to `throttling` for a storm, or refuses. */
const startProxy = async (port: number, targets: { readonly up: number; readonly throttling: number }) => {
  let mode: "up" | "down" | "throttling" = "up"
  const open = new Set<Socket>()
  const server = createServer((client) => {
    const upstream = connectTcp(mode === "throttling" ? targets.throttling : targets.up, "127.0.0.1")
    const close = () => {
      client.destroy()
      upstream.destroy()
      open.delete(client)
    }
    open.add(client)
    client.on("error", close).on("close", close)
    upstream.on("error", close).on("close", close)
    client.pipe(upstream).pipe(client)
  })
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server.once("error", reject)
      server.listen(port, "127.0.0.1", () => {
        server.off("error", reject)
        resolve()
      })
    })
  await listen()
  return {
    /** a switch resets the connections open: no call started before it gets through after it */
    set: async (next: "up" | "down" | "throttling") => {
      const wasDown = mode === "down"
      mode = next
      for (const socket of open) socket.destroy()
      open.clear()
      if (next === "down") server.close()
      else if (wasDown) await listen()
    },
    close: () => {
      for (const socket of open) socket.destroy()
      server.close()
    }
  }
}

const main = async () => {
  const startedAt = Date.now()
  const elapsed = () => seconds(Date.now() - startedAt)
  const dir = mkdtempSync(join(tmpdir(), "sms-gw-chaos-"))
  const natsPorts = await Promise.all(Array.from({ length: CLUSTER }, () => freePort()))
  const routePorts = await Promise.all(Array.from({ length: CLUSTER }, () => freePort()))
  const simPort = await freePort()
  const throttlingPort = await freePort()
  const apiPort = await freePort()
  const httpPorts = await Promise.all(Array.from({ length: PROCESSES }, () => freePort()))
  // a cluster is named by all its nodes: clients fail over among them
  const natsUrl = natsPorts.map((port) => `nats://127.0.0.1:${port}`).join(",")
  const children = new Set<ChildProcess>()
  const track = (child: ChildProcess) => {
    children.add(child)
    child.once("exit", () => children.delete(child))
    return child
  }
  // a run stopped from outside takes what it started with it (`finally` does not run on a signal)
  const abort = (signal: NodeJS.Signals) => {
    for (const child of children) child.kill("SIGKILL")
    try {
      rmSync(dir, { recursive: true, force: true })
    } catch {}
    process.exit(signal === "SIGINT" ? 130 : 143)
  }
  process.once("SIGINT", abort).once("SIGTERM", abort)

  /** node `i` of the cluster (the only one without a cluster), on its own store folder */
  const startNats = async (i: number) => {
    const bin = findNatsServer()
    if (!bin) throw new Error("nats-server not found")
    const port = natsPorts[i] ?? 0
    const cluster = CLUSTER === 1 ? [] : clusterNodeArgs("chaos", i, routePorts)
    const args = ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", join(dir, `nats-${i}`), ...cluster]
    const child = track(spawn(bin, args, { stdio: ["ignore", "ignore", "pipe"] }))
    await waitForLine(child, /Listening for client connections/, "nats-server")
    return child
  }
  /** until JetStream answers: a cluster first elects its meta leader */
  const jetStreamReady = async () => {
    const probe = await connect({ servers: natsUrl.split(","), maxReconnectAttempts: -1 })
    try {
      for (let tries = 0; ; tries++) {
        try {
          // the manager asks for the account's JetStream info, which fails until a leader is elected
          await jetstreamManager(probe)
          return
        } catch (error) {
          if (tries > 150) throw error
          await sleep(200)
        }
      }
    } finally {
      await probe.close()
    }
  }
  const startSimulator = async (port: number, extra: ReadonlyArray<string> = []) => {
    const child = track(
      spawnCli([
        "simulator",
        "--port",
        String(port),
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
        "--lose-rate",
        String(LOSE_RATE),
        "--early-rate",
        String(EARLY_RATE),
        ...extra
      ])
    )
    await waitForLine(child, /listening/, "simulator")
    return child
  }
  const simulatorGet = async <A>(port: number, path: string): Promise<A> =>
    (await fetch(`http://127.0.0.1:${port}${path}`).then((r) => r.json())) as A
  const providers = join(dir, "providers.json")
  writeFileSync(
    providers,
    JSON.stringify({
      providers: [
        {
          id: "sim",
          type: "generic-http",
          baseUrl: `http://127.0.0.1:${apiPort}`,
          apiKeyEnv: "CHAOS_KEY",
          webhookSecretEnv: "CHAOS_SECRET",
          timeoutMs: 5000,
          retry: { initialDelayMs: 500, maxRetries: 20, maxDelayMs: 3000 },
          circuitBreaker: { failureThreshold: 5, openForMs: 1000 },
          reportDeadlineMs: REPORT_DEADLINE_MS
        }
      ]
    })
  )
  /** gateway process `i`, every role, on its own HTTP port (its reports' callback address) */
  const startGateway = async (i: number) => {
    const child = track(
      spawnCli(
        [
          "start",
          "--http-port",
          String(httpPorts[i]),
          "--grpc-port",
          "0",
          "--data-dir",
          join(dir, `gw-${i}`)
        ],
        {
          NATS_URL: natsUrl,
          NATS_REPLICAS: String(CLUSTER),
          PROVIDERS_CONFIG: providers,
          CHAOS_KEY: "chaos-key",
          CHAOS_SECRET: "chaos-secret"
        },
        GATEWAY_V8_FLAGS
      )
    )
    // a start that hangs ends the run with a reason (and what the gateway said) rather than at the
    // caller's time limit
    let said = ""
    const listen = (chunk: Buffer) => {
      said = (said + chunk.toString()).slice(-4000)
    }
    child.stdout?.on("data", listen)
    child.stderr?.on("data", listen)
    let timer: NodeJS.Timeout | undefined
    const hung = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`gateway ${i} did not start within 90 s; its last output:\n${said}`)),
        90_000
      )
    })
    try {
      await Promise.race([waitForLine(child, /sms-gateway is running/, `gateway ${i}`), hung])
    } finally {
      clearTimeout(timer)
      child.stdout?.off("data", listen)
      child.stderr?.off("data", listen)
    }
    return child
  }
  const kill9 = (child: ChildProcess) =>
    new Promise<void>((resolve) => {
      child.once("exit", () => resolve())
      child.kill("SIGKILL")
    })

  const faults: Array<string> = []
  const phases: Array<{ fault: string; at_s: number; published: number; provider_accepted: number }> = []
  const stalls: Array<string> = []
  let proxy: Awaited<ReturnType<typeof startProxy>> | undefined
  try {
    const [nodes] = await Promise.all([
      Promise.all(natsPorts.map((_, i) => startNats(i))),
      startSimulator(simPort),
      startSimulator(throttlingPort, ["--throttle-rate", "1"])
    ])
    await jetStreamReady()
    proxy = await startProxy(apiPort, { up: simPort, throttling: throttlingPort })
    const api = proxy
    // one after the other: the first creates the streams and buckets the others open
    const gateways: Array<ChildProcess> = []
    for (let i = 0; i < PROCESSES; i++) gateways.push(await startGateway(i))
    const nc = await connect({
      servers: natsUrl.split(","),
      maxReconnectAttempts: -1,
      reconnectTimeWait: 200
    })
    const js = jetstream(nc)
    const accepted = async () => (await simulatorGet<SimulatorStats>(simPort, "/_stats")).accepted

    const keys = Array.from({ length: N }, () => randomUUID())
    let published = 0
    let publishRetries = 0
    // the producer stays at most one share ahead of the faults (set with the shares below)
    let allowed = 0
    const producer = (async () => {
      for (const key of keys) {
        while (published >= allowed) await sleep(20)
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
            publishRetries++
            await sleep(200)
          }
        }
        published++
        await sleep(1000 / RATE)
      }
    })()

    type Fault = readonly [ReadonlyArray<string>, () => Promise<void>]
    let kills = 0
    const killGateway: () => Fault = () => {
      const i = kills++ % PROCESSES
      return [
        [PROCESSES === 1 ? "gateway kill -9" : `gateway ${i} kill -9`],
        async () => {
          const gateway = gateways[i]
          if (gateway !== undefined) await kill9(gateway)
          await sleep(500)
          gateways[i] = await startGateway(i)
        }
      ]
    }
    // one node (of one, or of the cluster) goes: a lone server is restarted at once; a cluster node
    // is killed outright and comes back one fault later, the load running on two nodes meanwhile
    const natsFaults: ReadonlyArray<Fault> =
      CLUSTER === 1
        ? [
            [
              ["nats-server restart"],
              async () => {
                const node = nodes[0]
                if (node !== undefined) await stop(node, 10_000)
                await sleep(500)
                nodes[0] = await startNats(0)
              }
            ]
          ]
        : [
            [
              ["nats node kill -9"],
              async () => {
                const node = nodes[1]
                if (node !== undefined) await kill9(node)
              }
            ],
            [
              ["nats node restarted"],
              async () => {
                nodes[1] = await startNats(1)
              }
            ]
          ]
    // a provider coming back from an outage throttles at first
    const providerFault: Fault = [
      ["provider down 3 s", "429 storm 2 s"],
      async () => {
        await api.set("down")
        await sleep(3000)
        await api.set("throttling")
        await sleep(2000)
        await api.set("up")
      }
    ]
    // kills before, between and after the others: kill, nats, kill, [nats restarted,] provider, kills…
    const faultRuns: Array<Fault> = []
    const firstKills = Math.min(KILLS, 1)
    for (let k = 0; k < firstKills; k++) faultRuns.push(killGateway())
    for (const [j, fault] of natsFaults.entries()) {
      faultRuns.push(fault)
      if (j === 0 && kills < KILLS) faultRuns.push(killGateway())
    }
    faultRuns.push(providerFault)
    while (kills < KILLS) faultRuns.push(killGateway())
    /** faults start once these shares of the messages are published, evenly from 15 % to 60 % (80 % long) */
    const lastShare = faultRuns.length > 4 ? 0.8 : 0.6
    const SHARES = faultRuns.map((_, i) =>
      faultRuns.length === 1 ? 0.15 : 0.15 + ((lastShare - 0.15) * i) / (faultRuns.length - 1)
    )
    allowed = Math.ceil(N * (SHARES[0] ?? 1))
    /** until the share is published and the provider has accepted a call since the last fault */
    const resumed = async (share: number, since: number, after: string) => {
      const deadline = Date.now() + RESUME_WITHIN_MS
      let now = await accepted()
      while ((published < N * share || now <= since) && Date.now() < deadline) {
        await sleep(100)
        now = await accepted()
      }
      if (now <= since)
        stalls.push(`no call accepted by the provider within ${RESUME_WITHIN_MS / 1000} s ${after}`)
      return now
    }
    let acceptedBefore = 0
    for (const [i, [names, run]] of faultRuns.entries()) {
      const previous = faults[faults.length - 1]
      const now = await resumed(
        SHARES[i] ?? 1,
        acceptedBefore,
        previous ? `after "${previous}"` : "of the start"
      )
      allowed = i + 1 < faultRuns.length ? Math.ceil(N * (SHARES[i + 1] ?? 1)) : N
      faults.push(...names)
      phases.push({ fault: names.join(", then "), at_s: elapsed(), published, provider_accepted: now })
      // progress on stderr: a run that fails shows which fault it reached
      console.error(`[${elapsed()} s] ${names.join(", then ")} (published ${published}, accepted ${now})`)
      // counted as the fault starts: calls accepted while a killed gateway restarts are progress too
      // (the other process, or the share's last messages). Counted after the restart, a share wholly
      // accepted during a slow restart left nothing to accept, and showed as a stall that was not one.
      acceptedBefore = await accepted()
      await run()
    }
    allowed = N
    await resumed(0, acceptedBefore, `after "${faults[faults.length - 1]}"`)
    await producer

    // until every message is final, read from the event store (the system of record); the wait
    // ends early when no message has reached a final state for a while
    const ids = keys.map((key) => messageIdFor("chaos", key))
    const store = JetStreamEventStore.layer.pipe(Layer.provideMerge(Nats.layer(natsUrl, "chaos-check")))
    const readAll = () =>
      Effect.runPromise(
        Effect.forEach(ids, (id) => load(id as MessageId), { concurrency: 32 }).pipe(Effect.provide(store))
      )
    // `unknown` is where a message whose report never came ends (its report deadline): settled,
    // and checked below against the reports the provider lost or gave up on
    const isFinal = (h: { state: { status: string } }) =>
      h.state.status === "delivered" || h.state.status === "failed" || h.state.status === "unknown"
    // More `unknown` messages than reports the provider lost or gave up on means some report is late
    // (a consumer's leader moved, say): a late report still turns the message delivered or failed, so
    // the wait goes on for it, as it does for messages not final yet.
    const reportsNeverSent = async () => {
      const stats = await simulatorGet<SimulatorStats>(simPort, "/_stats")
      return stats.dlrLost + stats.dlrFailed
    }
    const unsettled = async (list: Awaited<ReturnType<typeof readAll>>) =>
      N -
      list.filter(isFinal).length +
      Math.max(0, list.filter((h) => h.state.status === "unknown").length - (await reportsNeverSent()))
    const settleStarted = Date.now()
    let histories = await readAll()
    let waitingFor = await unsettled(histories)
    let progressAt = Date.now()
    while (
      waitingFor > 0 &&
      Date.now() - progressAt < SETTLE_IDLE_MS &&
      Date.now() - settleStarted < SETTLE_MAX_MS
    ) {
      await sleep(2000)
      histories = await readAll()
      const now = await unsettled(histories)
      if (now < waitingFor) progressAt = Date.now()
      waitingFor = now
    }

    // the provider's logs: every report owed has been sent (or given up) by now, or a message is open
    const submissions = [
      ...(await simulatorGet<Array<Submission>>(simPort, "/_submissions")),
      ...(await simulatorGet<Array<Submission>>(throttlingPort, "/_submissions"))
    ]
    const simStats = await simulatorGet<SimulatorStats>(simPort, "/_stats")
    const acceptedBy = new Map<string, number>()
    for (const s of submissions)
      if (s.outcome === "accepted" && s.reference)
        acceptedBy.set(s.reference, (acceptedBy.get(s.reference) ?? 0) + 1)
    const lost = histories.filter((h) => h.state.status === "none").length
    const unknown = histories.filter((h) => h.state.status === "unknown").length
    // a message may end unknown only for want of its report: lost by the provider, or given up
    const unknownUnexplained = Math.max(0, unknown - simStats.dlrLost - simStats.dlrFailed)
    const open = histories.filter((h) => h.state.status !== "none" && !isFinal(h)).length
    // the call journal: every call the gateway made (or was about to make), recorded before it
    const journaled = journaledCallsByMessage(
      await Effect.runPromise(readCallJournal.pipe(Effect.provide(Nats.layer(natsUrl, "chaos-journal"))))
    )
    let extra = 0
    let unexplained = 0
    let beyondAttempts = 0
    const retries: Record<string, number> = {}
    histories.forEach((h, i) => {
      for (const e of h.events) if (e._tag === "SmsRetried") retries[e.reason] = (retries[e.reason] ?? 0) + 1
      const sent = acceptedBy.get(ids[i] ?? "") ?? 0
      if (sent <= 1) return
      extra += sent - 1
      // calls the history accounts for: the highest attempt number it records; beyond them, the
      // journal's (a call repeated under one attempt number: killed during the call while the
      // consumer's leader moved, so the redelivery counted from 1 again)
      const attempts = Math.max(0, ...h.events.map((e) => ("attempt" in e ? e.attempt : 0)))
      if (sent > attempts) beyondAttempts++
      if (sent > Math.max(attempts, journaled.get(ids[i] ?? "") ?? 0)) unexplained++
    })
    const result = {
      n: N,
      rate: RATE,
      checked: histories.length,
      published,
      publish_retries: publishRetries,
      faults,
      phases,
      stalls,
      lost,
      not_final: open,
      delivered: histories.filter((h) => h.state.status === "delivered").length,
      failed: histories.filter((h) => h.state.status === "failed").length,
      unknown,
      unknown_unexplained: unknownUnexplained,
      // what an unexplained `unknown` message recorded, and what the provider says of it
      ...(unknownUnexplained > 0
        ? {
            unknown_detail: histories
              .map((h, i) => ({ h, id: ids[i] ?? "" }))
              .filter(({ h }) => h.state.status === "unknown")
              .slice(0, 5)
              .map(({ h, id }) => ({
                messageId: id,
                revision: h.revision,
                providerMessageId: h.state.status === "unknown" ? h.state.providerMessageId : undefined,
                accepted: acceptedBy.get(id) ?? 0
              }))
          }
        : {}),
      cluster: CLUSTER,
      gateway_processes: PROCESSES,
      gateway_kills: kills,
      provider_submissions: submissions.length,
      extra_submissions: extra,
      unexplained_extra: unexplained,
      // messages with more submissions than the history's attempt numbers, explained by the journal
      explained_by_journal_only: beyondAttempts,
      // what the faults did, from the histories: network (outage), throttled (429 storm)
      retries,
      dlr_duplicates: simStats.dlrDuplicates,
      dlr_given_up: simStats.dlrFailed,
      dlr_lost: simStats.dlrLost,
      dlr_early: simStats.dlrEarly,
      elapsed_s: elapsed()
    }
    console.log(JSON.stringify(result))
    // the messages that did not finish, with their histories, to see where they stopped
    const unfinished = histories.filter((h) => !isFinal(h))
    for (const h of unfinished.slice(0, 5)) {
      const trail = h.events
        .map(
          (e) =>
            `${e._tag}${"attempt" in e ? `#${e.attempt}` : ""}${e._tag === "SmsRetried" ? `(${e.reason})` : ""}`
        )
        .join(" ")
      console.error(`open: ${h.state.status} ${trail}`)
    }
    if (unfinished.length > 0) {
      // where the work went: JetStream's view of the provider's queue, and the gateway's breaker
      const jsm = await js.jetstreamManager()
      const consumer = await jsm.consumers.info("SMS_WORK", "provider-sim").catch((e) => String(e))
      const work = await jsm.streams.info("SMS_WORK").catch((e) => String(e))
      console.error(`SMS_WORK: ${JSON.stringify(typeof work === "string" ? work : work.state)}`)
      console.error(
        `provider-sim consumer: ${JSON.stringify(
          typeof consumer === "string"
            ? consumer
            : {
                num_pending: consumer.num_pending,
                num_ack_pending: consumer.num_ack_pending,
                num_redelivered: consumer.num_redelivered,
                delivered: consumer.delivered,
                ack_floor: consumer.ack_floor,
                max_deliver: consumer.config.max_deliver
              }
        )}`
      )
      const metrics = await fetch(`http://127.0.0.1:${httpPorts[0]}/metrics`)
        .then((r) => r.text())
        .catch((e) => String(e))
      for (const line of metrics.split("\n"))
        if (/^sms_(circuit_breaker|provider_paused)/.test(line)) console.error(`gateway: ${line}`)
    }
    await nc.close()
    return (
      lost === 0 &&
      open === 0 &&
      unknownUnexplained === 0 &&
      unexplained === 0 &&
      published === N &&
      histories.length === N &&
      stalls.length === 0
    )
  } finally {
    proxy?.close()
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
