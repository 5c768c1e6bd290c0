/**
 * The outbox role's state as `/ready` shows it. Process-wide, like the metric registry: the HTTP role
 * that answers `/ready` is a sibling layer of the outbox role and cannot see its services, so the
 * role reports here and readiness reads here. Nothing is reported (and `/ready` shows no outbox check)
 * in a process that does not run the role. One entry per table read (a process normally reads one).
 */

export interface OutboxHealthState {
  /** the table and the masked database URL */
  readonly target: string
  readonly up: boolean
  /** since when `up` has had its value (ms since the epoch) */
  readonly since: number
  /** the last failure, when down (never a password: database errors do not carry it, URLs are masked) */
  readonly lastError?: string
  /** rows pending at the last count */
  readonly pending?: number
  /** the last claim that reached the database (ms since the epoch) */
  readonly lastClaimAt?: number
}

const states = new Map<string, OutboxHealthState>()

const update = (table: string, change: (state: OutboxHealthState) => OutboxHealthState) => {
  const state = states.get(table)
  if (state !== undefined) states.set(table, change(state))
}

export const OutboxHealth = {
  /** the states now, one per table; empty when this process runs no outbox role */
  snapshot: (): ReadonlyArray<OutboxHealthState> => [...states.values()],
  /** one table's state */
  of: (table: string): OutboxHealthState | undefined => states.get(table),
  started: (table: string, target: string, now: number) => {
    states.set(table, { target, up: false, since: now, lastError: "not connected yet" })
  },
  claimed: (table: string, now: number) =>
    update(table, (state) =>
      state.up
        ? { ...state, lastClaimAt: now }
        : {
            target: state.target,
            up: true,
            since: now,
            lastClaimAt: now,
            ...(state.pending === undefined ? {} : { pending: state.pending })
          }
    ),
  failed: (table: string, error: string, now: number) =>
    update(table, (state) => ({
      ...state,
      up: false,
      since: state.up ? now : state.since,
      lastError: error
    })),
  counted: (table: string, pending: number) => update(table, (state) => ({ ...state, pending })),
  stopped: (table: string) => {
    states.delete(table)
  }
}

const describeOne = (
  state: OutboxHealthState,
  now: number
): { readonly ok: boolean; readonly detail: string } => {
  const pending = state.pending === undefined ? "" : `, ${state.pending} pending`
  if (state.up) {
    const last =
      state.lastClaimAt === undefined ? "" : `, last claim ${Math.max(0, now - state.lastClaimAt)} ms ago`
    return { ok: true, detail: `${state.target}${pending}${last}` }
  }
  const seconds = Math.round((now - state.since) / 1000)
  return {
    ok: false,
    detail: `${state.target} unreachable for ${seconds} s (retrying): ${state.lastError ?? "unknown error"}${pending}`
  }
}

/** The readiness check's words for the states: ok while every outbox database answers. */
export const describe = (
  states: ReadonlyArray<OutboxHealthState>,
  now: number
): { readonly ok: boolean; readonly detail: string } => {
  const each = states.map((state) => describeOne(state, now))
  return { ok: each.every((check) => check.ok), detail: each.map((check) => check.detail).join("; ") }
}
