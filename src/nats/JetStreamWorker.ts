/**
 * A durable pull consumer whose messages are handled by an Effect, supervised.
 *
 * Every message gets an explicit verdict: ack, nak (with a delay carried by JetStream, so it
 * survives a crash) or term. A handler that fails or dies naks the message instead of taking the
 * actor down; if the consume loop itself breaks (server restart, consumer deleted), it is started
 * again on a backoff schedule.
 */
import { AckPolicy, DeliverPolicy, type JsMsg } from "@nats-io/jetstream"
import { Cause, Data, Duration, Effect, FiberSet, Schedule } from "effect"
import { Nats, NatsError } from "./Nats.js"

export type Verdict = Data.TaggedEnum<{
  Ack: {}
  Nak: { readonly delay: Duration.Duration }
  /** never redeliver: the reason is logged (nats-server 2.9 does not understand `term(reason)`) */
  Term: { readonly reason: string }
}>
export const Verdict = Data.taggedEnum<Verdict>()
export const ack: Verdict = Verdict.Ack()

export interface WorkerOptions<R = never> {
  readonly stream: string
  readonly durable: string
  readonly filterSubject: string
  /** messages in flight at once, also the consumer's `max_ack_pending` */
  readonly concurrency: number
  readonly ackWait?: Duration.DurationInput
  /** -1 for unlimited */
  readonly maxDeliver?: number
  /**
   * runs when the last allowed delivery ends without an ack (the handler failed, or asked for a
   * redelivery that would never come), before the message is terminated; `why` says which
   */
  readonly onGiveUp?: (msg: JsMsg, why: string) => Effect.Effect<void, unknown, R>
  /** how long a message whose handler failed waits before it comes back (default 2 s) */
  readonly failureDelay?: Duration.DurationInput
}

/** How long to wait before restarting a broken consume loop. */
export const restartSchedule = Schedule.exponential("200 millis", 2).pipe(
  Schedule.union(Schedule.spaced("10 seconds")),
  Schedule.jittered
)

/**
 * How often an idle worker checks that the consumer's leader still holds its pull request. When a
 * clustered consumer's leader dies and the client is connected to another node, the new leader
 * knows no pull request, the client sees no disconnect and no status, and nothing is delivered
 * again (seen with nats.js 3 and nats-server 2.9: a stall for good). The check restarts the loop.
 */
const PULL_CHECK_INTERVAL = Duration.seconds(5)

/** How long a stopping worker waits for the messages it holds to settle. */
const shutdownGrace = Duration.seconds(15)

/** Backs off a failed handler: the message comes back later rather than spinning hot. */
const defaultFailureDelay = Duration.seconds(2)

const ensureConsumer = <R>(options: WorkerOptions<R>) =>
  Effect.flatMap(Nats, ({ jsm }) =>
    Effect.tryPromise({
      try: async () => {
        const config = {
          durable_name: options.durable,
          filter_subject: options.filterSubject,
          ack_policy: AckPolicy.Explicit,
          deliver_policy: DeliverPolicy.All,
          max_ack_pending: options.concurrency,
          ack_wait: Number(Duration.unsafeToNanos(Duration.decode(options.ackWait ?? "30 seconds"))),
          max_deliver: options.maxDeliver ?? -1
        }
        const existing = await jsm.consumers.info(options.stream, options.durable).catch(() => undefined)
        if (existing === undefined) await jsm.consumers.add(options.stream, config)
        else await jsm.consumers.update(options.stream, options.durable, config)
      },
      catch: (cause) =>
        new NatsError({
          reason: "RequestFailed",
          message: `cannot create consumer ${options.durable}`,
          cause
        })
    })
  )

const settle = (msg: JsMsg, verdict: Verdict) => {
  switch (verdict._tag) {
    case "Ack":
      return msg.ack()
    case "Nak":
      return msg.nak(Duration.toMillis(verdict.delay))
    case "Term":
      return msg.term()
  }
}

const lastDeliveryOf =
  <R>(options: WorkerOptions<R>) =>
  (msg: JsMsg): boolean =>
    options.maxDeliver !== undefined && options.maxDeliver > 0 && msg.info.deliveryCount >= options.maxDeliver

