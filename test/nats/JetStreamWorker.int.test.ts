/** Supervision of a JetStream worker against a real nats-server. */
import { describe, expect, layer } from "@effect/vitest"
import { RetentionPolicy } from "@nats-io/jetstream"
import { Duration, Effect, Fiber, Ref } from "effect"
import { ack, runWorker, Verdict } from "../../src/nats/JetStreamWorker.js"
import { Nats } from "../../src/nats/Nats.js"
import { eventually } from "../support/gateway.js"
import { NatsTest } from "../support/nats.js"

const setUp = (stream: string) =>
  Effect.flatMap(Nats, ({ jsm }) =>
    Effect.promise(() =>
      jsm.streams.add({ name: stream, subjects: [`${stream}.>`], retention: RetentionPolicy.Workqueue })
    )
  )

const publish = (subject: string, data: string) =>
  Effect.flatMap(Nats, ({ js }) => Effect.promise(() => js.publish(subject, data)))

describe("JetStreamWorker", () => {
  layer(NatsTest, { excludeTestServices: true })("supervision", (it) => {
    it.scoped(
      "a handler that dies on one message naks it; the others are handled and the worker lives on",
      () =>
        Effect.gen(function* () {
          yield* setUp("POISON")
          const handled = yield* Ref.make<ReadonlyArray<string>>([])
          const poisonAttempts = yield* Ref.make(0)
          yield* Effect.forkScoped(
            runWorker(
              {
                stream: "POISON",
                durable: "w",
                filterSubject: "POISON.>",
                concurrency: 4,
                failureDelay: "50 millis"
              },
              (msg) =>
                Effect.gen(function* () {
                  const body = msg.string()
                  if (body === "poison" && (yield* Ref.getAndUpdate(poisonAttempts, (n) => n + 1)) < 2) {
                    return yield* Effect.die(new Error("boom"))
                  }
                  yield* Ref.update(handled, (all) => [...all, body])
                  return ack
                })
            )
          )
          for (const body of ["a", "poison", "b", "c"]) yield* publish("POISON.x", body)
          const done = yield* eventually(
            Effect.flatMap(Ref.get(handled), (all) =>
              all.length === 4 ? Effect.succeed(all) : Effect.fail(all)
            )
          )
          expect([...done].sort()).toEqual(["a", "b", "c", "poison"])
          expect(yield* Ref.get(poisonAttempts)).toBe(3)
          // the stream is a work queue: every message is acked away (the last ack may still be in flight)
          const { jsm } = yield* Nats
          const left = yield* eventually(
            Effect.flatMap(
              Effect.promise(() => jsm.streams.info("POISON")),
              (info) => (info.state.messages === 0 ? Effect.succeed(0) : Effect.fail(info.state.messages))
            )
          )
          expect(left).toBe(0)
        })
    )

    it.scoped("a message whose handler fails on every delivery is given up at max deliveries, once", () =>
      Effect.gen(function* () {
        yield* setUp("GIVEUP")
        const tries = yield* Ref.make(0)
        const givenUp = yield* Ref.make<ReadonlyArray<string>>([])
        yield* Effect.forkScoped(
          runWorker(
            {
              stream: "GIVEUP",
              durable: "w",
              filterSubject: "GIVEUP.>",
              concurrency: 2,
              failureDelay: "20 millis",
              maxDeliver: 3,
              onGiveUp: (msg, why) => Ref.update(givenUp, (all) => [...all, `${msg.string()}: ${why}`])
            },
            () =>
              Effect.zipRight(
                Ref.update(tries, (n) => n + 1),
                Effect.die(new Error("always"))
              )
          )
        )
        yield* publish("GIVEUP.x", "poison")
        yield* eventually(
          Effect.flatMap(Ref.get(givenUp), (all) => (all.length > 0 ? Effect.void : Effect.fail(all)))
        )
        expect(yield* Ref.get(tries)).toBe(3)
        expect(yield* Ref.get(givenUp)).toEqual(["poison: handler failed"])
      })
    )

    it.scoped("a message still asking to be retried on its last delivery is given up, not stranded", () =>
      Effect.gen(function* () {
        yield* setUp("LATER")
        const tries = yield* Ref.make(0)
        const givenUp = yield* Ref.make<ReadonlyArray<string>>([])
        yield* Effect.forkScoped(
          runWorker(
            {
              stream: "LATER",
              durable: "w",
              filterSubject: "LATER.>",
              concurrency: 2,
              maxDeliver: 3,
              onGiveUp: (msg, why) => Ref.update(givenUp, (all) => [...all, `${msg.string()}: ${why}`])
            },
            () =>
              Effect.as(
                Ref.update(tries, (n) => n + 1),
                Verdict.Nak({ delay: Duration.millis(20) })
              )
          )
        )
        yield* publish("LATER.x", "waiting")
        yield* eventually(
          Effect.flatMap(Ref.get(givenUp), (all) => (all.length > 0 ? Effect.void : Effect.fail(all)))
        )
        expect(yield* Ref.get(tries)).toBe(3)
        expect(yield* Ref.get(givenUp)).toEqual(["waiting: still waiting to be retried"])
        // terminated, so the work queue is empty (the term may still be in flight)
        const { jsm } = yield* Nats
        const left = yield* eventually(
          Effect.flatMap(
            Effect.promise(() => jsm.streams.info("LATER")),
            (info) => (info.state.messages === 0 ? Effect.succeed(0) : Effect.fail(info.state.messages))
          )
        )
        expect(left).toBe(0)
      })
    )

    it.scoped("term is final: the message is not delivered again", () =>
      Effect.gen(function* () {
        yield* setUp("TERM")
        const seen = yield* Ref.make(0)
        yield* Effect.forkScoped(
          runWorker({ stream: "TERM", durable: "w", filterSubject: "TERM.>", concurrency: 2 }, (msg) =>
            Effect.as(
              Ref.update(seen, (n) => n + 1),
              msg.string() === "bad" ? Verdict.Term({ reason: "bad" }) : ack
            )
          )
        )
        yield* publish("TERM.x", "bad")
        yield* publish("TERM.x", "good")
        yield* eventually(Effect.flatMap(Ref.get(seen), (n) => (n >= 2 ? Effect.void : Effect.fail(n))))
        // a redelivery of "bad" would show up well within the 30 s ack wait; the consumer says why not
        const { jsm } = yield* Nats
        const info = yield* Effect.promise(() => jsm.consumers.info("TERM", "w"))
        expect(info.num_ack_pending).toBe(0)
        expect(info.num_redelivered).toBe(0)
        expect(yield* Ref.get(seen)).toBe(2)
      })
    )

    it.scoped("a deleted consumer is recreated and consumption resumes", () =>
      Effect.gen(function* () {
        yield* setUp("RESTART")
        const seen = yield* Ref.make<ReadonlyArray<string>>([])
        const worker = yield* Effect.forkScoped(
          runWorker({ stream: "RESTART", durable: "w", filterSubject: "RESTART.>", concurrency: 2 }, (msg) =>
            Effect.as(
              Ref.update(seen, (all) => [...all, msg.string()]),
              ack
            )
          )
        )
        yield* publish("RESTART.x", "before")
        yield* eventually(
          Effect.flatMap(Ref.get(seen), (all) => (all.length === 1 ? Effect.void : Effect.fail(all)))
        )
        const { jsm } = yield* Nats
        yield* Effect.promise(() => jsm.consumers.delete("RESTART", "w"))
        yield* publish("RESTART.x", "after")
        const all = yield* eventually(
          Effect.flatMap(Ref.get(seen), (all) =>
            all.includes("after") ? Effect.succeed(all) : Effect.fail(all)
          ),
          "20 seconds"
        )
        expect(all).toEqual(["before", "after"])
        expect(worker.unsafePoll()).toBeNull()
        yield* Fiber.interrupt(worker)
      })
    )
  })
})
