/**
 * A command the intake meets again (a producer's retry, a redelivery after a crash) finds its stream
 * written and queues the first run's work item once more: under the same `Nats-Msg-Id`, so that
 * JetStream drops it within its duplicate window, and without the snapshot, so that past the window
 * the provider actor reads the stream before any call instead of trusting a first delivery
 * (`FirstDeliveries`). Real nats-server; the intake alone runs, so the items stay queued.
 */
import { randomUUID } from "node:crypto"
import { nanos } from "@nats-io/nats-core"
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { decodeWorkItem } from "../../src/dispatch/WorkItem.js"
import { messageIdFor } from "../../src/domain/Ids.js"
import { InactiveNumbers } from "../../src/intake/InactiveNumbers.js"
import * as Intake from "../../src/intake/Intake.js"
import { Nats } from "../../src/nats/Nats.js"
import { Streams, Subjects } from "../../src/nats/Topology.js"
import { eventually } from "../support/gateway.js"
import { infrastructureAlone } from "../support/intakeAlone.js"
import { NatsServerLive, TestNatsServer } from "../support/nats.js"

describe("the intake meeting a command again", () => {
  it.scopedLive(
    "queues the first run's item again under its id and without its snapshot",
    () =>
      Effect.gen(function* () {
        const server = yield* TestNatsServer
        const context = yield* infrastructureAlone(server.url)
        const { js, jsm } = Context.get(context, Nats)
        yield* Layer.build(
          Intake.layer({ concurrency: 8 }).pipe(
            Layer.provide(InactiveNumbers.layer),
            Layer.provide(Layer.succeedContext(context))
          )
        )
        const command = { clientId: "t", idempotencyKey: randomUUID(), to: "+447911123456", body: "hello" }
        const messageId = messageIdFor(command.clientId, command.idempotencyKey)
        // each publish is a new command message (no Nats-Msg-Id): the intake meets it every time
        const send = Effect.promise(() => js.publish(Subjects.send, JSON.stringify(command)))
        const queued = Effect.promise(async () => {
          const items = []
          const info = await jsm.streams.info(Streams.work)
          for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
            const stored = await jsm.streams.getMessage(Streams.work, { seq }).catch(() => null)
            if (stored !== null)
              items.push({ msgId: stored.header?.get("Nats-Msg-Id"), item: decodeWorkItem(stored.string()) })
          }
          return items
        })
        const intakeIdle = eventually(
          Effect.flatMap(
            // the intake creates its consumer as it starts
            Effect.tryPromise(() => jsm.consumers.info(Streams.commands, "intake")),
            (info) => (info.num_pending === 0 && info.num_ack_pending === 0 ? Effect.void : Effect.fail(info))
          )
        )

        yield* send
        yield* intakeIdle
        const first = yield* queued
        expect(first).toHaveLength(1)
        expect(first[0]?.msgId).toBe(`${messageId}:r0`)
        expect(first[0]?.item?.fresh?.revision).toBe(0)

        // within the duplicate window: the repeat is dropped
        yield* send
        yield* intakeIdle
        expect(yield* queued).toHaveLength(1)

        // past it (shortened here): the repeat is stored, and carries no snapshot
        yield* Effect.promise(async () => {
          const info = await jsm.streams.info(Streams.work)
          await jsm.streams.update(Streams.work, { ...info.config, duplicate_window: nanos(100) })
        })
        yield* Effect.sleep("300 millis")
        yield* send
        yield* intakeIdle
        const both = yield* queued
        expect(both).toHaveLength(2)
        expect(both[1]?.msgId).toBe(`${messageId}:r0`)
        expect(both[1]?.item?.messageId).toBe(messageId)
        expect(both[1]?.item?.fresh).toBeUndefined()
      }).pipe(Effect.provide(NatsServerLive)),
    30_000
  )
})
