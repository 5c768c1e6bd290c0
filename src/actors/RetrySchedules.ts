/**
 * Named retry schedules for provider calls. The delays are computed here but waited out by
 * JetStream (`nak(delay)`), so a crash during the wait loses nothing.
 */
import { Chunk, Duration, Effect, Option, Schedule } from "effect"

/** Seed 000's Celery policy: exponential from 5 s, jittered, 11 retries, each delay capped at 10 min. */
export const providerDefault = Schedule.exponential("5 seconds", 2).pipe(
  Schedule.jittered,
  Schedule.modifyDelay((delay) => Duration.min(delay, Duration.minutes(10))),
  Schedule.intersect(Schedule.recurs(11))
)

/** The delay before retry number `retry` (1-based), or none when the schedule is exhausted. */
export const delayBeforeRetry = <Out>(
  schedule: Schedule.Schedule<Out, unknown>,
  retry: number
): Effect.Effect<Option.Option<Duration.Duration>> =>
  Effect.map(
    Schedule.run(
      Schedule.delays(schedule),
      0,
      Array.from({ length: retry }, () => undefined)
    ),
    (delays) => (Chunk.size(delays) >= retry ? Chunk.last(delays) : Option.none())
  )
