/**
 * The call journal (src/dispatch/CallJournal.ts): every provider call has a record stored before the
 * provider received it, and without the journal no call is made. Real nats-server and simulator; the
 * calls counted are the simulator's log.
 */
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import {
  decodeCallRecord,
  encodeCallRecord,
  journaledCallsByMessage,
  readCallJournal
} from "../../src/dispatch/CallJournal.js"
import { Nats } from "../../src/nats/Nats.js"
import { ensureStreams, Streams } from "../../src/nats/Topology.js"
import { awaitFinal, providerEntry, simulator, startGateway } from "../support/inProcessGateway.js"
import { spawnProcess } from "../support/processes.js"

const root = fileURLToPath(new URL("../../", import.meta.url))

describe("the call journal", () => {
  it("a record reads back as written; anything else is not a record", () => {
    const at = new Date("2026-12-03T10:00:00.000Z")
    const calls = [
      { messageId: "m1", attempt: 1 },
      { messageId: "m2", attempt: 3 }
    ]
    expect(decodeCallRecord("sim", encodeCallRecord(at, calls))).toEqual({ provider: "sim", at, calls })
    for (const bad of [
      "",
      "[]",
      "{}",
      '{"at":"x","calls":[]}',
      '{"at":"2026-12-03T10:00:00Z","calls":[["m",1.5]]}'
    ])
      expect(decodeCallRecord("sim", bad)).toBeUndefined()
    expect(
      journaledCallsByMessage([
        { provider: "a", at, calls },
        { provider: "b", at, calls: [{ messageId: "m1", attempt: 2 }] }
      ])
    ).toEqual(
      new Map([
        ["m1", 2],
        ["m2", 1]
      ])
    )
  })

  it.live(
    "every submission a provider received, retries included, was journaled before it arrived",
    () =>
      Effect.gen(function* () {
        const sim = yield* simulator({ errorRate: 0.4, seed: 5 })
        const gw = yield* startGateway([providerEntry("sim", sim.url)])
        const ids = yield* Effect.forEach(Array.from({ length: 12 }), () => gw.send())
        yield* awaitFinal(gw, ids)
        const records = yield* gw.provide(readCallJournal)
        const counts = journaledCallsByMessage(records)
        let submissions = 0
        for (const id of ids) {
          const received = sim.submissions(id)
          submissions += received.length
          expect(counts.get(id) ?? 0).toBeGreaterThanOrEqual(received.length)
          const firstJournaled = Math.min(
            ...records
              .filter((r) => r.calls.some((c) => c.messageId === id))
              .map((r) => r.storedAt?.getTime() ?? Number.POSITIVE_INFINITY)
          )
          for (const s of received) expect(Date.parse(s.receivedAt)).toBeGreaterThanOrEqual(firstJournaled)
        }
        // the 503s made retries: more submissions than messages, each journaled
        expect(submissions).toBeGreaterThan(ids.length)
        expect([...counts.values()].reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(submissions)
        // the auditor's view: `sms-gateway calls --message <id>`, one line per call
        const retried = ids.find((id) => (counts.get(id) ?? 0) > 1) ?? ids[0] ?? ""
        const cli = yield* spawnProcess(
          process.execPath,
          ["bin/sms-gateway.mjs", "calls", "--nats-url", gw.natsUrl, "--message", retried],
          { cwd: root, env: { ...process.env, LOG_LEVEL: "Warning" } }
        )
        expect(yield* cli.exited("30 seconds")).toBe(0)
        const lines = cli
          .stdout()
          .trim()
          .split("\n")
          .map((line) => JSON.parse(line) as { messageId: string; attempt: number; provider: string })
        expect(lines).toHaveLength(counts.get(retried) ?? 0)
        expect(lines.every((line) => line.messageId === retried && line.provider === "sim")).toBe(true)
        expect(lines.map((line) => line.attempt)).toEqual(
          lines.map((line) => line.attempt).sort((a, b) => a - b)
        )
      }).pipe(Effect.scoped),
    60_000
  )

  it.live(
    "while the journal cannot be written, no call is made; once it can, the message goes out",
    () =>
      Effect.gen(function* () {
        const sim = yield* simulator()
        const gw = yield* startGateway([providerEntry("sim", sim.url)])
        yield* gw.provide(
          Effect.flatMap(Nats, ({ jsm }) => Effect.promise(() => jsm.streams.delete(Streams.calls)))
        )
        const id = yield* gw.send()
        // the work item is delivered and naked (2 s) at least once meanwhile
        yield* Effect.sleep("3 seconds")
        expect(sim.submissions(id)).toHaveLength(0)
        expect((yield* gw.load(id)).state.status).toBe("requested")
        yield* gw.provide(ensureStreams)
        const [final] = yield* awaitFinal(gw, [id])
        expect(final?.state.status).toBe("delivered")
        expect(sim.submissions(id).filter((s) => s.outcome === "accepted")).toHaveLength(1)
        expect(journaledCallsByMessage(yield* gw.provide(readCallJournal)).get(id)).toBe(1)
      }).pipe(Effect.scoped),
    60_000
  )
})
