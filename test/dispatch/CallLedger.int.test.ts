/**
 * A work item delivered twice while its provider call is in flight (what a consumer's new leader
 * does in a cluster, with a delivery count of 1 again): the process must not call the provider a
 * second time for the message. Real nats-server and simulator; the count is the simulator's log.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { makeCallLedger } from "../../src/dispatch/CallLedger.js"
import { encodeWorkItem } from "../../src/dispatch/WorkItem.js"
import { Nats } from "../../src/nats/Nats.js"
import { Subjects } from "../../src/nats/Topology.js"
import { eventually } from "../support/gateway.js"
import { awaitFinal, providerEntry, simulator, startGateway } from "../support/inProcessGateway.js"

describe("the call ledger", () => {
  it("refuses a second call for a message in flight, and numbers a call after an unrecorded one next", () => {
    const ledger = makeCallLedger(2)
    expect(ledger.begin("m1")).toBe(true)
    expect(ledger.begin("m1")).toBe(false)
    ledger.end("m1", { called: 1, recorded: false })
    expect(ledger.unrecordedAttempt("m1")).toBe(1)
    expect(ledger.begin("m1")).toBe(true)
    ledger.end("m1", { called: 2, recorded: true })
    expect(ledger.unrecordedAttempt("m1")).toBe(0)
    // never called: nothing to remember
    expect(ledger.begin("m2")).toBe(true)
    ledger.end("m2", { recorded: false })
    expect(ledger.unrecordedAttempt("m2")).toBe(0)
    // bounded: the oldest unrecorded entry goes first
    for (const id of ["a", "b", "c"]) {
      ledger.begin(id)
      ledger.end(id, { called: 1, recorded: false })
    }
    expect(["a", "b", "c"].map(ledger.unrecordedAttempt)).toEqual([0, 1, 1])
  })

  it.live(
    "a work item delivered again during its call is not called twice",
    () =>
      Effect.gen(function* () {
        const sim = yield* simulator({ latencyMs: { min: 1500, max: 1500 } })
        const gw = yield* startGateway([providerEntry("sim", sim.url)])
        const id = yield* gw.send()
        // the intake has recorded it, so its work item is out and the call about to start
        yield* eventually(
          Effect.flatMap(gw.load(id), (loaded) =>
            loaded.state.status === "none" ? Effect.fail("not requested yet") : Effect.void
          ),
          "10 seconds"
        )
        // the same work again, under another msg id: a second delivery for the same message
        yield* gw.provide(
          Effect.flatMap(Nats, ({ js }) =>
            Effect.promise(() =>
              js.publish(
                Subjects.work("sim"),
                encodeWorkItem({ messageId: id, provider: "sim", priorAttempts: 0 }),
                {
                  msgID: `${id}:second-delivery`
                }
              )
            )
          )
        )
        const [final] = yield* awaitFinal(gw, [id])
        expect(final?.state.status).toBe("delivered")
        // the second item comes back (2 s) after the first call's outcome is on the record
        yield* Effect.sleep("3 seconds")
        const accepted = sim.submissions(id).filter((s) => s.outcome === "accepted")
        expect(accepted).toHaveLength(1)
        const attempts = (yield* gw.load(id)).events.map((e) => ("attempt" in e ? e.attempt : 0))
        expect(Math.max(...attempts)).toBe(1)
      }).pipe(Effect.scoped),
    30_000
  )
})
