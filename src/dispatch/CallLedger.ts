/**
 * What this process knows of its own provider calls that the message streams may not show: a call in
 * flight, and a call made whose outcome could not be recorded.
 *
 * The attempt number of a call is otherwise taken from the stream (attempts recorded) and from
 * JetStream's delivery count (a redelivery after a lost outcome). Both can fall short: a consumer
 * whose leader moved in a cluster may deliver a work item again, with a count of 1, while its first
 * delivery is still being called, or after that call's outcome failed to append. The provider was
 * then called twice under one attempt number, and the history could not account for the second
 * call. With this ledger the process does not call twice at once for one message (the second
 * delivery waits and finds the first one's outcome), and a call after an unrecorded one takes the
 * next attempt number, leaving the gap that says a call's outcome was lost.
 *
 * Per process, so it does not cover two processes taking the same work item at once; bounded, the
 * oldest unrecorded entries are forgotten first (each is one message whose outcome append failed).
 */
export interface CallLedger {
  /** Registers a call about to be made; false when one for this message is in flight here already. */
  readonly begin: (messageId: string) => boolean
  /** The highest attempt called here whose outcome was not recorded, 0 if none. */
  readonly unrecordedAttempt: (messageId: string) => number
  /** Ends a registration: `called` an attempt that was (or may have been) made, `recorded` its outcome. */
  readonly end: (messageId: string, outcome: { readonly called?: number; readonly recorded: boolean }) => void
}

export const makeCallLedger = (limit = 100_000): CallLedger => {
  const inFlight = new Set<string>()
  const unrecorded = new Map<string, number>()
  return {
    begin: (messageId) => {
      if (inFlight.has(messageId)) return false
      inFlight.add(messageId)
      return true
    },
    unrecordedAttempt: (messageId) => unrecorded.get(messageId) ?? 0,
    end: (messageId, { called, recorded }) => {
      inFlight.delete(messageId)
      if (recorded) {
        unrecorded.delete(messageId)
        return
      }
      if (called === undefined) return
      unrecorded.set(messageId, Math.max(called, unrecorded.get(messageId) ?? 0))
      if (unrecorded.size > limit) unrecorded.delete(unrecorded.keys().next().value ?? "")
    }
  }
}
