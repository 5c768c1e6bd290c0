/**
 * Report deadlines with a status query (issue 14), through the whole in-process gateway on a real
 * nats-server, against simulators in the twilio and vonage wire formats whose reports are all lost
 * (`dlr.loseRate: 1`): at the deadline the gateway asks the provider, and records a final answer as
 * the report it stands for (marked `source: "status_query"`), or `unknown` when the provider says
 * the message is still on its way or the query gets no answer.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either, Option, Schema } from "effect"
import type { LoadedMessage } from "../../src/messages/MessageRepository.js"
import { type MessageId, messageIdFor } from "../../src/domain/Ids.js"
import {
  decide,
  fold,
  MessageEvent,
  SmsDelivered,
  SmsDispatched,
  SmsFailed,
  SmsRequested
} from "../../src/domain/Message.js"
import { decodeMessageEventData, encodeMessageEvent } from "../../src/eventstore/MessageEvents.js"
import { reportStatusQueriesTotal, statusUnknownTotal } from "../../src/observability/Metrics.js"
import { getStatus } from "../../src/projections/MessageStatus.js"
import { eventually } from "../support/gateway.js"
import { providerEntry, simulator, startGateway } from "../support/inProcessGateway.js"
import { seriesValue } from "../support/prometheus.js"

const accountSid = `AC${"0123456789abcdef".repeat(2)}`
const vonageKey = "abcd1234"
process.env.REPORT_QUERY_VONAGE_KEY = vonageKey

const DEADLINE_MS = 1000

const queries = (provider: string, outcome: string) =>
  seriesValue(reportStatusQueriesTotal, { provider, outcome })

const unknownCount = (provider: string) => seriesValue(statusUnknownTotal, { provider })

/** A twilio provider of the in-process gateway (the simulator's api key is the auth token). */
const twilioEntry = (id: string, url: string) => ({
  ...providerEntry(id, url),
  type: "twilio",
  accountSid,
  authTokenEnv: "IN_PROCESS_SIM_KEY",
  from: "+15005550006",
  reportDeadlineMs: DEADLINE_MS
})

/** A vonage provider (the simulator's api key is the api secret, its webhook secret the signature secret). */
const vonageEntry = (id: string, url: string, reportsBaseUrl: string) => ({
  ...providerEntry(id, url),
  type: "vonage",
  reportsBaseUrl,
  apiKeyEnv: "REPORT_QUERY_VONAGE_KEY",
  apiSecretEnv: "IN_PROCESS_SIM_KEY",
  signatureSecretEnv: "IN_PROCESS_SIM_SECRET",
  from: "ACME",
  reportDeadlineMs: DEADLINE_MS
})

