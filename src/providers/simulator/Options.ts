/** The simulator's settings: what `Simulator.start` takes (re-exported there). */
import type * as Vonage from "../Vonage.js"

export interface Range {
  readonly min: number
  readonly max: number
}

/**
 * Uniform between min and max; with `p99` (> max), 98% are uniform between min and max and the
 * slowest 2% follow an exponential tail beyond max whose median is p99, so 1% take longer than p99.
 */
export interface LatencyRange extends Range {
  readonly p99?: number
}

export type SimulatorFormat = "generic-http" | "twilio" | "vonage"

/** The DLR statuses the simulator reports; "invalid" carries code "invalid_number". */
export type DlrStatus = "delivered" | "failed" | "undelivered" | "rejected" | "expired" | "invalid"

export interface DlrOptions {
  /** default true */
  readonly enabled?: boolean
  /** delay after the answer, drawn uniformly; default 0..0 */
  readonly delayMs?: Range
  /** relative weights of the final statuses; default `{ delivered: 1 }` */
  readonly outcomes?: Partial<Record<DlrStatus, number>>
  /** shorthand when `outcomes` is absent: this share "undelivered", the rest "delivered" */
  readonly failRate?: number
  /** share of reports sent twice (the copy with its own delay) */
  readonly duplicateRate?: number
  /** posts of a refused report after the first (waits double from 50 ms, at most 5 s); default 5 */
  readonly retries?: number
  /**
   * share of accepted submissions whose report is sent before the submit answer: the answer waits
   * until the receiver has answered the report's first post (and for the drawn latency)
   */
  readonly earlyRate?: number
  /** share of accepted submissions whose report is never sent, as real providers lose some */
  readonly loseRate?: number
}

export interface SimulatorOptions {
  /** the wire format this instance speaks; default generic-http */
  readonly format?: SimulatorFormat
  /** 0 (default) picks a free port */
  readonly port?: number
  /** default 127.0.0.1 */
  readonly host?: string
  /** the client's secret: generic-http bearer key, twilio auth token, vonage api_secret */
  readonly apiKey: string
  /** signs DLRs: generic-http webhook secret, vonage signature secret (twilio signs with apiKey) */
  readonly webhookSecret: string
  /** twilio account sid / vonage api_key the client must present; default: any */
  readonly account?: string
  /** vonage DLR signature method; default sha256 */
  readonly signatureMethod?: Vonage.SignatureMethod
  /** answer delay; default 0..0 */
  readonly latencyMs?: LatencyRange
  /** share of submissions answered 503 */
  readonly errorRate?: number
  /**
   * share of submissions throttled: generic-http and twilio 429 (generic-http with
   * `Retry-After: 1`), vonage status "1" (Throttled) in a 200 answer
   */
  readonly throttleRate?: number
  /** share of submissions never answered: the request hangs until the client gives up */
  readonly timeoutRate?: number
  /** share of submissions whose connection is destroyed instead of answered (after the latency) */
  readonly resetRate?: number
  /** numbers (E.164) starting with one of these are refused as invalid numbers */
  readonly invalidPrefixes?: ReadonlyArray<string>
  readonly dlr?: DlrOptions
  /** where DLRs go; default: each submission's callback URL (twilio keeps its `ref` query) */
  readonly dlrUrl?: string
  /** seeds the RNG (ignored when `random` is given); default: a random seed */
  readonly seed?: number
  /** the RNG, uniform in [0, 1) */
  readonly random?: () => number
  /** the log keeps the newest entries up to this count; default 1,000,000 */
  readonly maxLogEntries?: number
}
