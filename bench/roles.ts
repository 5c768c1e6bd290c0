// Ad-hoc: time how fast the intake role alone drains N commands (not part of the suite).
import { spawn } from "node:child_process"
import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { randomUUID } from "node:crypto"
import { jetstream, jetstreamManager } from "@nats-io/jetstream"
import { connect } from "@nats-io/transport-node"
import { Effect } from "effect"
import { startNatsServer } from "../src/nats/NatsServer.js"

const N = Number(process.env.N ?? 5000)
const roles = process.env.ROLES ?? "intake"
const program = Effect.gen(function* () {
  void 0
  const dir = mkdtempSync(join(tmpdir(), "roles-"))
  const nats = yield* startNatsServer({ storeDir: join(dir, "nats") })
  writeFileSync(join(dir, "p.json"), JSON.stringify({ providers: [{ id: "sim", type: "generic-http", baseUrl: "http://127.0.0.1:9", apiKeyEnv: "K", webhookSecretEnv: "K" }] }))
  const child = spawn(process.execPath, [...(process.env.NODE_ARGS ?? "").split(" ").filter(Boolean), "bin/sms-gateway.mjs", "start", "--roles", roles, "--http-port", "0", "--data-dir", dir], { env: { ...process.env, K: "k", NATS_URL: nats.url, PROVIDERS_CONFIG: join(dir, "p.json"), LOG_LEVEL: "Warning" }, stdio: ["ignore", "pipe", "inherit"] })
  yield* Effect.addFinalizer(() => Effect.promise(() => new Promise<void>((r) => { child.once("exit", () => r()); child.kill("SIGTERM") })))
  yield* Effect.promise(() => new Promise<void>((r) => child.stdout.on("data", (d: Buffer) => { if (d.toString().includes("is running")) r() })))
  const nc = yield* Effect.promise(() => connect({ servers: nats.url }))
  const js = jetstream(nc)
  const jsm = yield* Effect.promise(() => jetstreamManager(nc))
  const start = Date.now()
  yield* Effect.promise(async () => {
    for (let s = 0; s < N; s += 500) {
      await Promise.all(Array.from({ length: Math.min(500, N - s) }, () => js.publish("sms.commands.send", JSON.stringify({ clientId: "b", idempotencyKey: randomUUID(), to: "+447911123456", body: "hello" }))))
    }
  })
  const published = Date.now()
  yield* Effect.promise(async () => {
    for (;;) {
      const info = await jsm.consumers.info("SMS_COMMANDS", "intake")
      if (info.num_pending === 0 && info.num_ack_pending === 0) return
      await new Promise((r) => setTimeout(r, 50))
    }
  })
  const end = Date.now()
  const { readFileSync } = yield* Effect.promise(() => import("node:fs"))
  const stat = readFileSync(`/proc/${child.pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? []
  const cpuSeconds = (Number(stat[11]) + Number(stat[12])) / 100
  console.log(JSON.stringify({ N, roles, publishMs: published - start, intakeMs: end - start, perSecond: Math.round(N / ((end - start) / 1000)), cpuSeconds }))
  yield* Effect.promise(() => nc.close())
})
Effect.runPromise(Effect.scoped(program)).then(() => process.exit(0), (e) => { console.error(e); process.exit(1) })