describe("an outcome found by a status query, on the record", () => {
  const messageId = messageIdFor("t", "query")
  const at = new Date("2025-03-01T10:00:00.000Z")
  const requested = new SmsRequested({
    messageId,
    clientId: "t",
    idempotencyKey: "query",
    to: "+447911123456",
    body: "hi",
    encoding: "GSM-7",
    segments: 1,
    requestedAt: at
  })
  const dispatched = new SmsDispatched({
    messageId,
    provider: "tw",
    providerMessageId: "SM1",
    attempt: 1,
    dispatchedAt: at
  })
  const report = (outcome: "delivered" | "failed", source?: "status_query") =>
    decide(
      {
        _tag: "RecordDeliveryReport",
        provider: "tw",
        providerMessageId: "SM1",
        outcome:
          outcome === "delivered"
            ? { _tag: "Delivered" }
            : { _tag: "Failed", reason: "rejected", code: "30007" },
        rawStatus: outcome === "delivered" ? "delivered" : "failed",
        at,
        ...(source === undefined ? {} : { source })
      },
      fold([requested, dispatched])
    )

  it("the decider marks the queried report, and leaves a delivery report's events as they were", () => {
    const queried = report("delivered", "status_query")
    expect(Either.isRight(queried) && queried.right[0]).toMatchObject({
      _tag: "SmsDelivered",
      source: "status_query"
    })
    const failed = report("failed", "status_query")
    expect(Either.isRight(failed) && failed.right[0]).toMatchObject({
      _tag: "SmsFailed",
      source: "status_query",
      detail: "queried status failed"
    })
    // a delivery report: no `source` key at all, the detail as before
    for (const outcome of ["delivered", "failed"] as const) {
      const plain = report(outcome)
      const event = Either.isRight(plain) ? plain.right[0] : undefined
      expect(event).toBeDefined()
      expect(Object.keys(event ?? {})).not.toContain("source")
      if (event?._tag === "SmsFailed") expect(event.detail).toBe("DLR status failed")
    }
  })

  it("the mark is stored as the Schema stores it, decoded back, and absent from older events", () => {
    const schemaEncode = Schema.encodeSync(MessageEvent)
    const schemaDecode = Schema.decodeUnknownEither(MessageEvent)
    const events = [
      new SmsDelivered({
        messageId,
        provider: "tw",
        providerMessageId: "SM1",
        deliveredAt: at,
        rawStatus: "delivered",
        source: "status_query"
      }),
      new SmsFailed({ messageId, reason: "rejected", permanent: true, failedAt: at, source: "status_query" }),
      new SmsFailed({
        messageId,
        reason: "rejected",
        permanent: true,
        failedAt: at,
        contradicts: "delivered",
        source: "status_query"
      })
    ]
    for (const event of events) {
      const { _tag, ...data } = schemaEncode(event)
      const lean = encodeMessageEvent(event)
      expect(JSON.stringify(lean)).toBe(JSON.stringify(data))
      expect(lean.source).toBe("status_query")
      expect(decodeMessageEventData(event._tag, JSON.parse(JSON.stringify(lean)))).toStrictEqual(event)
      // junk in the mark: refused by both
      for (const junk of ["webhook", "", 1, null, true]) {
        expect(decodeMessageEventData(event._tag, { ...lean, source: junk })).toBeUndefined()
        expect(Either.isLeft(schemaDecode({ ...lean, source: junk, _tag }))).toBe(true)
      }
      // stored before the mark existed
      const { source: _source, ...older } = lean
      const decoded = decodeMessageEventData(event._tag, older)
      expect(decoded).toBeDefined()
      expect(Object.keys(decoded ?? {})).not.toContain("source")
    }
  })
})

