/**
 * Named retry schedules for provider calls. The delays are computed here but waited out by
 * JetStream (`nak(delay)`), so a crash during the wait loses nothing.
 */
import { Chunk, Duration, Effect, Option, Schedule } from "effect"
import { RetryPolicy } from "../providers/ProviderConfig.js"

/** Exponential from `initialDelayMs`, jittered (±20 %), each delay capped, `maxRetries` retries. */
export const scheduleFor = (policy: RetryPolicy) =>
  Schedule.exponential(Duration.millis(policy.initialDelayMs), 2).pipe(
    Schedule.jittered,
    // the second argument is the (jittered) delay; the first is only the exponential's output
    Schedule.modifyDelay((_, delay) => Duration.min(delay, Duration.millis(policy.maxDelayMs))),
    Schedule.intersect(Schedule.recurs(policy.maxRetries))
  )

/** Seed 000's Celery policy: exponential from 5 s, jittered, 11 retries, each delay capped at 10 min. */
export const providerDefault = scheduleFor(RetryPolicy.make({}))

/** The delay before retry number `retry` (1-based), or none when the schedule is exhausted. */
export const delayBeforeRetry = <Out>(
  schedule: Schedule.Schedule<Out, unknown>,
  retry: number
): Effect.Effect<Option.Option<Duration.Duration>> =>
  // `run` also emits the output of the step that ends the schedule, so a delay exists for retry n
  // only when more than n outputs come back
  Effect.map(
    Schedule.run(
      Schedule.delays(schedule),
      0,
      Array.from({ length: retry + 1 }, () => undefined)
    ),
    (delays) => (Chunk.size(delays) > retry ? Chunk.get(delays, retry - 1) : Option.none())
  )
