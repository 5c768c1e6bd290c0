/**
 * Per-client daily quotas, exact across gateway processes.
 *
 * Both are documents (`platform/Documents.ts`): KV buckets in a gateway, memory in a unit test.
 *
 * KV `sms_quotas` holds one counter per client and UTC day, key `<clientId>.<yyyy-mm-dd>`, value
 * the number of messages charged. A charge reads the counter and writes `count + 1` naming the
 * revision it read (`create` when there is none): when another process charged in between, the
 * write is refused and the loop reads again. No two charges can both move the counter from the same
 * value, so the counter never passes the limit, whatever the number of processes.
 *
 * KV `sms_quota_charges` remembers which messages were charged (key = message id, written after the
 * counter moved), so that the HTTP ingress and the intake actor, a redelivered command or a repeated
 * idempotency key never charge one message twice. The order (counter, then marker) means a crash in
 * between can only over-count by one, never let a message through uncharged.
 */
import { Data, Effect, Random } from "effect"
import { NatsError, natsRequest } from "../nats/Nats.js"
import { DocumentConflict, type Documents } from "../platform/Documents.js"

export const QuotaBuckets = {
  /** `<clientId>.<yyyy-mm-dd>` -> messages charged that UTC day */
  counters: "sms_quotas",
  /** message id -> `<clientId>.<yyyy-mm-dd>` it was charged to */
  charges: "sms_quota_charges"
} as const

/**
 * Why a command over its client's quota is refused (field `clientId`): on `sms.rejects` for the NATS
 * intake, in the request/reply answer; the HTTP ingress answers 429.
 */
export const QUOTA_EXCEEDED_REASON = "daily quota exceeded"

/** Counters and markers are kept three days, then expire (KV bucket TTL). */
export const QUOTA_RETENTION_MS = 3 * 24 * 60 * 60 * 1000

const DAY_MS = 24 * 60 * 60 * 1000

/** The UTC day of `now`, `yyyy-mm-dd`. */
export const dayOf = (now: number): string => new Date(now).toISOString().slice(0, 10)

/** Whole seconds from `now` to the next UTC midnight (at least 1): the 429's `Retry-After`. */
export const secondsToNextUtcMidnight = (now: number): number =>
  Math.max(1, Math.ceil((Math.floor(now / DAY_MS + 1) * DAY_MS - now) / 1000))

export const counterKey = (clientId: string, now: number) => `${clientId}.${dayOf(now)}`

export type Charge = Data.TaggedEnum<{
  /** the client has no daily quota */
  Unlimited: {}
  /** this message was charged before (a retry, a redelivery, the intake after the HTTP ingress) */
  AlreadyCharged: {}
  Charged: { readonly used: number; readonly limit: number }
  Exhausted: { readonly used: number; readonly limit: number; readonly retryAfterSeconds: number }
}>
export const Charge = Data.taggedEnum<Charge>()

/** Each lost race means another charge won: this only bounds pathological contention. */
const MAX_ATTEMPTS = 200

export interface QuotaStores {
  readonly counters: Documents
  readonly charges: Documents
}

const readCount = (counters: Documents, key: string) =>
  natsRequest(`cannot read quota ${key}`, () => counters.get(key)).pipe(
    Effect.map((document) =>
      document === undefined
        ? { count: 0, revision: undefined }
        : { count: Number(document.value) || 0, revision: document.revision }
    )
  )

/**
 * Writes `to` to the counter naming the revision it was read at (a create when it had none): true
 * when written, false when another process charged in between.
 */
const moveCounter = (
  counters: Documents,
  key: string,
  current: { readonly revision: number | undefined },
  to: number
) =>
  Effect.tryPromise({
    try: () => counters.put(key, String(to), current.revision),
    catch: (cause) =>
      cause instanceof DocumentConflict
        ? ("conflict" as const)
        : new NatsError({ reason: "RequestFailed", message: `cannot charge quota ${key}`, cause })
  }).pipe(
    Effect.as(true),
    Effect.catchIf(
      (error) => error === "conflict",
      () => Effect.succeed(false)
    )
  )

/** How many messages `clientId` was charged on the UTC day of `now`. */
export const usage = (stores: QuotaStores, clientId: string, now: number) =>
  Effect.map(readCount(stores.counters, counterKey(clientId, now)), ({ count }) => count)

