/**
 * The lean publish against the client's own `js.publish`, on a real nats-server: the same acks and
 * the same refusals for every case the gateway meets, so callers cannot tell them apart.
 */
import { JetStreamApiCodes, JetStreamApiError, type PubAck } from "@nats-io/jetstream"
import { ClosedConnectionError, headers, NoRespondersError, TimeoutError } from "@nats-io/nats-core"
import { connect } from "@nats-io/transport-node"
import { describe, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { makeJetStreamPublish } from "../../src/nats/JetStreamPublish.js"
import { Nats } from "../../src/nats/Nats.js"
import { NatsTest, TestNatsServer } from "../support/nats.js"

const settled = <A>(promise: Promise<A>) =>
  Effect.promise(() =>
    promise.then(
      (value) => ({ ok: true as const, value }),
      (error: unknown) => ({ ok: false as const, error })
    )
  )

/** What a caller sees of an answer: the ack's fields, or the error's class and JetStream code. */
const seen = (outcome: { ok: true; value: PubAck } | { ok: false; error: unknown }) =>
  outcome.ok
    ? { stream: outcome.value.stream, seq: outcome.value.seq, duplicate: outcome.value.duplicate }
    : {
        error:
          outcome.error instanceof JetStreamApiError
            ? `JetStreamApiError ${outcome.error.code}`
            : (outcome.error as Error).constructor.name
      }

describe("the lean JetStream publish", () => {
  layer(NatsTest)("against nats-server", (it) => {
    it.effect("acks, duplicates and a wrong last sequence answer as js.publish answers them", () =>
      Effect.gen(function* () {
        const { js, jsm, publish } = yield* Nats
        yield* Effect.promise(() => jsm.streams.add({ name: "LEAN", subjects: ["lean.>"] }))
        yield* Effect.promise(() => jsm.streams.add({ name: "CLIENT", subjects: ["client.>"] }))
        // the same sequence of publishes to two twin streams, one through each
        const run = (prefix: "lean" | "client") => {
          const send = prefix === "lean" ? publish : js.publish.bind(js)
          return Effect.gen(function* () {
            const outcomes = []
            outcomes.push(yield* settled(send(`${prefix}.a`, "1")))
            outcomes.push(yield* settled(send(`${prefix}.a`, "2", { msgID: "m-1" })))
            outcomes.push(yield* settled(send(`${prefix}.a`, "2 again", { msgID: "m-1" })))
            outcomes.push(yield* settled(send(`${prefix}.b`, "3", { expect: { lastSubjectSequence: 0 } })))
            outcomes.push(yield* settled(send(`${prefix}.b`, "4", { expect: { lastSubjectSequence: 0 } })))
            outcomes.push(
              yield* settled(send(`${prefix}.b`, "5", { msgID: "m-2", expect: { lastSubjectSequence: 4 } }))
            )
            return outcomes.map(seen).map((o) => ("stream" in o ? { ...o, stream: "S" } : o))
          })
        }
        const lean = yield* run("lean")
        const client = yield* run("client")
        expect(lean).toEqual(client)
        expect(lean).toEqual([
          { stream: "S", seq: 1, duplicate: false },
          { stream: "S", seq: 2, duplicate: false },
          { stream: "S", seq: 2, duplicate: true },
          { stream: "S", seq: 3, duplicate: false },
          { error: `JetStreamApiError ${JetStreamApiCodes.StreamWrongLastSequence}` },
          { error: `JetStreamApiError ${JetStreamApiCodes.StreamWrongLastSequence}` }
        ])
        const stored = yield* Effect.promise(() => jsm.streams.getMessage("LEAN", { seq: 3 }))
        expect(stored?.header?.get("Nats-Expected-Last-Subject-Sequence")).toBe("0")
      })
    )

    it.effect(
      "the headers a stream stores are the client's, and a line break in a value is refused as it refuses it",
      () =>
        Effect.gen(function* () {
          const { js, jsm, publish } = yield* Nats
          yield* Effect.promise(() => jsm.streams.add({ name: "LEAN_H", subjects: ["leanh.>"] }))
          yield* Effect.promise(() => jsm.streams.add({ name: "CLIENT_H", subjects: ["clienth.>"] }))
          const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
          const options = { msgID: " key with spaces ", expect: { lastSubjectSequence: 0 }, traceparent }
          yield* Effect.promise(() => publish("leanh.a", "x", options))
          // the client takes a trace context as a header of its own making
          const traceHeader = headers()
          traceHeader.set("traceparent", traceparent)
          yield* Effect.promise(() => js.publish("clienth.a", "x", { ...options, headers: traceHeader }))
          const headersOf = (stream: string) =>
            Effect.promise(async () => {
              const stored = await jsm.streams.getMessage(stream, { seq: 1 })
              // in key order: the order of header lines means nothing
              return [...(stored?.header ?? [])]
                .map(([key, values]) => [key, [...values]])
                .sort(([a], [b]) => String(a).localeCompare(String(b)))
            })
          const lean = yield* headersOf("LEAN_H")
          expect(lean).toEqual(yield* headersOf("CLIENT_H"))
          expect(lean).toEqual([
            ["Nats-Expected-Last-Subject-Sequence", ["0"]],
            ["Nats-Msg-Id", ["key with spaces"]],
            ["traceparent", [traceparent]]
          ])

          const broken = { msgID: "a\r\nNats-Expected-Last-Subject-Sequence: 9" }
          const leanRefusal = yield* settled(publish("leanh.b", "y", broken))
          const clientRefusal = yield* settled(js.publish("clienth.b", "y", broken))
          expect(leanRefusal.ok).toBe(false)
          expect(seen(leanRefusal)).toEqual(seen(clientRefusal))
          expect(seen(leanRefusal)).toEqual({ error: "InvalidArgumentError" })
        })
    )

    it.effect(
      "no stream: NoRespondersError at once; no answer: TimeoutError; a closed connection fails what waits",
      () =>
        Effect.gen(function* () {
          const server = yield* TestNatsServer
          const { publish } = yield* Nats
          const none = yield* settled(publish("nobody.stores.this", "x"))
          expect(!none.ok && none.error).toBeInstanceOf(NoRespondersError)

          const nc = yield* Effect.promise(() => connect({ servers: server.url }))
          // a plain subscriber takes the subject (so the server reports responders) and never answers
          nc.subscribe("silent.subject", { callback: () => undefined })
          yield* Effect.promise(() => nc.flush())
          const quick = makeJetStreamPublish(nc, 300)
          const started = Date.now()
          const silent = yield* settled(quick("silent.subject", "x"))
          expect(!silent.ok && silent.error).toBeInstanceOf(TimeoutError)
          expect(Date.now() - started).toBeLessThan(2_000)

          const waiting = quick("silent.subject", "y")
          yield* Effect.promise(() => nc.close())
          const closed = yield* settled(waiting)
          expect(!closed.ok && closed.error).toBeInstanceOf(ClosedConnectionError)
          const after = yield* settled(quick("silent.subject", "z"))
          expect(after.ok).toBe(false)
        })
    )
  })
})
