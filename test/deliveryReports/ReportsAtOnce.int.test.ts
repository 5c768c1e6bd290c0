/**
 * Delivery reports recorded by the webhook as they arrive (`src/deliveryReports/ReportsAtOnce.ts`):
 * a report for a message this process dispatched goes on the message without passing through
 * `SMS_DLR`; any other is stored for the report actor, as before. A whole gateway in the test
 * process, real nats-server and simulator.
 */
import { randomUUID } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { messageIdFor } from "../../src/domain/Ids.js"
import { Nats } from "../../src/nats/Nats.js"
import { Streams } from "../../src/nats/Topology.js"
import { deliveryReportsTotal } from "../../src/observability/Metrics.js"
import { eventually } from "../support/gateway.js"
import {
  awaitFinal,
  providerEntry,
  postSignedReport,
  simulator,
  startGateway
} from "../support/inProcessGateway.js"
import { seriesValue } from "../support/prometheus.js"

const reports = (outcome: "recorded" | "stored") =>
  seriesValue(deliveryReportsTotal, { provider: "sim", outcome })

/** A generic-http report of `delivered`, as the simulator sends them. */
const postReport = (publicUrl: string, report: Record<string, unknown>) =>
  postSignedReport(publicUrl, "sim", { status: "delivered", timestamp: new Date().toISOString(), ...report })

describe("delivery reports recorded as they arrive", () => {
  it.scopedLive(
    "a report for a message this process dispatched is recorded at once, without SMS_DLR; any other is stored for the actor",
    () =>
      Effect.gen(function* () {
        // reports come well after the submit's answer, so the dispatch is recorded before they arrive
        const sim = yield* simulator({ dlr: { delayMs: { min: 150, max: 200 } } })
        const gw = yield* startGateway([providerEntry("sim", sim.url)])
        const storedReports = gw.provide(
          Effect.flatMap(Nats, ({ jsm }) =>
            Effect.promise(async () => (await jsm.streams.info(Streams.dlr)).state.last_seq)
          )
        )
        const recordedBefore = yield* reports("recorded")
        const storedBefore = yield* reports("stored")

        const ids = yield* Effect.forEach(Array.from({ length: 10 }), () => gw.send())
        const finals = yield* awaitFinal(gw, ids)
        for (const { state, events } of finals) {
          expect(state.status).toBe("delivered")
          expect(events.map((event) => event._tag)).toEqual(["SmsRequested", "SmsDispatched", "SmsDelivered"])
        }
        const recorded = (yield* reports("recorded")) - recordedBefore
        const stored = (yield* reports("stored")) - storedBefore
        // a report that still beats its dispatch's record (a loaded machine) is stored, as before
        expect(recorded + stored).toBe(10)
        expect(recorded).toBeGreaterThan(0)
        expect(yield* storedReports).toBe(stored)

        // the same report again: recorded at once, and it changes nothing
        const first = finals[0]
        const state = first?.state
        if (state === undefined || state.status === "none") throw new Error("no message")
        const again = yield* postReport(gw.publicUrl, {
          messageId: state.providerMessageId,
          reference: state.request.messageId
        })
        expect(again).toBe(200)
        expect((yield* reports("recorded")) - recordedBefore).toBe(recorded + 1)
        expect((yield* gw.load(state.request.messageId)).events).toHaveLength(3)

        // a message this process never dispatched: stored in SMS_DLR for the report actor
        const stranger = messageIdFor("t", randomUUID())
        const unknown = yield* postReport(gw.publicUrl, { messageId: "sim-stranger", reference: stranger })
        expect(unknown).toBe(200)
        expect((yield* reports("stored")) - storedBefore).toBe(stored + 1)
        expect(yield* storedReports).toBe(stored + 1)
        // the actor takes it (and refuses it: no such message), so the work queue empties
        yield* eventually(
          Effect.flatMap(
            gw.provide(
              Effect.flatMap(Nats, ({ jsm }) => Effect.promise(() => jsm.streams.info(Streams.dlr)))
            ),
            (info) => (info.state.messages === 0 ? Effect.void : Effect.fail("still queued"))
          )
        )
      }),
    { timeout: 60_000 }
  )
})
