/**
 * A per-provider circuit breaker, as a pure state machine. Closed counts consecutive transient
 * failures; at the threshold it opens for `openForMs`; then one probe is let through (half-open):
 * its success closes the circuit, its failure opens it again.
 *
 * The state lives in each gateway process: every process learns a provider's health from its own
 * calls, which is what decides where its own calls go.
 */
import type { BreakerPolicy } from "../providers/ProviderConfig.js"

export type BreakerState =
  | { readonly _tag: "Closed"; readonly failures: number }
  | { readonly _tag: "Open"; readonly until: number }
  | { readonly _tag: "HalfOpen"; readonly probing: boolean }

export const closed: BreakerState = { _tag: "Closed", failures: 0 }

/** Whether a call may go out now, and the state once it has been let through. */
export const tryCall = (
  state: BreakerState,
  now: number
): { readonly allowed: boolean; readonly next: BreakerState } => {
  switch (state._tag) {
    case "Closed":
      return { allowed: true, next: state }
    case "Open":
      return now >= state.until
        ? { allowed: true, next: { _tag: "HalfOpen", probing: true } }
        : { allowed: false, next: state }
    case "HalfOpen":
      return state.probing
        ? { allowed: false, next: state }
        : { allowed: true, next: { _tag: "HalfOpen", probing: true } }
  }
}

/** Read-only: would a call be let through now? (for routing decisions) */
export const isAvailable = (state: BreakerState, now: number): boolean => tryCall(state, now).allowed

export const onSuccess = (_state: BreakerState): BreakerState => closed

export const onTransientFailure = (state: BreakerState, now: number, policy: BreakerPolicy): BreakerState => {
  switch (state._tag) {
    case "Closed":
      return state.failures + 1 >= policy.failureThreshold
        ? { _tag: "Open", until: now + policy.openForMs }
        : { _tag: "Closed", failures: state.failures + 1 }
    case "HalfOpen":
    case "Open":
      return { _tag: "Open", until: now + policy.openForMs }
  }
}

/** When an open circuit lets the next probe through (now, when it would already). */
export const reopensAt = (state: BreakerState, now: number): number =>
  state._tag === "Open" ? state.until : now
