/**
 * Stored delivery reports (`sms.dlr.<provider>`), a contract between gateway versions: what the
 * webhook writes reads back, and whatever is not a stored report reads as undefined.
 */
import { describe, expect, it } from "@effect/vitest"
import {
  decodeStoredDeliveryReport,
  encodeStoredDeliveryReport,
  type StoredDeliveryReport
} from "../../src/deliveryReports/DeliveryReports.js"

const full: StoredDeliveryReport = {
  provider: "twilio",
  receivedAt: new Date("2025-03-01T10:00:30.123Z"),
  report: {
    providerMessageId: "SM-1",
    reference: "8a0c2a2e-7f0a-5b1e-9c1d-1a2b3c4d5e6f",
    outcome: "failed",
    failureReason: "undeliverable",
    code: "30003",
    rawStatus: "undelivered"
  },
  raw: "MessageSid=SM-1&MessageStatus=undelivered&ErrorCode=30003"
}

const minimal: StoredDeliveryReport = {
  provider: "vonage",
  receivedAt: new Date("2025-03-01T10:00:31.000Z"),
  report: { providerMessageId: "v-1", outcome: "pending", rawStatus: "accepted" },
  raw: "{}"
}

/** the stored JSON of `full` with some fields replaced (undefined removes one) */
const withRecord = (changes: Record<string, unknown>): string => {
  const json = JSON.parse(encodeStoredDeliveryReport(full)) as Record<string, unknown>
  for (const [key, value] of Object.entries(changes)) {
    if (value === undefined) delete json[key]
    else json[key] = value
  }
  return JSON.stringify(json)
}
const withReport = (changes: Record<string, unknown>): string => {
  const report: Record<string, unknown> = { ...full.report }
  for (const [key, value] of Object.entries(changes)) {
    if (value === undefined) delete report[key]
    else report[key] = value
  }
  return withRecord({ report })
}

describe("stored delivery reports", () => {
  describe("round trip", () => {
    it("a failed report with every optional field reads back as written", () => {
      const decoded = decodeStoredDeliveryReport(encodeStoredDeliveryReport(full))
      expect(decoded).toEqual(full)
      expect(decoded?.receivedAt).toBeInstanceOf(Date)
      expect(decoded?.receivedAt.getTime()).toBe(full.receivedAt.getTime())
    })

    it("a report without optional fields reads back without them", () => {
      const decoded = decodeStoredDeliveryReport(encodeStoredDeliveryReport(minimal))
      expect(decoded).toEqual(minimal)
      expect(Object.keys(decoded?.report ?? {}).sort()).toEqual(["outcome", "providerMessageId", "rawStatus"])
    })

    it("every outcome and every failure reason reads back", () => {
      for (const outcome of ["delivered", "failed", "pending"] as const) {
        const record = { ...minimal, report: { ...minimal.report, outcome } }
        expect(decodeStoredDeliveryReport(encodeStoredDeliveryReport(record))?.report.outcome).toBe(outcome)
      }
      for (const failureReason of ["invalid_number", "rejected", "undeliverable", "expired"] as const) {
        const record = { ...full, report: { ...full.report, failureReason } }
        expect(decodeStoredDeliveryReport(encodeStoredDeliveryReport(record))?.report.failureReason).toBe(
          failureReason
        )
      }
    })

    it("the wire format: receivedAt as an ISO string, the report as is, the raw body kept", () => {
      expect(JSON.parse(encodeStoredDeliveryReport(full))).toEqual({
        provider: "twilio",
        receivedAt: "2025-03-01T10:00:30.123Z",
        report: full.report,
        raw: full.raw
      })
    })

    it("fields the format does not know are dropped, not carried", () => {
      const decoded = decodeStoredDeliveryReport(withReport({ internal: "x" }))
      expect(decoded).toEqual(full)
      expect(decoded !== undefined && "internal" in decoded.report).toBe(false)
    })
  })

  describe("anything else reads as undefined", () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      ["not JSON", "{provider:"],
      ["empty", ""],
      ["null", "null"],
      ["a number", "7"],
      ["a JSON string", JSON.stringify(encodeStoredDeliveryReport(full))],
      ["an array", "[]"],
      ["no provider", withRecord({ provider: undefined })],
      ["a numeric provider", withRecord({ provider: 1 })],
      ["no raw body", withRecord({ raw: undefined })],
      ["a raw body that is not a string", withRecord({ raw: { body: "x" } })],
      ["no receivedAt", withRecord({ receivedAt: undefined })],
      ["receivedAt as epoch millis", withRecord({ receivedAt: 1_740_823_230_123 })],
      ["receivedAt not a date", withRecord({ receivedAt: "yesterday" })],
      ["receivedAt out of range", withRecord({ receivedAt: "2025-13-45T99:00:00Z" })],
      ["no report", withRecord({ report: undefined })],
      ["a null report", withRecord({ report: null })],
      ["a report that is a string", withRecord({ report: "delivered" })],
      ["no providerMessageId", withReport({ providerMessageId: undefined })],
      ["a numeric providerMessageId", withReport({ providerMessageId: 42 })],
      ["no rawStatus", withReport({ rawStatus: undefined })],
      ["a numeric rawStatus", withReport({ rawStatus: 3 })],
      ["no outcome", withReport({ outcome: undefined })],
      ["an unknown outcome", withReport({ outcome: "bounced" })],
      ["an outcome in capitals", withReport({ outcome: "DELIVERED" })],
      ["an unknown failure reason", withReport({ failureReason: "spam" })],
      ["a retry reason as failure reason", withReport({ failureReason: "timeout" })],
      ["a numeric failure reason", withReport({ failureReason: 30003 })],
      ["a null failure reason", withReport({ failureReason: null })],
      ["a numeric reference", withReport({ reference: 12 })],
      ["a numeric code", withReport({ code: 30003 })]
    ]
    for (const [name, text] of cases) {
      it(`${name}`, () => {
        expect(decodeStoredDeliveryReport(text)).toBeUndefined()
      })
    }
  })
})
