import { describe, expect, it } from "@effect/vitest"
import * as Breaker from "../../src/dispatch/CircuitBreaker.js"

const policy = { failureThreshold: 3, openForMs: 1000 }

describe("CircuitBreaker", () => {
  it("opens after the threshold of consecutive transient failures, not before", () => {
    let state = Breaker.closed
    state = Breaker.onTransientFailure(state, 0, policy)
    state = Breaker.onTransientFailure(state, 0, policy)
    expect(Breaker.isAvailable(state, 0)).toBe(true)
    state = Breaker.onTransientFailure(state, 10, policy)
    expect(state).toEqual({ _tag: "Open", until: 1010 })
    expect(Breaker.isAvailable(state, 1009)).toBe(false)
  })

  it("a success in between resets the count", () => {
    let state = Breaker.onTransientFailure(Breaker.onTransientFailure(Breaker.closed, 0, policy), 0, policy)
    state = Breaker.onSuccess(state)
    state = Breaker.onTransientFailure(state, 0, policy)
    expect(state).toEqual({ _tag: "Closed", failures: 1 })
  })

  it("after openFor lets exactly one probe through; its success closes, its failure reopens", () => {
    const open: Breaker.BreakerState = { _tag: "Open", until: 1000 }
    const probe = Breaker.tryCall(open, 1000)
    expect(probe.allowed).toBe(true)
    expect(Breaker.tryCall(probe.next, 1001).allowed).toBe(false)
    expect(Breaker.onSuccess(probe.next)).toEqual(Breaker.closed)
    expect(Breaker.onTransientFailure(probe.next, 1500, policy)).toEqual({ _tag: "Open", until: 2500 })
  })
})
