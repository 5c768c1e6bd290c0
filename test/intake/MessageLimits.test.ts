import { describe, expect, it } from "@effect/vitest"
import { segmentLimitFrom } from "../../src/intake/MessageLimits.js"
import { MAX_SEGMENTS_CEILING, maxBodyLength, SEND_SMS_BOUNDS } from "../../src/domain/SendSms.js"

describe("MAX_SEGMENTS (issue 14, item 9: one body limit)", () => {
  it("defaults to 10; a value that is not a positive integer falls back to it", () => {
    expect(segmentLimitFrom(undefined)).toBe(10)
    for (const raw of ["", "abc", "0", "-3", "2.5"]) expect(segmentLimitFrom(raw)).toBe(10)
  })

  it("is taken as configured, past the old 1,600 characters", () => {
    expect(segmentLimitFrom("20")).toBe(20)
    expect(maxBodyLength(segmentLimitFrom("20"))).toBe(3060)
  })

  it("stops at 30, the ceiling the Schema's body bound is made of", () => {
    expect(segmentLimitFrom("300")).toBe(MAX_SEGMENTS_CEILING)
    expect(MAX_SEGMENTS_CEILING).toBe(30)
    expect(SEND_SMS_BOUNDS.body).toBe(30 * 153)
  })
})