describe("report deadline with a status query", () => {
  it.live(
    "a lost report is replaced by the provider's answer, and unknown stays for what it cannot tell",
    () =>
      Effect.gen(function* () {
        // every report lost; the status each simulator decided is what its query answers
        const delivered = yield* simulator({ format: "twilio", account: accountSid, dlr: { loseRate: 1 } })
        const stillSent = yield* simulator({
          format: "twilio",
          account: accountSid,
          // final only in a minute: at the deadline Twilio says `sent`
          dlr: { loseRate: 1, delayMs: { min: 60_000, max: 60_000 } }
        })
        const failed = yield* simulator({
          format: "vonage",
          account: vonageKey,
          dlr: { loseRate: 1, outcomes: { undelivered: 1 } }
        })
        const noReports = yield* simulator({ format: "vonage", account: vonageKey, dlr: { loseRate: 1 } })
        const gw = yield* startGateway([
          twilioEntry("tw-delivered", delivered.url),
          twilioEntry("tw-sent", stillSent.url),
          vonageEntry("vg-failed", failed.url, failed.url),
          // the Reports API unreachable: the query fails, and the message is unknown as without one
          vonageEntry("vg-down", noReports.url, "http://127.0.0.1:1")
        ])
        const before = {
          delivered: yield* queries("tw-delivered", "delivered"),
          pending: yield* queries("tw-sent", "pending"),
          failed: yield* queries("vg-failed", "failed"),
          error: yield* queries("vg-down", "error"),
          unknownSent: yield* unknownCount("tw-sent"),
          unknownDown: yield* unknownCount("vg-down")
        }

        const ids = {
          delivered: yield* gw.send({ providers: ["tw-delivered"] }),
          sent: yield* gw.send({ providers: ["tw-sent"] }),
          failed: yield* gw.send({ providers: ["vg-failed"] }),
          down: yield* gw.send({ providers: ["vg-down"] })
        }
        const settled = (id: MessageId, status: string) =>
          eventually(
            Effect.flatMap(gw.load(id), (loaded) =>
              loaded.state.status === status ? Effect.succeed(loaded) : Effect.fail(loaded.state.status)
            ),
            "20 seconds"
          )
        const dispatchedAt = (loaded: LoadedMessage) => {
          const event = loaded.events.find((e) => e._tag === "SmsDispatched")
          return event?._tag === "SmsDispatched" ? event.dispatchedAt.getTime() : Number.NaN
        }

        // twilio, report lost, delivered: recorded as its report would have been, marked as a query's
        const wasDelivered = yield* settled(ids.delivered, "delivered")
        expect(wasDelivered.events.map((e) => e._tag)).toEqual([
          "SmsRequested",
          "SmsDispatched",
          "SmsDelivered"
        ])
        const delivery = wasDelivered.events[2]
        expect(delivery?._tag === "SmsDelivered" && delivery).toMatchObject({
          provider: "tw-delivered",
          rawStatus: "delivered",
          source: "status_query"
        })
        // asked at the deadline, not before
        expect(
          delivery?._tag === "SmsDelivered" && delivery.deliveredAt.getTime() - dispatchedAt(wasDelivered)
        ).toBeGreaterThanOrEqual(DEADLINE_MS)
        expect((yield* queries("tw-delivered", "delivered")) - before.delivered).toBe(1)
        expect(yield* unknownCount("tw-delivered")).toBe(0)

        // twilio still says `sent`: unknown, as without a query
        const wasSent = yield* settled(ids.sent, "unknown")
        expect(wasSent.events.map((e) => e._tag)).toEqual([
          "SmsRequested",
          "SmsDispatched",
          "SmsStatusUnknown"
        ])
        expect((yield* queries("tw-sent", "pending")) - before.pending).toBe(1)
        expect((yield* unknownCount("tw-sent")) - before.unknownSent).toBe(1)

        // vonage's Reports API says failed (err 2): failed undeliverable, from the query
        const wasFailed = yield* settled(ids.failed, "failed")
        expect(wasFailed.events.map((e) => e._tag)).toEqual(["SmsRequested", "SmsDispatched", "SmsFailed"])
        expect(wasFailed.events[2]).toMatchObject({
          _tag: "SmsFailed",
          provider: "vg-failed",
          reason: "undeliverable",
          code: "2",
          detail: "queried status failed",
          source: "status_query"
        })
        expect((yield* queries("vg-failed", "failed")) - before.failed).toBe(1)

        // the query failed: unknown, the check not lost
        const wasDown = yield* settled(ids.down, "unknown")
        expect(wasDown.events.map((e) => e._tag)).toEqual([
          "SmsRequested",
          "SmsDispatched",
          "SmsStatusUnknown"
        ])
        expect((yield* queries("vg-down", "error")) - before.error).toBe(1)
        expect((yield* unknownCount("vg-down")) - before.unknownDown).toBe(1)

        // the read model follows the queried outcome
        const view = yield* eventually(
          Effect.flatMap(gw.provide(getStatus(ids.delivered)), (view) =>
            Option.isSome(view) && view.value.status === "delivered"
              ? Effect.succeed(view.value)
              : Effect.fail("not yet")
          )
        )
        expect(view.status).toBe("delivered")

        // and nothing more comes of a second look: one outcome each, one query each
        yield* Effect.sleep("1500 millis")
        for (const id of Object.values(ids)) {
          const events = (yield* gw.load(id)).events.map((e) => e._tag)
          expect(events.slice(2)).toHaveLength(1)
        }
        expect((yield* queries("tw-delivered", "delivered")) - before.delivered).toBe(1)
        // the simulators never sent a report: every outcome came from a query or the deadline
        for (const sim of [delivered, stillSent, failed, noReports]) expect(sim.stats().dlrSent).toBe(0)
      }).pipe(Effect.scoped),
    { timeout: 60_000 }
  )
})
