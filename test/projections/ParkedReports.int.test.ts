/**
 * The parked-reports bucket is bounded (issue #12, item 6), against a real nats-server: parked
 * reports expire after the configured max age, a bucket made before the bounds gets them on start,
 * a report the full bucket refuses is dropped (counted, logged, acked) without wedging the
 * delivery-report actor, and `/metrics` reports how many are parked.
 */
import { describe, expect, it, layer } from "@effect/vitest"
import type { JsMsg } from "@nats-io/jetstream"
import { Kvm } from "@nats-io/kv"
import { Duration, Effect, Layer, Logger, Schema } from "effect"
import { handleDeliveryReports } from "../../src/deliveryReports/DeliveryReportActor.js"
import { encodeStoredDeliveryReport } from "../../src/deliveryReports/DeliveryReports.js"
import * as MemoryEventStore from "../../src/eventstore/MemoryEventStore.js"
import { Nats } from "../../src/nats/Nats.js"
import { Buckets, ensureStreams } from "../../src/nats/Topology.js"
import { collect } from "../../src/http/Collect.js"
import { jsonLogger } from "../../src/observability/Logger.js"
import { renderSnapshot } from "../../src/observability/Prometheus.js"
import { hasParked, park, requeueParked } from "../../src/projections/ParkedReports.js"
import {
  defaultParkedReportLimits,
  openParkedReports,
  type ParkedReportLimits,
  parkedReportLimits,
  parkedReportsStream,
  ReadModels
} from "../../src/projections/ReadModels.js"
import { ProvidersFile } from "../../src/providers/ProviderConfig.js"
import { Providers } from "../../src/providers/Providers.js"
import { NatsTest } from "../support/nats.js"
import { parsePrometheusText, sampleValue } from "../support/prometheus.js"

process.env.PARKED_TEST_KEY = "key"
process.env.PARKED_TEST_SECRET = "secret"

const providers = Providers.layer(
  Schema.decodeUnknownSync(ProvidersFile)({
    providers: [
      {
        id: "sim",
        type: "generic-http",
        baseUrl: "http://127.0.0.1:9",
        apiKeyEnv: "PARKED_TEST_KEY",
        webhookSecretEnv: "PARKED_TEST_SECRET",
        timeoutMs: 1000
      }
    ]
  })
)

const PHONE = "+447911123456"

/** A stored report for a message nobody sent: no reference, no provider-id index entry. */
const record = (providerMessageId: string) =>
  encodeStoredDeliveryReport({
    provider: "sim",
    receivedAt: new Date("2026-01-01T10:00:00.000Z"),
    report: { providerMessageId, outcome: "delivered", rawStatus: "DELIVRD" },
    raw: JSON.stringify({ id: providerMessageId, to: PHONE, status: "DELIVRD" })
  })

/** A report on its last early delivery: the actor parks it (or drops it) now. */
const lastEarlyDelivery = (providerMessageId: string) => {
  const text = record(providerMessageId)
  return {
    subject: "sms.dlr.sim",
    seq: 1,
    info: { deliveryCount: 14 },
    string: () => text
  } as unknown as JsMsg
}

const metrics = Effect.gen(function* () {
  return parsePrometheusText(yield* renderSnapshot(yield* collect))
})

const parkedValues = Effect.flatMap(ReadModels, ({ parkedReports }) =>
  Effect.map(
    Effect.promise(() => parkedReports.status()),
    (status) => status.values
  )
)

const limits = (overrides: Partial<ParkedReportLimits>): ParkedReportLimits => ({
  ...defaultParkedReportLimits,
  ...overrides
})

describe("parked-reports bounds from the environment", () => {
  it("defaults to 7 days, 100,000 reports, 256 MiB; takes positive integers only", () => {
    expect(parkedReportLimits({})).toEqual({
      maxAgeMs: 604_800_000,
      maxReports: 100_000,
      maxBytes: 268_435_456
    })
    expect(
      parkedReportLimits({
        PARKED_REPORT_TTL_MS: "1500",
        PARKED_REPORTS_MAX: "10",
        PARKED_REPORTS_MAX_BYTES: "4096"
      })
    ).toEqual({ maxAgeMs: 1500, maxReports: 10, maxBytes: 4096 })
    // no expiry is not a setting: 0, negatives and garbage fall back to the defaults
    expect(
      parkedReportLimits({
        PARKED_REPORT_TTL_MS: "0",
        PARKED_REPORTS_MAX: "-1",
        PARKED_REPORTS_MAX_BYTES: "lots"
      })
    ).toEqual(defaultParkedReportLimits)
  })
})

