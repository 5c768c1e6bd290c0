/** The NATS connection with its JetStream client and manager, shared by every role of a process. */
import { connect, type NatsConnection, type NodeConnectionOptions } from "@nats-io/transport-node"
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream"
import { TimeoutError } from "@nats-io/nats-core"
import { Context, Data, Effect, Layer } from "effect"
import { natsAuthFor } from "./NatsAuth.js"
import { replicasFrom, serversOf } from "./Replicas.js"
import { type JetStreamPublish, makeJetStreamPublish } from "./JetStreamPublish.js"
import "./StacklessCancel.js"
import { type TurnPublish, turnPublisher } from "./TurnPublisher.js"

export class NatsError extends Data.TaggedError("NatsError")<{
  /** InvalidOptions: a NATS_* setting is wrong (the message names it) */
  readonly reason: "ConnectFailed" | "RequestFailed" | "InvalidOptions"
  readonly message: string
  readonly cause?: unknown
}> {}

/** A NATS or JetStream request as an Effect; its failure names what was asked (`what`). */
export const natsRequest = <A>(what: string, run: () => Promise<A>): Effect.Effect<A, NatsError> =>
  Effect.tryPromise({
    try: run,
    catch: (cause) => new NatsError({ reason: "RequestFailed", message: what, cause })
  })

/**
 * JetStream did not answer its first request. A timeout or "temporarily unavailable" is a cluster
 * electing its meta leader (a node just died) or a server still starting: `RequestFailed`, which a
 * start waits out. No responders means JetStream is not enabled there: a setting to fix, at once.
 */
const jetStreamUnanswered = (url: string, cause: unknown): NatsError => {
  const text = cause instanceof Error ? cause.message : String(cause)
  const passing = cause instanceof TimeoutError || /temporarily unavailable|timeout/i.test(text)
  return passing
    ? new NatsError({
        reason: "RequestFailed",
        message: `JetStream at ${url} is not answering yet (a cluster electing its leader, or a server starting): ${text}`,
        cause
      })
    : new NatsError({
        reason: "ConnectFailed",
        message: `JetStream is not available at ${url} (is it enabled on the server?): ${text}`,
        cause
      })
}

export interface NatsService {
  readonly nc: NatsConnection
  readonly js: JetStreamClient
  readonly jsm: JetStreamManager
  readonly url: string
  /** `js.publish`, lean: what every hot path publishes with (see `JetStreamPublish.ts`) */
  readonly publish: JetStreamPublish
  /** a JetStream publish that leaves with the rest of this turn's (for per-request publishers) */
  readonly publishThisTurn: TurnPublish
  /** copies of every stream and bucket this gateway creates (`NATS_REPLICAS`, see `Replicas.ts`) */
  readonly replicas: number
}

export class Nats extends Context.Tag("sms-gateway/Nats")<Nats, NatsService>() {
  /**
   * Connects with `options` and drains the connection when the layer closes. Credentials and TLS come
   * from `natsAuthFor` (an embedded server's generated credentials, or `NATS_CREDS`, `NATS_NKEY`,
   * `NATS_USER`/`NATS_PASSWORD`, `NATS_TOKEN`, `NATS_TLS_*`) unless `options` names its own, so
   * every role, the CLI and the tools authenticate the same way.
   */
  static connect = (url: string, options: Omit<NodeConnectionOptions, "servers">) =>
    Layer.scoped(
      Nats,
      Effect.acquireRelease(
        Effect.flatMap(
          Effect.mapError(
            Effect.all([natsAuthFor(url), replicasFrom(process.env)]),
            (error) => new NatsError({ reason: "InvalidOptions", message: error.message, cause: error })
          ),
          ([auth, replicas]) =>
            Effect.flatMap(
              Effect.tryPromise({
                try: () =>
                  connect({
                    ...auth,
                    ...options,
                    // a cluster is named by all of its seeds, comma-separated: the client fails over among them
                    servers: serversOf(url),
                    // async stack traces cost about a quarter of the CPU of each request under load
                    noAsyncTraces: true
                  }),
                catch: (cause) =>
                  new NatsError({
                    reason: "ConnectFailed",
                    // nats.js says why ("Authorization Violation", a TLS failure), never with a secret in it
                    message: `cannot connect to ${url}${cause instanceof Error && cause.message ? `: ${cause.message}` : ""}`,
                    cause
                  })
              }),
              (nc) =>
                Effect.tryPromise({
                  try: async () => {
                    const publish = makeJetStreamPublish(nc, 10_000)
                    return {
                      nc,
                      js: jetstream(nc, { timeout: 10_000 }),
                      // asks JetStream for its account info: the first request of a start
                      jsm: await jetstreamManager(nc),
                      url,
                      publish,
                      publishThisTurn: turnPublisher(publish),
                      replicas
                    }
                  },
                  catch: (cause) => jetStreamUnanswered(url, cause)
                }).pipe(
                  // the connection is this layer's only once it is whole: a half-made one would keep
                  // the process alive after its start failed (seen: a gateway that said why it could
                  // not start and then hung, in the cluster chaos run)
                  Effect.tapError(() => Effect.promise(() => nc.close().catch(() => undefined)))
                )
            )
        ),
        ({ nc }) => Effect.promise(() => nc.drain().catch(() => undefined))
      )
    )

  /** The daemon's connection: waits for the server to start, and reconnects forever. */
  static layer = (url: string, name = "sms-gateway") =>
    Nats.connect(url, {
      name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      waitOnFirstConnect: true,
      timeout: 10_000
    })
}
