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
import { Nats, NatsError } from "../nats/Nats.js"

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

/** Runs until interrupted; meant to be forked into an actor layer's scope. */
export const runWorker = <R>(
  options: WorkerOptions<R>,
  handle: (msg: JsMsg) => Effect.Effect<Verdict, unknown, R>
): Effect.Effect<never, never, Nats | R> => {
  const isLastDelivery = (msg: JsMsg) =>
    options.maxDeliver !== undefined && options.maxDeliver > 0 && msg.info.deliveryCount >= options.maxDeliver
  // Runs onGiveUp and terminates: the caller records why the message stopped, nothing is stranded.
  const giveUp = (msg: JsMsg, why: string, onGiveUp: NonNullable<WorkerOptions<R>["onGiveUp"]>) =>
    Effect.logError(`${why} on the last delivery; giving the message up`).pipe(
      Effect.zipRight(onGiveUp(msg, why)),
      Effect.as<Verdict>(Verdict.Term({ reason: "max deliveries reached" })),
      // if even that fails, the message stays in the stream for an operator (nothing deletes it)
      Effect.catchAllCause((again) =>
        Effect.as(
          Effect.logError("giving up failed", Cause.pretty(again)),
          Verdict.Term({ reason: "give-up failed" }) as Verdict
        )
      )
    )
  const handleSafely = (msg: JsMsg) =>
    handle(msg).pipe(
      Effect.tap((verdict) =>
        verdict._tag === "Term"
          ? Effect.logWarning("message terminated").pipe(
              Effect.annotateLogs({ reason: verdict.reason, subject: msg.subject, seq: msg.seq })
            )
          : Effect.void
      ),
      // a "later" on the last delivery would never come back: JetStream stops redelivering silently
      Effect.flatMap(
        (verdict): Effect.Effect<Verdict, never, R> =>
          verdict._tag === "Nak" && isLastDelivery(msg) && options.onGiveUp !== undefined
            ? giveUp(msg, "still waiting to be retried", options.onGiveUp)
            : Effect.succeed(verdict)
      ),
      Effect.catchAllCause(
        (cause): Effect.Effect<Verdict, never, R> =>
          isLastDelivery(msg) && options.onGiveUp !== undefined
            ? Effect.logError("handler failed", Cause.pretty(cause)).pipe(
                Effect.zipRight(giveUp(msg, "handler failed", options.onGiveUp))
              )
            : Effect.logError("handler failed; message will be redelivered", Cause.pretty(cause)).pipe(
                Effect.as<Verdict>(
                  Verdict.Nak({ delay: Duration.decode(options.failureDelay ?? defaultFailureDelay) })
                )
              )
      ),
      Effect.annotateLogs({ subject: msg.subject, seq: msg.seq }),
      Effect.map((verdict) => settle(msg, verdict))
    )

  const consumeOnce = Effect.gen(function* () {
    const { js } = yield* Nats
    yield* ensureConsumer(options)
    // One fiber per message. In flight stays bounded by the consumer's max_ack_pending, which the
    // server enforces; a Stream here cost more CPU per message than the handlers themselves.
    const inFlight = yield* FiberSet.make()
    const run = yield* FiberSet.runtime(inFlight)<R | Nats>()
    // on shutdown, after delivery has stopped: let the messages in hand settle
    yield* Effect.addFinalizer(() =>
      FiberSet.awaitEmpty(inFlight).pipe(Effect.timeout(shutdownGrace), Effect.ignore)
    )
    const messages = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: async () => {
          const consumer = await js.consumers.get(options.stream, options.durable)
          return consumer.consume({
            max_messages: Math.max(options.concurrency, 16),
            // a deleted consumer or stream ends the loop, which then restarts and recreates it
            abort_on_missing_resource: true,
            callback: (msg) => {
              run(handleSafely(msg))
            }
          })
        },
        catch: (cause) =>
          new NatsError({ reason: "RequestFailed", message: `cannot consume ${options.durable}`, cause })
      }),
      (messages) => Effect.sync(() => messages.stop())
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