/** Runs onGiveUp and terminates: the caller records why the message stopped, nothing is stranded. */
const giveUp = <R>(msg: JsMsg, why: string, onGiveUp: NonNullable<WorkerOptions<R>["onGiveUp"]>) =>
  Effect.logError(`${why} on the last delivery; giving the message up`).pipe(
    Effect.zipRight(onGiveUp(msg, why)),
    Effect.as<Verdict>(Verdict.Term({ reason: "max deliveries reached" })),
    // if even that fails, the message stays in the stream for an operator (nothing deletes it)
    Effect.catchAllCause((again) =>
      Effect.as(
        Effect.logError("giving up failed", Cause.pretty(again)),
        Verdict.Term({ reason: "give-up failed" }) as Verdict
      )
    ),
    Effect.annotateLogs({ subject: msg.subject, seq: msg.seq })
  )

/**
 * Handles one batch: one verdict per message, in the same order. A batch handler settles each
 * message by its own outcome: one message's failure must never fail its neighbours.
 */
export type BatchHandler<R> = (
  messages: ReadonlyArray<JsMsg>
) => Effect.Effect<ReadonlyArray<Verdict>, unknown, R>

/** Default bound of one batch: what the consumer has ready, up to this many. */
const DEFAULT_MAX_BATCH = 256

/**
 * Runs until interrupted; meant to be forked into an actor layer's scope.
 *
 * Batch-first: the messages the consumer delivered in one turn of the event loop (one socket read
 * can carry hundreds) are handled together by one Effect, never waiting to fill a batch, so a lone
 * message goes at once. Batches run side by side (in flight stays bounded by `max_ack_pending`),
 * so one slow provider call holds back only its own batch.
 */