describe("a parked report", () => {
  layer(ReadModels.layerWith(limits({ maxAgeMs: 1000 })).pipe(Layer.provideMerge(NatsTest)), {
    excludeTestServices: true
  })((it) => {
    it.effect(
      "expires after the configured max age",
      () =>
        Effect.gen(function* () {
          const { parkedReports } = yield* ReadModels
          expect(yield* park("sim", "sim.pm-expires", record("pm-expires"))).toBe("parked")
          const parkedAt = Date.now()
          expect((yield* Effect.promise(() => parkedReports.get("sim.pm-expires")))?.operation).toBe("PUT")
          // JetStream enforces max_age about once a second: gone within the age plus a few seconds
          let entry = yield* Effect.promise(() => parkedReports.get("sim.pm-expires"))
          while (entry !== null && Date.now() - parkedAt < 6000) {
            yield* Effect.sleep(Duration.millis(100))
            entry = yield* Effect.promise(() => parkedReports.get("sim.pm-expires"))
          }
          expect(entry).toBeNull()
          expect(Date.now() - parkedAt).toBeGreaterThanOrEqual(900)
          expect(yield* parkedValues).toBe(0)
        }),
      15_000
    )
  })
})

describe("a bucket made before the bounds", () => {
  layer(NatsTest, { excludeTestServices: true })((it) => {
    it.effect(
      "gets them on start, and its old reports expire",
      () =>
        Effect.gen(function* () {
          const { js, jsm } = yield* Nats
          // as every earlier version created it: no max age, no size bound
          const old = yield* Effect.promise(() => new Kvm(js).create(Buckets.parkedReports, { history: 1 }))
          yield* Effect.promise(() => old.put("sim.pm-old", record("pm-old")))
          const before = yield* Effect.promise(() => jsm.streams.info(parkedReportsStream))
          expect(before.config.max_age).toBe(0)
          expect(before.config.max_msgs).toBe(-1)

          const bounded = yield* openParkedReports({ maxAgeMs: 1500, maxReports: 50, maxBytes: 65_536 })
          const { config } = yield* Effect.promise(() => jsm.streams.info(parkedReportsStream))
          expect(config.max_age).toBe(1500 * 1e6)
          expect(config.max_msgs).toBe(50)
          expect(config.max_bytes).toBe(65_536)
          expect(config.duplicate_window).toBeLessThanOrEqual(1500 * 1e6)
          // the rest of the bucket is as it was: same data, one value per key, discard new
          expect(config.max_msgs_per_subject).toBe(1)
          expect(config.discard).toBe("new")

          // opening again with other bounds (a new setting) moves them again
          yield* openParkedReports({ maxAgeMs: 3_600_000, maxReports: 60, maxBytes: 65_536 })
          const again = yield* Effect.promise(() => jsm.streams.info(parkedReportsStream))
          expect(again.config.max_age).toBe(3_600_000 * 1e6)
          expect(again.config.max_msgs).toBe(60)

          // a tool beside the gateway (the CLI, its own environment) leaves the gateway's bounds alone
          yield* openParkedReports(defaultParkedReportLimits, { applyToExisting: false })
          const untouched = yield* Effect.promise(() => jsm.streams.info(parkedReportsStream))
          expect(untouched.config.max_age).toBe(3_600_000 * 1e6)
          expect(untouched.config.max_msgs).toBe(60)

          // and back to 1.5 s: the report parked before any bound is now subject to one
          yield* openParkedReports({ maxAgeMs: 1500, maxReports: 50, maxBytes: 65_536 })
          const start = Date.now()
          let entry = yield* Effect.promise(() => bounded.get("sim.pm-old"))
          while (entry !== null && Date.now() - start < 6000) {
            yield* Effect.sleep(Duration.millis(100))
            entry = yield* Effect.promise(() => bounded.get("sim.pm-old"))
          }
          expect(entry).toBeNull()
        }),
      15_000
    )
  })
})

