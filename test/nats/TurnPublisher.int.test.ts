/** Per-request publishes are held to the end of the turn, leave together, and are acked one by one. */
import { describe, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { Nats } from "../../src/nats/Nats.js"
import { NatsTest } from "../support/nats.js"

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve))

describe("publishThisTurn", () => {
  layer(NatsTest)("against nats-server", (it) => {
    it.effect(
      "holds the turn's publishes until its end, then sends them together, each with its own ack",
      () =>
        Effect.gen(function* () {
          const { jsm, nc, publishThisTurn } = yield* Nats
          yield* Effect.promise(() => jsm.streams.add({ name: "TURN", subjects: ["turn.>"] }))
          const before = nc.stats().outMsgs
          const acks = ["a", "b", "c"].map((x) => publishThisTurn(`turn.${x}`, x))
          // not written yet, even once the microtasks ran: the turn is not over
          yield* Effect.promise(() => Promise.resolve())
          expect(nc.stats().outMsgs).toBe(before)
          yield* Effect.promise(nextTurn)
          expect(nc.stats().outMsgs).toBe(before + 3)
          const stored = yield* Effect.promise(() => Promise.all(acks))
          expect(stored.map((ack) => ack.seq)).toEqual([1, 2, 3])
          const last = yield* Effect.promise(() => jsm.streams.getMessage("TURN", { seq: 3 }))
          expect(last?.subject).toBe("turn.c")
        })
    )

    it.effect("a publish nobody stores fails on its own; its neighbours are stored", () =>
      Effect.gen(function* () {
        const { jsm, publishThisTurn } = yield* Nats
        yield* Effect.promise(() => jsm.streams.add({ name: "TURN2", subjects: ["turn2.>"] }))
        const outcomes = yield* Effect.promise(() =>
          Promise.allSettled([
            publishThisTurn("turn2.ok", "1"),
            publishThisTurn("no.stream.here", "2"),
            publishThisTurn("turn2.ok", "3", { msgID: "dedupe-me" }),
            publishThisTurn("turn2.ok", "3", { msgID: "dedupe-me" })
          ])
        )
        expect(outcomes.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled", "fulfilled"])
        const [first, , third, fourth] = outcomes
        expect(first?.status === "fulfilled" && first.value.seq).toBe(1)
        expect(third?.status === "fulfilled" && third.value.duplicate).toBe(false)
        expect(fourth?.status === "fulfilled" && fourth.value.duplicate).toBe(true)
      })
    )
  })
})
