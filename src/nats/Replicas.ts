/**
 * How many copies JetStream keeps of each stream and bucket the gateway creates. One server (the
 * embedded default) holds one copy; a cluster of three keeps every event, command, work item and
 * read model on three servers with `NATS_REPLICAS=3`, so losing one server loses nothing and stops
 * nothing (a stream answers while a majority of its replicas is up).
 */
import { Data, Effect } from "effect"

export class ReplicasError extends Data.TaggedError("ReplicasError")<{ readonly message: string }> {}

/** JetStream's own bound: a stream has at most five replicas. */
const MAX_REPLICAS = 5

/** `NATS_REPLICAS`: 1 (default) to 5; anything else is refused at start, naming the variable. */
export const replicasFrom = (env: NodeJS.ProcessEnv): Effect.Effect<number, ReplicasError> => {
  const text = env.NATS_REPLICAS?.trim()
  if (text === undefined || text === "") return Effect.succeed(1)
  const value = Number(text)
  return Number.isInteger(value) && value >= 1 && value <= MAX_REPLICAS
    ? Effect.succeed(value)
    : Effect.fail(
        new ReplicasError({
          message: `NATS_REPLICAS must be a whole number from 1 to ${MAX_REPLICAS}, not "${text}"`
        })
      )
}

/** `NATS_URL` may name several servers of one cluster, comma-separated. */
export const serversOf = (url: string): Array<string> =>
  url
    .split(",")
    .map((server) => server.trim())
    .filter((server) => server.length > 0)
