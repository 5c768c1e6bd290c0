/**
 * An in-process view of the phone numbers that may be inactive, so the intake reads a phone's event
 * stream only for those (rare) numbers instead of for every message (issue 11, item 4).
 *
 * The view answers "may be": it is fed by the phone-numbers read model, so it lags the phone streams.
 * A yes sends the intake to the phone stream, whose revision is the proof of a refusal; a stale yes only
 * costs that read. A stale no lets a message through to a number deactivated within the lag (measured by
 * `bench/inactive-numbers.ts`), so anything the view cannot read is kept as a yes.
 */
import { type KV, type KvWatchEntry, KvWatchInclude } from "@nats-io/kv"
import { Context, Data, Deferred, Effect, Layer } from "effect"
import { ReadModels } from "../projections/ReadModels.js"
import { restartSchedule } from "../nats/JetStreamWorker.js"

export interface InactiveNumbersService {
  /** `e164` is `+` then digits; synchronous, as the intake asks it in a plain loop over a batch */
  readonly mayBeInactive: (e164: string) => boolean
  /** succeeds once the numbers inactive when the view started are loaded */
  readonly ready: Effect.Effect<void>
  /** how many numbers the view holds (metrics, tests) */
  readonly size: () => number
}

export class InactiveNumbers extends Context.Tag("sms-gateway/InactiveNumbers")<
  InactiveNumbers,
  InactiveNumbersService
>() {
  /** Fed by a watch of the `sms_phones` read model; needs `ReadModels`. */
  static layer: Layer.Layer<InactiveNumbers, never, ReadModels> = Layer.scoped(
    InactiveNumbers,
    Effect.gen(function* () {
      const { phones } = yield* ReadModels
      const numbers = new Set<number>()
      const ready = yield* Deferred.make<void>()
      yield* Effect.forkScoped(watchPhones(phones, numbers, ready))
      return service(numbers, Deferred.await(ready))
    })
  )

  /** The in-memory twin, controlled through `InactiveNumbersMemory`; ready at once. */
  static layerMemory = (
    initial: Iterable<string> = []
  ): Layer.Layer<InactiveNumbers | InactiveNumbersMemory> =>
    Layer.effectContext(
      Effect.sync(() => {
        const numbers = new Set<number>()
        const add = (e164: string) => {
          const key = keyOf(digitsOf(e164))
          if (key !== undefined) numbers.add(key)
        }
        for (const e164 of initial) add(e164)
        return Context.make(InactiveNumbers, service(numbers, Effect.void)).pipe(
          Context.add(InactiveNumbersMemory, {
            deactivate: (e164) => Effect.sync(() => add(e164)),
            reactivate: (e164) =>
              Effect.sync(() => {
                const key = keyOf(digitsOf(e164))
                if (key !== undefined) numbers.delete(key)
              })
          })
        )
      })
    )
}

/** Test control of `InactiveNumbers.layerMemory`. */
export class InactiveNumbersMemory extends Context.Tag("sms-gateway/InactiveNumbersMemory")<
  InactiveNumbersMemory,
  {
    readonly deactivate: (e164: string) => Effect.Effect<void>
    readonly reactivate: (e164: string) => Effect.Effect<void>
  }
>() {}

export class InactiveNumbersError extends Data.TaggedError("InactiveNumbersError")<{
  readonly reason: "WatchFailed" | "WatchEnded"
  readonly cause?: unknown
}> {}

// E.164 has at most 15 digits and never starts with 0: as a JS number (exact below 2^53) each is a Set
// entry and a heap number, ~37 bytes, against ~53 with the digits as strings (1,000,000 numbers: 36 MB).
const PHONE_DIGITS = /^[1-9]\d{0,14}$/

const keyOf = (digits: string): number | undefined => (PHONE_DIGITS.test(digits) ? Number(digits) : undefined)

const digitsOf = (e164: string): string => (e164.startsWith("+") ? e164.slice(1) : e164)

const service = (numbers: ReadonlySet<number>, ready: Effect.Effect<void>): InactiveNumbersService => ({
  mayBeInactive: (e164) => {
    const key = keyOf(digitsOf(e164))
    return key !== undefined && numbers.has(key)
  },
  ready,
  size: () => numbers.size
})

/** Only `status` is read, without Schema: a million of these go by at start. */
const isActive = (entry: KvWatchEntry): boolean => {
  try {
    const doc: unknown = entry.json()
    return typeof doc === "object" && doc !== null && "status" in doc && doc.status === "active"
  } catch {
    // unreadable: kept as "may be inactive" (see the header)
    return false
  }
}

/**
 * Applies the bucket's entries to `numbers` for as long as the scope lives. The watch delivers what the
 * bucket holds, then the updates; a watch that ends is started again with backoff, from the revision
 * after the last one applied, so a restart replays only what it missed.
 */
const watchPhones = (kv: KV, numbers: Set<number>, ready: Deferred.Deferred<void>) => {
  let lastRevision = 0
  const markReady = () => Deferred.unsafeDone(ready, Effect.void)
  const watchOnce = Effect.tryPromise({
    try: async (signal) => {
      // every entry in order rather than the last per key: the same final state (the bucket keeps one
      // revision), but nats-server 2.9 creates a last-per-subject consumer over 1,000,000 keys in 7-10 s
      // (past the request timeout right after a burst of writes), an all-messages one in 2 s
      const entries = await kv.watch(
        lastRevision > 0 ? { resumeFromRevision: lastRevision + 1 } : { include: KvWatchInclude.AllHistory }
      )
      // interrupted while the watch was being created: nothing else would ever stop it
      if (signal.aborted) return entries.stop()
      signal.addEventListener("abort", () => entries.stop())
      // the watch gives no marker after the initial values: an entry with nothing pending behind it
      // ends them, and a bucket empty once the watch exists has none to wait for
      if ((await kv.status()).values === 0) markReady()
      for await (const entry of entries) {
        const key = keyOf(entry.key)
        if (key !== undefined) {
          if (entry.operation === "PUT" && !isActive(entry)) numbers.add(key)
          else numbers.delete(key)
        }
        lastRevision = entry.revision
        if (entry.delta === 0) markReady()
      }
    },
    catch: (cause) => new InactiveNumbersError({ reason: "WatchFailed", cause })
  })
  return watchOnce.pipe(
    Effect.zipRight(Effect.fail(new InactiveNumbersError({ reason: "WatchEnded" }))),
    Effect.tapError((error) => Effect.logWarning("inactive numbers watch restarting", error)),
    Effect.retry(restartSchedule),
    Effect.orDie
  )
}
