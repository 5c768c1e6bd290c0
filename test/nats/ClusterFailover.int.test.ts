/**
 * Against a real three-node JetStream cluster: the gateway creates every stream and bucket at
 * `NATS_REPLICAS`, and a worker connected to a node that survives keeps consuming when its
 * consumer's leader is killed (before the pull check, it stalled for good: issue 12's cluster run).
 */
import { describe, expect, it } from "@effect/vitest"
import { AckPolicy, DeliverPolicy, RetentionPolicy } from "@nats-io/jetstream"
import { Effect, Layer, Ref } from "effect"
import { ack, runWorker } from "../../src/nats/JetStreamWorker.js"
import { Nats } from "../../src/nats/Nats.js"
import { ensureStreams, Streams } from "../../src/nats/Topology.js"
import { eventually } from "../support/gateway.js"
import { startNatsCluster } from "../support/natsCluster.js"

/** Runs `effect` with a connection to `url` (one node, or several comma-separated). */
const withNats = <A, E, R>(url: string, effect: Effect.Effect<A, E, R>) =>
  Effect.provide(effect, Layer.fresh(Nats.layer(url, "cluster-test")))

const indexOf = (name: string | undefined) => Number(name?.replace("node-", "") ?? -1)

describe("a three-node JetStream cluster", () => {
  it.scopedLive(
    "a worker keeps consuming when its consumer's leader is killed",
    () =>
      Effect.gen(function* () {
        const cluster = yield* startNatsCluster
        const admin = yield* Layer.build(Layer.fresh(Nats.layer(cluster.url, "cluster-admin")))
        const { jsm, js } = admin.unsafeMap.get(Nats.key) as Nats["Type"]
        yield* Effect.promise(() =>
          jsm.streams.add({
            name: "FAILOVER",
            subjects: ["failover.>"],
            retention: RetentionPolicy.Workqueue,
            num_replicas: 3
          })
        )
        // the worker's own consumer settings, created first to learn which node leads it
        const consumer = yield* Effect.promise(() =>
          jsm.consumers.add("FAILOVER", {
            durable_name: "w",
            filter_subject: "failover.>",
            ack_policy: AckPolicy.Explicit,
            deliver_policy: DeliverPolicy.All,
            max_ack_pending: 8,
            ack_wait: 30_000_000_000,
            max_deliver: -1
          })
        )
        // a new replicated consumer (and its stream) may take a moment to elect a leader
        const leader = yield* eventually(
          Effect.flatMap(
            Effect.promise(() =>
              consumer.cluster?.leader ? Promise.resolve(consumer) : jsm.consumers.info("FAILOVER", "w")
            ),
            (info) =>
              info.cluster?.leader ? Effect.succeed(indexOf(info.cluster.leader)) : Effect.fail("no leader")
          ),
          "20 seconds"
        )
        expect(leader).toBeGreaterThanOrEqual(0)
        // the worker talks to a node that stays up, so it sees no disconnect when the leader goes
        const survivor = (leader + 1) % 3
        const handled = yield* Ref.make(new Set<string>())
        yield* Effect.forkScoped(
          withNats(
            cluster.urls[survivor] ?? "",
            runWorker(
              { stream: "FAILOVER", durable: "w", filterSubject: "failover.>", concurrency: 8 },
              (msg) =>
                Effect.as(
                  Ref.update(handled, (all) => new Set(all).add(msg.string())),
                  ack
                )
            )
          )
        )
        // a failed publish is retried by `eventually` (the stream may still be electing its leader)
        const publish = (from: number, to: number) =>
          Effect.tryPromise(() =>
            Promise.all(
              Array.from({ length: to - from }, (_, i) =>
                js.publish("failover.x", String(from + i), { timeout: 10_000 })
              )
            )
          )
        const count = (n: number) =>
          Effect.flatMap(Ref.get(handled), (all) =>
            all.size >= n ? Effect.succeed(all.size) : Effect.fail(all.size)
          )
        yield* eventually(publish(0, 10), "20 seconds")
        expect(yield* eventually(count(10), "20 seconds")).toBe(10)

        yield* cluster.kill(leader)
        // the stream elects a new leader among the two left; the publish waits for it
        yield* eventually(publish(10, 20).pipe(Effect.timeout("5 seconds")), "30 seconds")
        // within the pull check and an election; the client alone took 30 s or more (two missed heartbeats)
        expect(yield* eventually(count(20), "25 seconds")).toBe(20)
      }),
    120_000
  )

  it.scopedLive(
    "the gateway's streams and buckets keep NATS_REPLICAS copies",
    () =>
      Effect.gen(function* () {
        const cluster = yield* startNatsCluster
        const before = process.env.NATS_REPLICAS
        process.env.NATS_REPLICAS = "3"
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            if (before === undefined) delete process.env.NATS_REPLICAS
            else process.env.NATS_REPLICAS = before
          })
        )
        const replicas = yield* withNats(
          cluster.url,
          Effect.gen(function* () {
            const { jsm, replicas } = yield* Nats
            yield* ensureStreams
            const infos = yield* Effect.promise(() =>
              Promise.all(Object.values(Streams).map((name) => jsm.streams.info(name)))
            )
            return { service: replicas, streams: infos.map((info) => info.config.num_replicas) }
          })
        )
        expect(replicas.service).toBe(3)
        expect(replicas.streams).toEqual(Object.values(Streams).map(() => 3))
      }),
    60_000
  )
})
