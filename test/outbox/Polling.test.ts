/** When the outbox polls: early by the recent claims' time, so a row is requested within the interval. */
import { describe, expect, it } from "@effect/vitest"
import { nextPollIn, pollLead, RECENT_CLAIMS, remember } from "../../src/outbox/Polling.js"

describe("outbox polling", () => {
  it("starts each poll early by twice the slowest recent claim", () => {
    expect(pollLead([], 500)).toBe(0)
    expect(pollLead([3, 12, 7], 500)).toBe(24)
    // 500 ms apart from start to start, less the lead, less what has passed since the last start
    expect(nextPollIn(500, 24, 100)).toBe(376)
  })

  it("never leads by more than a quarter of the interval, and never waits a negative time", () => {
    expect(pollLead([4_000], 500)).toBe(125)
    expect(nextPollIn(500, 125, 450)).toBe(0)
  })

  it("remembers the last claims only: a slow claim stops counting once enough quick ones followed", () => {
    let recent = remember([], 90)
    for (let i = 0; i < RECENT_CLAIMS - 1; i++) recent = remember(recent, 5)
    expect(pollLead(recent, 500)).toBe(125)
    recent = remember(recent, 5)
    expect(recent).toHaveLength(RECENT_CLAIMS)
    expect(pollLead(recent, 500)).toBe(10)
  })
})
