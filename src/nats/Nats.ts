/** The NATS connection with its JetStream client and manager, shared by every role of a process. */
import { connect, type NatsConnection } from "@nats-io/transport-node"
import { jetstream, jetstreamManager, type JetStreamClient, type JetStreamManager } from "@nats-io/jetstream"
import { Context, Data, Effect, Layer } from "effect"
import "./StacklessCancel.js"

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
}

export class Nats extends Context.Tag("sms-gateway/Nats")<Nats, NatsService>() {
  /** Connects (retrying while the server starts) and drains the connection when the layer closes. */
  static layer = (url: string, name = "sms-gateway") =>
    Layer.scoped(
      Nats,
      Effect.acquireRelease(
        Effect.tryPromise({
          try: async () => {
            const nc = await connect({
              servers: url,
              name,
              maxReconnectAttempts: -1,
              reconnectTimeWait: 250,
              waitOnFirstConnect: true,
              // async stack traces cost about a quarter of the CPU of each request under load
              noAsyncTraces: true,
              timeout: 10_000
            })
            return { nc, js: jetstream(nc, { timeout: 10_000 }), jsm: await jetstreamManager(nc), url }
          },
          catch: (cause) =>
            new NatsError({ reason: "ConnectFailed", message: `cannot connect to ${url}`, cause })
        }),
        ({ nc }) => Effect.promise(() => nc.drain().catch(() => undefined))
      )
    )
}
