/** The NATS connection with its JetStream client and manager, shared by every role of a process. */
import { connect, type NatsConnection, type NodeConnectionOptions } from "@nats-io/transport-node"
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream"
import { Context, Data, Effect, Layer } from "effect"
import "./StacklessCancel.js"
import { type TurnPublish, turnPublisher } from "./TurnPublisher.js"

export class NatsError extends Data.TaggedError("NatsError")<{
  readonly reason: "ConnectFailed" | "RequestFailed"
  readonly message: string
  readonly cause?: unknown
}> {}

export interface NatsService {
  readonly nc: NatsConnection
  readonly js: JetStreamClient
  readonly jsm: JetStreamManager
  readonly url: string
  /** a JetStream publish that leaves with the rest of this turn's (for per-request publishers) */
  readonly publishThisTurn: TurnPublish
}

export class Nats extends Context.Tag("sms-gateway/Nats")<Nats, NatsService>() {
  /** Connects with `options` and drains the connection when the layer closes. */
  static connect = (url: string, options: Omit<NodeConnectionOptions, "servers">) =>
    Layer.scoped(
      Nats,
      Effect.acquireRelease(
        Effect.tryPromise({
          try: async () => {
            const nc = await connect({
              ...options,
              servers: url,
              // async stack traces cost about a quarter of the CPU of each request under load
              noAsyncTraces: true
            })
            const js = jetstream(nc, { timeout: 10_000 })
            return { nc, js, jsm: await jetstreamManager(nc), url, publishThisTurn: turnPublisher(js) }
          },
          catch: (cause) =>
            new NatsError({ reason: "ConnectFailed", message: `cannot connect to ${url}`, cause })
        }),
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
