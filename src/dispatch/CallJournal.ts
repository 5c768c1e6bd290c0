/**
 * The call journal: before a batch's provider calls start, one record on `sms.calls.<provider>`
 * (stream `SMS_CALLS`, kept 30 days) names every message and attempt number about to be called, and
 * no call starts until JetStream has acked it.
 *
 * Why: the message stream records a call's outcome after the call, and the attempt number a
 * redelivered work item calls with comes from the stream, JetStream's delivery count and the
 * process's `CallLedger`. A gateway killed during a call while its consumer's leader moves to
 * another server (the delivery count starts again at 1, the ledger died with the process) calls
 * again under the same attempt number, and the history alone could not account for the second
 * submission. The journal does: every submission a provider received has a record made before it.
 * It costs one publish per batch, not per message. A record means "called, or about to be": a call
 * held back by a rate limit and then moved to another provider is journaled and never made.
 */
import { DeliverPolicy } from "@nats-io/jetstream"
import { Effect } from "effect"
import { Nats, NatsError } from "../nats/Nats.js"
import { Streams, Subjects } from "../nats/Topology.js"

export interface JournaledCall {
  readonly messageId: string
  readonly attempt: number
}

export interface CallRecord {
  readonly provider: string
  /** the batch's time, when it was planned */
  readonly at: Date
  readonly calls: ReadonlyArray<JournaledCall>
  /** JetStream's time of storing it (read back only): every call it names started after this */
  readonly storedAt?: Date
}

/** `{"at":…,"calls":[[messageId, attempt], …]}`: compact, one record per batch (the provider is in the subject). */
export const encodeCallRecord = (at: Date, calls: ReadonlyArray<JournaledCall>): string =>
  JSON.stringify({ at: at.toISOString(), calls: calls.map((call) => [call.messageId, call.attempt]) })

export const decodeCallRecord = (provider: string, text: string): CallRecord | undefined => {
  try {
    const parsed: unknown = JSON.parse(text)
    if (typeof parsed !== "object" || parsed === null) return undefined
    const { at, calls } = parsed as { at?: unknown; calls?: unknown }
    if (typeof at !== "string" || !Array.isArray(calls)) return undefined
    const decoded: Array<JournaledCall> = []
    for (const call of calls) {
      if (!Array.isArray(call) || typeof call[0] !== "string" || !Number.isInteger(call[1])) return undefined
      decoded.push({ messageId: call[0], attempt: call[1] })
    }
    const date = new Date(at)
    return Number.isNaN(date.getTime()) ? undefined : { provider, at: date, calls: decoded }
  } catch {
    return undefined
  }
}

/** Journals the calls, acked by JetStream; a failure means none of them may be made. */
export const journalCalls = (provider: string, at: Date, calls: ReadonlyArray<JournaledCall>) =>
  Effect.flatMap(Nats, ({ publish }) =>
    Effect.tryPromise({
      try: () => publish(Subjects.calls(provider), encodeCallRecord(at, calls)),
      catch: (cause) =>
        new NatsError({ reason: "RequestFailed", message: "cannot journal provider calls", cause })
    })
  )

/** Every record still kept, oldest first (an auditor's read: the whole stream through one ordered consumer). */
export const readCallJournal = Effect.flatMap(Nats, ({ js }) =>
  Effect.tryPromise({
    try: async () => {
      const consumer = await js.consumers.get(Streams.calls, { deliver_policy: DeliverPolicy.All })
      const records: Array<CallRecord> = []
      for (;;) {
        let read = 0
        let pending = 0
        for await (const msg of await consumer.fetch({ max_messages: 1000, expires: 1000 })) {
          read++
          pending = msg.info.pending
          const record = decodeCallRecord(msg.subject.slice(Subjects.calls("").length), msg.string())
          if (record !== undefined)
            records.push({ ...record, storedAt: new Date(msg.info.timestampNanos / 1e6) })
        }
        if (read === 0 || pending === 0) return records
      }
    },
    catch: (cause) =>
      new NatsError({ reason: "RequestFailed", message: "cannot read the call journal", cause })
  })
)

/** How many calls the journal records for each message. */
export const journaledCallsByMessage = (records: ReadonlyArray<CallRecord>): Map<string, number> => {
  const counts = new Map<string, number>()
  for (const record of records)
    for (const call of record.calls) counts.set(call.messageId, (counts.get(call.messageId) ?? 0) + 1)
  return counts
}
