/**
 * `node --import tsx bench/rebuild.ts`: how fast `sms-gateway rebuild` replays a store into the read
 * models (issue 11's target: 50,000 events a second for each). A fresh nats-server, EVENTS (default
 * 300,000) events of finished messages written through the embedded store, then the CLI's `rebuild`,
 * whose own lines (events, seconds, events/s per read model) are printed at its end.
 * `PROJECTION=message-status` rebuilds one; `REBUILD_NODE_ARGS="--cpu-prof"` profiles it.
 */
import { spawnSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { startNatsServer } from "../src/nats/NatsServer.js"
import { seedHistory } from "./seed.js"

const EVENTS = Number(process.env.EVENTS ?? 300_000)

const program = Effect.gen(function* () {
  const dir = mkdtempSync(join(tmpdir(), "sms-rebuild-"))
  yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(dir, { recursive: true, force: true })))
  const nats = yield* startNatsServer({ storeDir: join(dir, "nats") })
  const seeded = yield* seedHistory(nats.url, EVENTS)
  console.error(`${seeded} events in the store`)
  const nodeArgs = (process.env.REBUILD_NODE_ARGS ?? "").split(" ").filter((a) => a.length > 0)
  const only = process.env.PROJECTION === undefined ? [] : ["--projection", process.env.PROJECTION]
  const command = [...nodeArgs, "bin/sms-gateway.mjs", "rebuild", "--nats-url", nats.url, ...only]
  const rebuild = spawnSync(process.execPath, command, {
    stdio: ["ignore", "inherit", "pipe"],
    encoding: "utf8"
  })
  // the progress bar rewrites its line with \r: keep the final line of each read model
  for (const line of rebuild.stderr.split("\n")) {
    const last = line.split("\r").pop()
    if (last?.includes("events/s")) console.log(last.trim())
  }
  if (rebuild.status !== 0) throw new Error(`rebuild exited ${rebuild.status}: ${rebuild.stderr.slice(-500)}`)
})

Effect.runPromise(Effect.scoped(program)).catch((error) => {
  console.error(error)
  process.exit(1)
})
