/**
 * `FirstDeliveries`: a work item's delivery is trusted as its first only when JetStream's count is 1,
 * the item was stored while this connection was up, and the server is a single one. Real
 * nats-server, restarted on the same port and store to show that items stored before a restart are
 * never trusted, even when they come as a first delivery.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { AckPolicy, type JsMsg } from "@nats-io/jetstream"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Exit, Layer, Scope } from "effect"
import { makeFirstDeliveries } from "../../src/dispatch/FirstDeliveries.js"
import { EventStore } from "../../src/eventstore/EventStore.js"
import * as JetStreamEventStore from "../../src/eventstore/JetStreamEventStore.js"
import { Nats } from "../../src/nats/Nats.js"
import { startNatsServer } from "../../src/nats/NatsServer.js"
import { ensureStreams, Streams, Subjects } from "../../src/nats/Topology.js"
import { eventually, freePort } from "../support/gateway.js"

describe("a work item's surely first delivery", () => {
  it.scopedLive(
    "trusted only for a first delivery of an item stored on this connection; never for one stored before a restart",
    () =>
      Effect.gen(function* () {
        const dir = yield* Effect.acquireRelease(
          Effect.sync(() => mkdtempSync(join(tmpdir(), "sms-gw-first-"))),
          (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
        )
        const port = yield* freePort
        const firstRun = yield* Scope.make()
        const server = yield* startNatsServer({ storeDir: dir, port }).pipe(Scope.extend(firstRun))
        const context = yield* Layer.build(
          JetStreamEventStore.layer.pipe(Layer.provideMerge(Nats.layer(server.url, "first-deliveries-test")))
        )
        const nats = Context.get(context, Nats)
        const { nc, js, jsm } = nats
        yield* ensureStreams.pipe(Effect.provide(context))
        yield* Effect.promise(() =>
          jsm.consumers.add(Streams.work, {
            durable_name: "first-test",
            filter_subject: Subjects.work("t"),
            ack_policy: AckPolicy.Explicit
          })
        )
        const next = Effect.promise(async () => {
          const consumer = await js.consumers.get(Streams.work, "first-test")
          const msg = await consumer.next({ expires: 5_000 })
          if (msg === null) throw new Error("no work item delivered")
          return msg
        })
        const store = (body: string) => Effect.promise(() => js.publish(Subjects.work("t"), body))

        // an item stored before the module learns anything: the sequence it learns is after it
        yield* store("before")
        const deliveries = yield* makeFirstDeliveries.pipe(Effect.provide(context))
        const before = yield* next
        expect(before.info.deliveryCount).toBe(1)
        expect(deliveries.surelyFirst(before)).toBe(false)
        before.ack()

        yield* store("on this connection")
        const fresh = yield* next
        expect(fresh.info.deliveryCount).toBe(1)
        expect(deliveries.surelyFirst(fresh)).toBe(true)
        fresh.nak()
        const again = yield* next
        expect(again.info.deliveryCount).toBe(2)
        expect(deliveries.surelyFirst(again)).toBe(false)
        again.ack()

        // a clustered stream (a consumer's new leader counts from 1 again) or a store that cannot tell a
        // repeated append from a write: nothing is trusted
        const clustered = yield* makeFirstDeliveries.pipe(
          Effect.provideService(Nats, { ...nats, replicas: 3 }),
          Effect.provide(context)
        )
        const eventStore = Context.get(context, EventStore)
        const inexact = yield* makeFirstDeliveries.pipe(
          Effect.provideService(EventStore, { ...eventStore, writtenIsExact: false }),
          Effect.provide(context)
        )
        yield* store("clustered")
        const onCluster = yield* next
        expect(onCluster.info.deliveryCount).toBe(1)
        expect(clustered.surelyFirst(onCluster)).toBe(false)
        expect(inexact.surelyFirst(onCluster)).toBe(false)
        expect(deliveries.surelyFirst(onCluster)).toBe(true)
        onCluster.ack()

        // stored, then the server restarts: a first delivery after it proves nothing
        yield* store("across the restart")
        yield* Effect.promise(() => nc.flush())
        const serverBefore = nc.info?.server_id
        yield* Scope.close(firstRun, Exit.void)
        yield* startNatsServer({ storeDir: dir, port })
        yield* eventually(
          Effect.suspend(() =>
            nc.info?.server_id !== undefined && nc.info.server_id !== serverBefore
              ? Effect.void
              : Effect.fail("not reconnected")
          )
        )
        const acrossRestart: JsMsg = yield* next
        expect(acrossRestart.info.deliveryCount).toBe(1)
        expect(deliveries.surelyFirst(acrossRestart)).toBe(false)
        acrossRestart.ack()
        // once the new connection's sequence is learnt, items stored after it are trusted again
        yield* store("after the restart")
        const afterRestart = yield* next
        yield* eventually(
          Effect.suspend(() =>
            deliveries.surelyFirst(afterRestart) ? Effect.void : Effect.fail("not trusted yet")
          )
        )
        expect(deliveries.surelyFirst(acrossRestart)).toBe(false)
        afterRestart.ack()
      }),
    { timeout: 60_000 }
  )
})
