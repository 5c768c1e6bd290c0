/**
 * A start that meets a JetStream cluster without a leader (one node of three alive: the state of a
 * cluster mid-election, kept) waits it out for START_RETRY_SECONDS, then says why and exits. Seen in
 * the cluster chaos run before the fix: the start printed "cannot connect … timeout" and then hung,
 * its half-made NATS connection keeping the process alive.
 */
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Exit, Layer } from "effect"
import { Nats, NatsError } from "../../src/nats/Nats.js"
import { clusterNodeArgs, findNatsServer } from "../../src/nats/NatsServer.js"
import { eventually, freePort } from "../support/gateway.js"
import { spawnProcess, tempFolder } from "../support/processes.js"

const root = fileURLToPath(new URL("../../", import.meta.url))

/** One node of a three-node cluster whose peers never come: no JetStream meta leader, ever. */
const leaderlessNode = Effect.gen(function* () {
  const dir = yield* tempFolder("sms-gw-leaderless-")
  const [port, monitor, ...routes] = yield* Effect.forEach([0, 1, 2, 3, 4], () => freePort)
  const bin = findNatsServer()
  if (bin === undefined) return yield* Effect.die(new Error("nats-server is not installed"))
  const server = yield* spawnProcess(bin, [
    "-js",
    "-a",
    "127.0.0.1",
    "-p",
    String(port),
    "-m",
    String(monitor),
    "-sd",
    dir,
    ...clusterNodeArgs("leaderless", 0, routes as [number, number, number])
  ])
  yield* server.waitFor("Server is ready", "20 seconds")
  const connections = Effect.promise(() =>
    fetch(`http://127.0.0.1:${monitor}/connz`).then((r) => r.json() as Promise<{ num_connections: number }>)
  ).pipe(Effect.map((connz) => connz.num_connections))
  return { url: `nats://127.0.0.1:${port}`, connections }
})

describe("a start while the JetStream cluster has no leader", () => {
  it.scopedLive(
    "the connection fails as passing (RequestFailed) and leaves no connection open",
    () =>
      Effect.gen(function* () {
        const node = yield* leaderlessNode
        const exit = yield* Effect.exit(Layer.build(Nats.layer(node.url, "election-test")))
        expect(Exit.isFailure(exit)).toBe(true)
        if (Exit.isFailure(exit)) {
          const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
          expect(error).toBeInstanceOf(NatsError)
          expect((error as NatsError).reason).toBe("RequestFailed")
          expect((error as NatsError).message).toMatch(/JetStream at .* is not answering yet/)
        }
        yield* eventually(
          Effect.flatMap(node.connections, (n) =>
            n === 0 ? Effect.void : Effect.fail(`${n} connections open`)
          ),
          "10 seconds"
        )
      }),
    60_000
  )

  it.scopedLive(
    "the CLI's start tries again for START_RETRY_SECONDS, then says why and exits 1",
    () =>
      Effect.gen(function* () {
        const node = yield* leaderlessNode
        const dataDir = yield* tempFolder("sms-gw-election-")
        const started = Date.now()
        const gateway = yield* spawnProcess(
          process.execPath,
          ["bin/sms-gateway.mjs", "start", "--http-port", "0", "--data-dir", dataDir],
          {
            cwd: root,
            env: { ...process.env, NATS_URL: node.url, START_RETRY_SECONDS: "3", LOG_LEVEL: "Warning" }
          }
        )
        expect(yield* gateway.exited("60 seconds")).toBe(1)
        expect(gateway.stderr()).toMatch(/JetStream at .* is not answering yet/)
        // it tried more than once: at least the 3 s it was given
        expect(Date.now() - started).toBeGreaterThanOrEqual(3_000)
      }),
    90_000
  )
})