describe("a full bucket", () => {
  layer(
    Layer.mergeAll(MemoryEventStore.layer, providers).pipe(
      Layer.provideMerge(ReadModels.layerWith(limits({ maxReports: 2 }))),
      Layer.provideMerge(NatsTest)
    ),
    { excludeTestServices: true }
  )((it) => {
    it.effect("drops a report it refuses: counted, logged without the report, and acked", () =>
      Effect.gen(function* () {
        const { parkedReports } = yield* ReadModels
        const lines: Array<string> = []
        const logs = Logger.replace(
          Logger.defaultLogger,
          jsonLogger((line) => lines.push(line))
        )
        const handle = (...ids: ReadonlyArray<string>) =>
          handleDeliveryReports(ids.map(lastEarlyDelivery)).pipe(Effect.provide(logs))

        // counters are the process's: this test reads what it adds
        const counted = Effect.map(metrics, (families) => ({
          parked: sampleValue(families, "sms_reports_parked_total", { provider: "sim" }) ?? 0,
          dropped:
            sampleValue(families, "sms_parked_reports_dropped_total", { provider: "sim", reason: "full" }) ??
            0
        }))
        const before = yield* counted

        expect(yield* handle("pm-1", "pm-2")).toEqual([
          expect.objectContaining({ _tag: "Ack" }),
          expect.objectContaining({ _tag: "Ack" })
        ])
        expect(yield* parkedValues).toBe(2)
        expect(yield* counted).toEqual({ parked: before.parked + 2, dropped: before.dropped })

        // the bucket is at its bound: JetStream refuses the third, the actor acks it all the same
        expect(yield* handle("pm-3")).toEqual([expect.objectContaining({ _tag: "Ack" })])
        expect(yield* Effect.promise(() => parkedReports.get("sim.pm-3"))).toBeNull()
        expect(yield* parkedValues).toBe(2)
        expect(yield* counted).toEqual({ parked: before.parked + 2, dropped: before.dropped + 1 })
        const dropped = lines.filter((line) => line.includes("parked-reports bucket is full"))
        expect(dropped).toHaveLength(1)
        expect(dropped[0]).toContain("pm-3")
        // the report's raw body (a phone number here) is not logged
        expect(lines.join("\n")).not.toContain(PHONE.slice(1))

        // a report for a key parked already replaces it: that takes no room, so it is not dropped
        expect(yield* handle("pm-1")).toEqual([expect.objectContaining({ _tag: "Ack" })])
        expect(yield* counted).toEqual({ parked: before.parked + 3, dropped: before.dropped + 1 })
      })
    )
  })
})

describe("the number parked", () => {
  layer(
    Layer.effectDiscard(ensureStreams).pipe(
      Layer.provideMerge(ReadModels.layerWith(defaultParkedReportLimits)),
      Layer.provideMerge(NatsTest),
      // `/metrics` also reads the projections' lag from the event store
      Layer.provideMerge(MemoryEventStore.layer)
    ),
    { excludeTestServices: true }
  )((it) => {
    it.effect("is a gauge on /metrics, and a report put back leaves nothing behind", () =>
      Effect.gen(function* () {
        expect(sampleValue(yield* metrics, "sms_parked_reports")).toBe(0)
        expect(yield* hasParked).toBe(false)
        yield* park("sim", "sim.pm-a", record("pm-a"))
        yield* park("sim", "sim.pm-b", record("pm-b"))
        yield* park("sim", "sim.pm-c", record("pm-c"))
        expect(sampleValue(yield* metrics, "sms_parked_reports")).toBe(3)

        // put back on sms.dlr.sim when its dispatch shows up: no delete marker stays to be counted
        expect(yield* requeueParked("sim.pm-a")).toBe(true)
        expect(sampleValue(yield* metrics, "sms_parked_reports")).toBe(2)
        // a replayed projection batch finds nothing to put back
        expect(yield* requeueParked("sim.pm-a")).toBe(false)
        yield* requeueParked("sim.pm-b")
        yield* requeueParked("sim.pm-c")
        expect(sampleValue(yield* metrics, "sms_parked_reports")).toBe(0)
        expect(yield* hasParked).toBe(false)
      })
    )
  })
})
