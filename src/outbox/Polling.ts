/**
 * When the next poll starts. `OUTBOX_POLL_MS` is the longest a row inserted without a wake-up
 * (no NOTIFY: MySQL, MariaDB, PostgreSQL without the trigger) waits to be requested. A row inserted
 * just after a poll's select is found by the next poll, and is requested once that poll's claim has
 * stored its command and the intake has appended it; so polls are one interval apart from start to
 * start minus that time (the lead), not an interval after the previous claim ended.
 */

/** How many recent claims the lead is taken from. */
export const RECENT_CLAIMS = 16

/**
 * The lead: twice the slowest recent claim (its store, then the intake's append of a batch of about
 * the same size), at most a quarter of the interval (a database that slows down stretches claims,
 * and polling must not turn into a busy loop).
 */
export const pollLead = (recentClaimMs: ReadonlyArray<number>, pollMs: number): number =>
  Math.min(pollMs / 4, 2 * recentClaimMs.reduce((slowest, ms) => Math.max(slowest, ms), 0))

/** Milliseconds until the next poll, `sinceStart` after the last one started. */
export const nextPollIn = (pollMs: number, lead: number, sinceStart: number): number =>
  Math.max(0, pollMs - lead - sinceStart)

/** The last `RECENT_CLAIMS` claims' durations, oldest first. */
export const remember = (recent: ReadonlyArray<number>, ms: number): ReadonlyArray<number> =>
  recent.length < RECENT_CLAIMS ? [...recent, ms] : [...recent.slice(1), ms]
