/**
 * What a claim does with its rows, inside the claim's transaction: each row is planned by a pure
 * function (`planRow`), charged to its client's daily quota as the intake would (one compare-and-set
 * per client of the batch), and stored: every command of the batch published to
 * `sms.commands.send` at once, exactly as a NATS producer does (`Nats-Msg-Id` = `commandMsgId`), and
 * every refusal to `sms.rejects`. A row's outcome is committed only once what it produced is stored;
 * the others stay pending and come back with the next claim (with the same message id).
 *
 * Not `SendService.storeCommand`: that one reads the message's stream first, to answer a requester
 * whether it was a duplicate, and nobody here waits for that answer; a read per row would halve the
 * claim's throughput. The intake recognises a row claimed twice by its message id, as it does any
 * command published twice.
 */
import { Effect, Option } from "effect"
import { Clients } from "../clients/Clients.js"
import { QUOTA_EXCEEDED_REASON } from "../clients/Quotas.js"
import { commandMsgId } from "../intake/SendService.js"
import { messageLimits } from "../intake/MessageLimits.js"
import { publishReject } from "../intake/Rejects.js"
import { Nats } from "../nats/Nats.js"
import { Subjects } from "../nats/Topology.js"
import { quotaRejections } from "../observability/Metrics.js"
import type { Mapping } from "./Mapping.js"
import { type OutboxRow, planRow, type RowPlan, rejectionText } from "./RowCommand.js"
import type { RowOutcome } from "./Sql.js"

type Send = Extract<RowPlan, { _tag: "Send" }>
type Reject = Extract<RowPlan, { _tag: "Reject" }>

export interface StoredBatch {
  readonly outcomes: ReadonlyArray<RowOutcome>
  /** rows left pending because NATS did not take what they produced */
  readonly unstored: number
  /** why, for the log (the first failure) */
  readonly firstFailure: string | undefined
}

/** The source of the outbox's refusals on `sms.rejects`. */
export const rejectSource = (table: string) => `outbox:${table}`

const describe = (cause: unknown) => (cause instanceof Error ? cause.message : String(cause))

/**
 * Charges each send to its client's quota (none without a registry): answers the sends admitted, the
 * sends over quota, and the sends whose charge could not be made (they stay pending).
 */
const chargeQuotas = (sends: ReadonlyArray<Send>) =>
  Effect.gen(function* () {
    const registry = yield* Effect.serviceOption(Clients)
    if (Option.isNone(registry))
      return { admitted: sends, exhausted: [] as Array<Send>, unknown: [] as Array<Send> }
    const byClient = new Map<string, Array<Send>>()
    for (const send of sends) {
      const list = byClient.get(send.command.clientId)
      if (list === undefined) byClient.set(send.command.clientId, [send])
      else list.push(send)
    }
    const admitted: Array<Send> = []
    const exhausted: Array<Send> = []
    const unknown: Array<Send> = []
    yield* Effect.forEach(
      [...byClient],
      ([clientId, list]) =>
        registry.value
          .chargeMany(
            clientId,
            list.map((send) => send.messageId)
          )
          .pipe(
            Effect.match({
              onFailure: () => {
                unknown.push(...list)
              },
              onSuccess: (charges) =>
                list.forEach((send, i) => {
                  if (charges[i]?._tag === "Exhausted") exhausted.push(send)
                  else admitted.push(send)
                })
            })
          ),
      { concurrency: "unbounded", discard: true }
    )
    return { admitted, exhausted, unknown }
  })

/**
 * A claim's rows, planned and charged: `outcomes` is what each row will be marked with once what it
 * produced is stored (rows whose quota charge could not be made have none: they stay pending), and
 * `store` stores it all, answering the batch with the outcomes of the rows it did store. The claim
 * marks the stored rows in its transaction (`OutboxDatabase.claim`: beside `store` on MySQL, after it
 * on PostgreSQL); a row's mark only commits with its store.
 */
export interface PlannedBatch {
  readonly outcomes: ReadonlyArray<RowOutcome>
  readonly store: Effect.Effect<StoredBatch, never, Nats>
}

export const planRows = (mapping: Mapping, rows: ReadonlyArray<OutboxRow>) =>
  Effect.gen(function* () {
    const plans = rows.map((row) => planRow(row, mapping, messageLimits))
    const sends = plans.filter((plan): plan is Send => plan._tag === "Send")
    const rejects = plans.filter((plan): plan is Reject => plan._tag === "Reject")

    const { admitted, exhausted, unknown } = yield* chargeQuotas(sends)
    for (const send of exhausted) {
      yield* quotaRejections(send.command.clientId, "outbox")
      rejects.push({
        _tag: "Reject",
        key: send.key,
        column: mapping.columns.clientId ?? "defaultClientId",
        reason: QUOTA_EXCEEDED_REASON,
        payload: send.payload
      })
    }
    const queued = (send: Send): RowOutcome => ({ _tag: "Queued", key: send.key, messageId: send.messageId })
    const rejected = (reject: Reject): RowOutcome => ({
      _tag: "Rejected",
      key: reject.key,
      error: rejectionText(reject.column, reject.reason)
    })

    const store = Effect.gen(function* () {
      const { publish } = yield* Nats
      // the whole batch in flight at once; each row settles by its own publish
      const published = yield* Effect.promise(() =>
        Promise.allSettled(
          admitted.map((send) => publish(Subjects.send, send.payload, { msgID: commandMsgId(send.command) }))
        )
      )
      const refused = yield* Effect.forEach(
        rejects,
        (reject) =>
          Effect.either(
            publishReject({
              source: rejectSource(mapping.table),
              field: reject.column,
              reason: reject.reason,
              payload: reject.payload,
              ref: `${mapping.table}:${reject.key}`
            })
          ),
        { concurrency: "unbounded" }
      )

      const outcomes: Array<RowOutcome> = []
      let firstFailure: string | undefined = unknown.length > 0 ? "cannot charge daily quotas" : undefined
      admitted.forEach((send, i) => {
        const result = published[i]
        if (result?.status === "fulfilled") outcomes.push(queued(send))
        else firstFailure ??= `cannot store a command: ${describe(result?.reason)}`
      })
      rejects.forEach((reject, i) => {
        const result = refused[i]
        if (result?._tag === "Right") outcomes.push(rejected(reject))
        else firstFailure ??= `cannot store a refusal on ${Subjects.rejects}: ${describe(result?.left)}`
      })
      for (const reject of rejects) {
        yield* Effect.logWarning("outbox row rejected").pipe(
          Effect.annotateLogs({
            table: mapping.table,
            row: reject.key,
            field: reject.column,
            reason: reject.reason
          })
        )
      }
      return { outcomes, unstored: rows.length - outcomes.length, firstFailure } satisfies StoredBatch
    })
    return { outcomes: [...admitted.map(queued), ...rejects.map(rejected)], store } satisfies PlannedBatch
  })