export const runBatchWorker = <R>(
  options: WorkerOptions<R> & { readonly maxBatch?: number },
  handleBatch: BatchHandler<R>
): Effect.Effect<never, never, Nats | R> => {
  const maxBatch = options.maxBatch ?? DEFAULT_MAX_BATCH
  const failureDelay = Duration.decode(options.failureDelay ?? defaultFailureDelay)
  const isLastDelivery = lastDeliveryOf(options)

  /** The rare verdicts that need more than an ack: logged, or given up on their last delivery. */
  const review = (msg: JsMsg, verdict: Verdict): Effect.Effect<Verdict, never, R> => {
    if (verdict._tag === "Term") {
      return Effect.as(
        Effect.logWarning("message terminated").pipe(
          Effect.annotateLogs({ reason: verdict.reason, subject: msg.subject, seq: msg.seq })
        ),
        verdict
      )
    }
    // a "later" on the last delivery would never come back: JetStream stops redelivering silently
    if (verdict._tag === "Nak" && isLastDelivery(msg) && options.onGiveUp !== undefined) {
      return giveUp(msg, "still waiting to be retried", options.onGiveUp)
    }
    return Effect.succeed(verdict)
  }

  /** The batch handler broke as a whole (a defect): every message comes back later, or is given up. */
  const fallback = (messages: ReadonlyArray<JsMsg>, cause: Cause.Cause<unknown>) =>
    Effect.zipRight(
      Effect.logError("batch handler failed; its messages will be redelivered", Cause.pretty(cause)),
      Effect.forEach(messages, (msg) =>
        isLastDelivery(msg) && options.onGiveUp !== undefined
          ? giveUp(msg, "handler failed", options.onGiveUp)
          : Effect.succeed<Verdict>(Verdict.Nak({ delay: failureDelay }))
      )
    )

  const processBatch = (messages: ReadonlyArray<JsMsg>): Effect.Effect<void, never, R> =>
    handleBatch(messages).pipe(
      Effect.filterOrDieMessage(
        (verdicts) => verdicts.length === messages.length,
        `${options.durable}: the batch handler answered the wrong number of verdicts`
      ),
      Effect.catchAllCause((cause) => fallback(messages, cause)),
      Effect.flatMap((verdicts) => {
        let plain = true
        for (const verdict of verdicts) if (verdict._tag !== "Ack") plain = false
        if (plain) {
          for (const msg of messages) msg.ack()
          return Effect.void
        }
        return Effect.forEach(
          messages,
          (msg, i) => Effect.map(review(msg, verdicts[i] ?? ack), (verdict) => settle(msg, verdict)),
          { discard: true }
        )
      })
    )

  const consumeOnce = Effect.gen(function* () {
    const { js, jsm } = yield* Nats
    yield* ensureConsumer(options)
    // One fiber per batch. In flight stays bounded by the consumer's max_ack_pending, which the
    // server enforces.
    const inFlight = yield* FiberSet.make()
    const run = yield* FiberSet.runtime(inFlight)<R | Nats>()
    // on shutdown, after delivery has stopped: let the messages in hand settle
    yield* Effect.addFinalizer(() =>
      FiberSet.awaitEmpty(inFlight).pipe(Effect.timeout(shutdownGrace), Effect.ignore)
    )
    let ready: Array<JsMsg> = []
    let flushScheduled = false
    let lastDelivery = Date.now()
    // Everything delivered in this turn of the event loop forms the batch: no timer, no waiting.
    const flush = () => {
      flushScheduled = false
      const taken = ready
      ready = []
      for (let start = 0; start < taken.length; start += maxBatch) {
        run(
          processBatch(start === 0 && taken.length <= maxBatch ? taken : taken.slice(start, start + maxBatch))
        )
      }
    }
    const messages = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: async () => {
          const consumer = await js.consumers.get(options.stream, options.durable)
          return consumer.consume({
            max_messages: Math.max(options.concurrency, 16),
            // a deleted consumer or stream ends the loop, which then restarts and recreates it
            abort_on_missing_resource: true,
            callback: (msg) => {
              lastDelivery = Date.now()
              ready.push(msg)
              if (!flushScheduled) {
                flushScheduled = true
                setImmediate(flush)
              }
            }
          })
        },
        catch: (cause) =>
          new NatsError({ reason: "RequestFailed", message: `cannot consume ${options.durable}`, cause })
      }),
      (messages) => Effect.sync(() => messages.stop())
    )
    // an idle worker whose pull request the consumer's leader no longer holds stops, and restarts
    yield* Effect.forkScoped(
      Effect.forever(
        Effect.zipRight(
          Effect.sleep(PULL_CHECK_INTERVAL),
          Effect.suspend(() =>
            Date.now() - lastDelivery < Duration.toMillis(PULL_CHECK_INTERVAL)
              ? Effect.void
              : Effect.promise(() =>
                  jsm.consumers.info(options.stream, options.durable).then(
                    (info) => {
                      if (info.num_waiting === 0) {
                        lastDelivery = Date.now()
                        messages.stop(new Error("the consumer's leader holds no pull request"))
                      }
                    },
                    // unreachable for now: the client's own reconnect and heartbeats take over
                    () => undefined
                  )
                )
          )
        )
      )
    )
    const ended = yield* Effect.promise(() => messages.closed())
    return yield* new NatsError({
      reason: "RequestFailed",
      message: `consume loop of ${options.durable} ended`,
      cause: ended
    })
  }).pipe(Effect.scoped)

  return consumeOnce.pipe(
    Effect.tapErrorCause((cause) =>
      Effect.logWarning(`worker ${options.durable} restarting`, Cause.pretty(cause))
    ),
    Effect.retry(restartSchedule),
    Effect.orDie
  )
}

/**
 * A worker whose handler takes one message at a time (tests, cold paths): each batch runs its
 * messages side by side, and a handler that fails naks only its own message.
 */
export const runWorker = <R>(
  options: WorkerOptions<R>,
  handle: (msg: JsMsg) => Effect.Effect<Verdict, unknown, R>
): Effect.Effect<never, never, Nats | R> => {
  const failureDelay = Duration.decode(options.failureDelay ?? defaultFailureDelay)
  const isLastDelivery = lastDeliveryOf(options)
  return runBatchWorker(options, (messages) =>
    Effect.forEach(
      messages,
      (msg) =>
        handle(msg).pipe(
          Effect.catchAllCause((cause) =>
            Effect.zipRight(
              Effect.logError("handler failed", Cause.pretty(cause)),
              isLastDelivery(msg) && options.onGiveUp !== undefined
                ? giveUp(msg, "handler failed", options.onGiveUp)
                : Effect.succeed<Verdict>(Verdict.Nak({ delay: failureDelay }))
            )
          )
        ),
      { concurrency: "unbounded" }
    )
  )
}
