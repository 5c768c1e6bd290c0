/**
 * JetStream publishes and their acks, as `JetStreamClient.publish` gives them, at a fraction of its
 * cost: every SMS makes about ten of them (events, work items, reports, notifications).
 *
 * `js.publish` is a request per message: a request object with its own timer, a retry loop with a
 * backoff object, copied options, two async frames, and a new `TextDecoder` to read each ack. Here a
 * publish is a core publish whose reply subject is one of this process's inbox (one subscription for
 * all of them); the ack is matched by its token, and one sweep every 250 ms times out what is overdue.
 * The answers are the client's own: the ack (`stream`, `seq`, `duplicate`), `JetStreamApiError` for
 * the server's refusals (a wrong last sequence, a missing stream), `NoRespondersError` when no stream
 * takes the subject, `TimeoutError`, and `ClosedConnectionError` for what was pending at a close.
 */
import type { PubAck } from "@nats-io/jetstream"
import { JetStreamApiCodes, JetStreamApiError, JetStreamError } from "@nats-io/jetstream"
import {
  ClosedConnectionError,
  createInbox,
  headers,
  type Msg,
  MsgHdrsImpl,
  type NatsConnection,
  NoRespondersError,
  TimeoutError
} from "@nats-io/nats-core"

/** What this gateway's publishes ask of JetStream (a subset of `JetStreamPublishOptions`). */
export interface PublishOptions {
  /** the `Nats-Msg-Id`: a second publish with it within the stream's duplicate window is dropped */
  readonly msgID?: string
  readonly expect?: {
    /** stored only if the subject's last message has this sequence (0: the subject is empty) */
    readonly lastSubjectSequence?: number
  }
  /** the W3C trace context of the step that publishes (only while traces are recorded) */
  readonly traceparent?: string | undefined
}

export type JetStreamPublish = (
  subject: string,
  payload: string | Uint8Array,
  options?: PublishOptions
) => Promise<PubAck>

interface Pending {
  readonly subject: string
  readonly deadline: number
  readonly resolve: (ack: PubAck) => void
  readonly reject: (error: unknown) => void
}

/** The refusal of a publish whose expected last sequence moved: another writer got there first. */
export const isWrongLastSequence = (error: unknown): boolean =>
  error instanceof JetStreamApiError &&
  (error.code === JetStreamApiCodes.StreamWrongLastSequence ||
    error.code === JetStreamApiCodes.StreamWrongLastSequenceUnknown)

const SWEEP_MS = 250
const decoder = new TextDecoder()
const encoder = new TextEncoder()

/**
 * The headers of one publish, kept in their wire form: the client's `headers()` checks and stores
 * each key in a map and renders the text again at publish, a tenth of everything a busy gateway
 * allocated (measured with V8's sampling heap profiler). For the headers written below only: fixed
 * names, and values checked for line breaks. The client asks a publish's headers for nothing but
 * `encode()`.
 */
class WireHeaders extends MsgHdrsImpl {
  constructor(private readonly wire: string) {
    super()
  }
  override toString(): string {
    return this.wire
  }
  override encode(): Uint8Array {
    return encoder.encode(this.wire)
  }
}

const lineBreak = /[\r\n]/

/**
 * `NATS/1.0` and a line per header, as the client writes them (values trimmed). A value with a line
 * break is refused as the client's `headers()` refuses it (`InvalidArgumentError`), never written.
 */
const wireHeaders = (
  msgID: string | undefined,
  lastSubjectSequence: number | undefined,
  traceparent: string | undefined
): MsgHdrsImpl | undefined => {
  if (msgID === undefined && lastSubjectSequence === undefined && traceparent === undefined) return undefined
  if (
    (msgID !== undefined && lineBreak.test(msgID)) ||
    (traceparent !== undefined && lineBreak.test(traceparent))
  ) {
    const refused = headers()
    if (msgID !== undefined) refused.set("Nats-Msg-Id", msgID)
    if (traceparent !== undefined) refused.set("traceparent", traceparent)
    return refused as MsgHdrsImpl
  }
  let wire = "NATS/1.0"
  if (msgID !== undefined) wire += `\r\nNats-Msg-Id: ${msgID.trim()}`
  if (lastSubjectSequence !== undefined)
    wire += `\r\nNats-Expected-Last-Subject-Sequence: ${lastSubjectSequence}`
  if (traceparent !== undefined) wire += `\r\ntraceparent: ${traceparent.trim()}`
  return new WireHeaders(`${wire}\r\n\r\n`)
}

/** The ack or refusal in a reply, as `JetStreamClient.publish` reads it. */
const readAck = (subject: string, msg: Msg): PubAck | Error => {
  if (msg.headers?.code === 503) return new NoRespondersError(subject)
  let answer: unknown
  try {
    answer = JSON.parse(decoder.decode(msg.data))
  } catch (cause) {
    return new JetStreamError("invalid ack response", { cause })
  }
  if (typeof answer !== "object" || answer === null) return new JetStreamError("invalid ack response")
  const { error, stream, seq, duplicate, domain } = answer as Record<string, unknown>
  if (typeof error === "object" && error !== null) {
    return new JetStreamApiError(error as ConstructorParameters<typeof JetStreamApiError>[0])
  }
  if (typeof stream !== "string" || stream === "" || typeof seq !== "number") {
    return new JetStreamError("invalid ack response")
  }
  return {
    stream,
    seq,
    duplicate: duplicate === true,
    ...(typeof domain === "string" ? { domain } : {})
  } as PubAck
}

/** Publishes through `nc`; acks not answered within `timeoutMs` fail with `TimeoutError`. */
export const makeJetStreamPublish = (nc: NatsConnection, timeoutMs: number): JetStreamPublish => {
  const prefix = `${createInbox()}.`
  const pending = new Map<string, Pending>()
  let next = 0

  const failAll = (error: () => Error) => {
    for (const entry of pending.values()) entry.reject(error())
    pending.clear()
  }
  const subscription = nc.subscribe(`${prefix}*`, {
    callback: (error, msg) => {
      if (error !== null) return
      const token = msg.subject.slice(prefix.length)
      const entry = pending.get(token)
      if (entry === undefined) return // timed out already
      pending.delete(token)
      const ack = readAck(entry.subject, msg)
      if (ack instanceof Error) entry.reject(ack)
      else entry.resolve(ack)
    }
  })
  // entries are in the order they were made, and all wait as long: the overdue ones come first
  const sweep = setInterval(() => {
    const now = Date.now()
    for (const [token, entry] of pending) {
      if (entry.deadline > now) break
      pending.delete(token)
      entry.reject(new TimeoutError())
    }
  }, SWEEP_MS)
  sweep.unref()
  subscription.closed.then(
    () => {
      clearInterval(sweep)
      failAll(() => new ClosedConnectionError())
    },
    () => clearInterval(sweep)
  )

  return (subject, payload, options) =>
    new Promise<PubAck>((resolve, reject) => {
      const token = (next++).toString(36)
      try {
        const hdrs = wireHeaders(options?.msgID, options?.expect?.lastSubjectSequence, options?.traceparent)
        nc.publish(subject, payload, {
          reply: `${prefix}${token}`,
          ...(hdrs === undefined ? {} : { headers: hdrs })
        })
      } catch (error) {
        reject(error)
        return
      }
      pending.set(token, { subject, deadline: Date.now() + timeoutMs, resolve, reject })
    })
}
