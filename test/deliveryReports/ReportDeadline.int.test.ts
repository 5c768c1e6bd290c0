/**
 * Report deadlines (issue 14) through the whole in-process gateway, on a real nats-server: a
 * message whose provider never sends its delivery report ends `unknown` once the provider's
 * `reportDeadlineMs` has passed (on the record, in the read model, counted, notified), and a message
 * whose report does arrive never gets that outcome.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { decodeDeadlineChecks, encodeDeadlineChecks } from "../../src/deliveryReports/ReportDeadline.js"
import { messageIdFor } from "../../src/domain/Ids.js"
import { Nats } from "../../src/nats/Nats.js"
import { statusUnknownTotal } from "../../src/observability/Metrics.js"
import { getStatus } from "../../src/projections/MessageStatus.js"
import { decodeProvidersFile } from "../../src/providers/ProviderConfig.js"
import { eventually } from "../support/gateway.js"
import { providerEntry, simulator, startGateway } from "../support/inProcessGateway.js"
import { seriesValue } from "../support/prometheus.js"

const unknownCount = (provider: string) => seriesValue(statusUnknownTotal, { provider })

describe("report deadline", () => {
  it("defaults to 72 hours per provider, and refuses a deadline that is not a positive integer", () => {
    const entry = providerEntry("p", "http://127.0.0.1:1")
    const decoded = decodeProvidersFile({ providers: [entry] }, "test")
    expect(decoded._tag === "Right" && decoded.right.providers[0]?.reportDeadlineMs).toBe(72 * 3600 * 1000)
    const custom = decodeProvidersFile({ providers: [{ ...entry, reportDeadlineMs: 5000 }] }, "test")
    expect(custom._tag === "Right" && custom.right.providers[0]?.reportDeadlineMs).toBe(5000)
    for (const bad of [0, -1, 1.5, "1000"]) {
      expect(decodeProvidersFile({ providers: [{ ...entry, reportDeadlineMs: bad }] }, "test")._tag).toBe(
        "Left"
      )
    }
  })

  it("reads back the checks it writes, and refuses malformed ones", () => {
    const check = {
      messageId: messageIdFor("t", "k"),
      provider: "sim",
      providerMessageId: "sim-1",
      dispatchedAt: new Date("2025-03-01T10:00:00.000Z")
    }
    // the same refusals for one check as for a batch: a check travels in a batch, alone or not
    const single = (entry: unknown) => JSON.stringify({ checks: [entry] })
    const plain = JSON.parse(encodeDeadlineChecks([check])).checks[0] as Record<string, unknown>
    expect(decodeDeadlineChecks(encodeDeadlineChecks([check]))).toEqual([check])
    expect(decodeDeadlineChecks(single({}))).toBeUndefined()
    expect(decodeDeadlineChecks("not json")).toBeUndefined()
    expect(decodeDeadlineChecks(single({ ...plain, dispatchedAt: "yesterday" }))).toBeUndefined()
    // a batch's checks travel together; one bad entry refuses the whole message
    const other = { ...check, messageId: messageIdFor("t", "k2"), providerMessageId: "sim-2" }
    expect(decodeDeadlineChecks(encodeDeadlineChecks([check, other]))).toEqual([check, other])
    expect(decodeDeadlineChecks(JSON.stringify({ checks: [] }))).toBeUndefined()
    expect(decodeDeadlineChecks(JSON.stringify({ checks: [plain, { messageId: "x" }] }))).toBeUndefined()
  })

  it.live(
    "records unknown past the deadline when the report is lost, and never when it arrives",
    () =>
      Effect.gen(function* () {
        // a provider whose reports never come, and one whose reports come at once
        const lossy = yield* simulator({ dlr: { enabled: false } })
        const reliable = yield* simulator()
        const gw = yield* startGateway([
          providerEntry("lossy", lossy.url, { reportDeadlineMs: 1000 }),
          providerEntry("reliable", reliable.url, { reportDeadlineMs: 1000 })
        ])
        const before = yield* unknownCount("lossy")
        const notified: Array<{ messageId: string; status: string }> = []
        const { nc } = yield* gw.provide(Nats)
        const sub = nc.subscribe("sms.notifications.unknown", {
          callback: (_error, msg) => {
            notified.push(msg.json())
          }
        })
        yield* Effect.addFinalizer(() => Effect.sync(() => sub.unsubscribe()))

        const lost = yield* gw.send({ providers: ["lossy"] })
        const reported = yield* gw.send({ providers: ["reliable"] })

        const unknown = yield* eventually(
          Effect.flatMap(gw.load(lost), (loaded) =>
            loaded.state.status === "unknown" ? Effect.succeed(loaded) : Effect.fail(loaded.state.status)
          ),
          "20 seconds"
        )
        const types = unknown.events.map((e) => e._tag)
        expect(types).toEqual(["SmsRequested", "SmsDispatched", "SmsStatusUnknown"])
        const event = unknown.events[2]
        expect(event?._tag === "SmsStatusUnknown" && event.deadlineMs).toBe(1000)
        expect(event?._tag === "SmsStatusUnknown" && event.provider).toBe("lossy")
        const dispatchedAt = unknown.events[1]?._tag === "SmsDispatched" ? unknown.events[1].dispatchedAt : 0
        // not before its deadline
        expect(
          event?._tag === "SmsStatusUnknown" && event.at.getTime() - Number(dispatchedAt)
        ).toBeGreaterThanOrEqual(1000)
        expect((yield* unknownCount("lossy")) - before).toBe(1)

        // the read model and the notification follow
        const view = yield* eventually(
          Effect.flatMap(gw.provide(getStatus(lost)), (view) =>
            Option.isSome(view) && view.value.status === "unknown"
              ? Effect.succeed(view.value)
              : Effect.fail("not yet")
          )
        )
        expect(view.unknownAt).toBe(event?._tag === "SmsStatusUnknown" ? event.at.toISOString() : "")
        yield* eventually(
          notified.some((n) => n.messageId === lost && n.status === "unknown")
            ? Effect.void
            : Effect.fail("no notification yet")
        )

        // the reported message: delivered, and still without an unknown well past its deadline
        yield* Effect.sleep("2500 millis")
        const delivered = yield* gw.load(reported)
        expect(delivered.state.status).toBe("delivered")
        expect(delivered.events.map((e) => e._tag)).not.toContain("SmsStatusUnknown")
        expect(yield* unknownCount("reliable")).toBe(0)
        // and the lost one got exactly one outcome
        expect((yield* gw.load(lost)).events.filter((e) => e._tag === "SmsStatusUnknown")).toHaveLength(1)
      }).pipe(Effect.scoped),
    { timeout: 60_000 }
  )
})