/**
 * Charges one message to `clientId`'s counter of the day of `now`, unless it was charged before or
 * the counter is at `limit`.
 */
export const charge = (
  stores: QuotaStores,
  input: {
    readonly clientId: string
    readonly messageId: string
    readonly limit: number
    readonly now: number
  }
): Effect.Effect<Charge, NatsError> =>
  Effect.gen(function* () {
    const marker = yield* natsRequest("cannot read quota charge", () => stores.charges.get(input.messageId))
    if (marker !== undefined) return Charge.AlreadyCharged()
    const key = counterKey(input.clientId, input.now)
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const current = yield* readCount(stores.counters, key)
      if (current.count >= input.limit) {
        return Charge.Exhausted({
          used: current.count,
          limit: input.limit,
          retryAfterSeconds: secondsToNextUtcMidnight(input.now)
        })
      }
      const written = yield* moveCounter(stores.counters, key, current, current.count + 1)
      if (written) {
        // a lost race here only means a concurrent retry of the same message charged too
        yield* natsRequest("cannot record quota charge", () => stores.charges.set(input.messageId, key)).pipe(
          Effect.ignore
        )
        return Charge.Charged({ used: current.count + 1, limit: input.limit })
      }
      // another process charged in between: read again, after a short jittered pause under contention
      if (attempt > 3) yield* Effect.sleep(yield* Random.nextIntBetween(0, Math.min(20, attempt)))
    }
    return yield* new NatsError({ reason: "RequestFailed", message: `quota ${key} keeps conflicting` })
  })

/**
 * Charges a batch of messages to one client's counter with ONE compare-and-set (a batch's group
 * commit), still exact across processes: the markers are read together, the counter moves by the
 * number of new messages that fit under `limit`, in the batch's order, and the rest are refused.
 * Answers one charge per message id, in order.
 */
export const chargeMany = (
  stores: QuotaStores,
  input: {
    readonly clientId: string
    readonly messageIds: ReadonlyArray<string>
    readonly limit: number
    readonly now: number
  }
): Effect.Effect<ReadonlyArray<Charge>, NatsError> =>
  Effect.gen(function* () {
    const markers = yield* natsRequest("cannot read quota charges", () =>
      Promise.all(input.messageIds.map((id) => stores.charges.get(id)))
    )
    // a message id twice in one batch (a repeated idempotency key) is charged once
    const fresh: Array<string> = []
    const seen = new Set<string>()
    input.messageIds.forEach((id, i) => {
      const marker = markers[i]
      if (marker === undefined && !seen.has(id)) fresh.push(id)
      seen.add(id)
    })
    const key = counterKey(input.clientId, input.now)
    let admitted = 0
    let used = 0
    for (let attempt = 1; fresh.length > 0; attempt++) {
      if (attempt > MAX_ATTEMPTS) {
        return yield* new NatsError({ reason: "RequestFailed", message: `quota ${key} keeps conflicting` })
      }
      const current = yield* readCount(stores.counters, key)
      admitted = Math.max(0, Math.min(fresh.length, input.limit - current.count))
      used = current.count + admitted
      if (admitted === 0) break
      const written = yield* moveCounter(stores.counters, key, current, used)
      if (written) break
      if (attempt > 3) yield* Effect.sleep(yield* Random.nextIntBetween(0, Math.min(20, attempt)))
    }
    const charged = new Map<string, Charge>()
    fresh.forEach((id, i) => {
      charged.set(
        id,
        i < admitted
          ? Charge.Charged({ used: used - admitted + i + 1, limit: input.limit })
          : Charge.Exhausted({
              used,
              limit: input.limit,
              retryAfterSeconds: secondsToNextUtcMidnight(input.now)
            })
      )
    })
    // markers after the counter moved, as for one charge: a crash between can only over-count
    yield* natsRequest("cannot record quota charges", () =>
      Promise.all(fresh.slice(0, admitted).map((id) => stores.charges.set(id, key)))
    ).pipe(Effect.ignore)
    // a repeat of an id answers as its first occurrence did: charged once, or refused each time
    const answered = new Set<string>()
    return input.messageIds.map((id) => {
      const charge = charged.get(id)
      if (charge === undefined) return Charge.AlreadyCharged()
      if (answered.has(id) && charge._tag === "Charged") return Charge.AlreadyCharged()
      answered.add(id)
      return charge
    })
  })
