/**
 * Three nats-servers in one JetStream cluster on loopback (free ports, a temporary store each),
 * stopped with the scope. `kill(i)` is a SIGKILL of node `i`; `restart(i)` starts it again on its
 * own store.
 */
import { join } from "node:path"
import { jetstreamManager, StorageType } from "@nats-io/jetstream"
import { connect } from "@nats-io/transport-node"
import { Effect, Scope } from "effect"
import { clusterNodeArgs, findNatsServer } from "../../src/nats/NatsServer.js"
import { freePort } from "./gateway.js"
import { type Spawned, spawnProcess, tempFolder } from "./processes.js"

export interface NatsCluster {
  /** `nats://127.0.0.1:<port>` of each node */
  readonly urls: ReadonlyArray<string>
  /** every node, comma-separated, as NATS_URL takes it */
  readonly url: string
  readonly kill: (node: number) => Effect.Effect<void, Error>
  readonly restart: (node: number) => Effect.Effect<void, Error>
  /** the node's name (`node-<i>`), as consumer and stream infos name their leader */
  readonly nameOf: (node: number) => string
}

export const startNatsCluster = Effect.gen(function* () {
  const bin = findNatsServer()
  if (bin === undefined)
    return yield* Effect.fail(new Error("nats-server not found: apt-get install nats-server"))
  const dir = yield* tempFolder("sms-gw-cluster-")
  const ports = yield* Effect.forEach([0, 1, 2], () => freePort)
  const routes = yield* Effect.forEach([0, 1, 2], () => freePort)
  const urls = ports.map((port) => `nats://127.0.0.1:${port}`)
  const nodes: Array<Spawned | undefined> = [undefined, undefined, undefined]
  const scope = yield* Effect.scope
  const start = (i: number) =>
    Effect.gen(function* () {
      const node = yield* spawnProcess(bin, [
        "-js",
        "-a",
        "127.0.0.1",
        "-p",
        String(ports[i]),
        "-sd",
        join(dir, `node-${i}`),
        ...clusterNodeArgs("node", i, routes)
      ]).pipe(Scope.extend(scope))
      yield* node.waitFor("Listening for client connections", "20 seconds")
      nodes[i] = node
    })
  yield* Effect.forEach([0, 1, 2], start, { concurrency: 3 })
  // Ready once a stream can be placed on all three nodes: JetStream answers as soon as the cluster
  // has elected its meta leader, but that leader may not know its two peers yet, and a replicated
  // stream created then is refused ("no suitable peers for placement": a flaky CI run)
  yield* Effect.tryPromise({
    try: async () => {
      const probe = await connect({ servers: urls, maxReconnectAttempts: -1 })
      try {
        for (let tries = 0; ; tries++) {
          try {
            const jsm = await jetstreamManager(probe)
            await jsm.streams.add({
              name: "CLUSTER_READY",
              subjects: ["cluster.ready"],
              storage: StorageType.Memory,
              num_replicas: 3
            })
            await jsm.streams.delete("CLUSTER_READY")
            return
          } catch (error) {
            if (tries > 150) throw error
            await new Promise((resolve) => setTimeout(resolve, 200))
          }
        }
      } finally {
        await probe.close()
      }
    },
    catch: (cause) => new Error(`the cluster cannot place a replicated stream: ${String(cause)}`)
  })
  return {
    urls,
    url: urls.join(","),
    nameOf: (i) => `node-${i}`,
    kill: (i) =>
      Effect.flatMap(
        Effect.sync(() => nodes[i]),
        (node) =>
          node === undefined
            ? Effect.void
            : Effect.zipRight(
                Effect.sync(() => node.child.kill("SIGKILL")),
                Effect.asVoid(node.exited("10 seconds"))
              )
      ),
    restart: start
  } satisfies NatsCluster
})
