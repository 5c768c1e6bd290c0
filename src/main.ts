/**
 * Composes the gateway's layers by role. `start` runs every role in one process; `--roles` picks
 * some, and many processes may run the same role (the durable consumers share the work).
 */
import { Duration, Effect, Layer, Schedule } from "effect"
import * as DeliveryReportActor from "./deliveryReports/DeliveryReportActor.js"
import { InactiveNumbers } from "./intake/InactiveNumbers.js"
import * as Intake from "./intake/Intake.js"
import { MessageCache } from "./messages/MessageCache.js"
import * as ProviderActor from "./dispatch/ProviderActor.js"
import * as ReportDeadline from "./deliveryReports/ReportDeadline.js"
import { ProviderHealth } from "./dispatch/ProviderHealth.js"
import * as SendService from "./intake/SendService.js"
import * as ClientsBootstrap from "./clients/Bootstrap.js"
import { Clients } from "./clients/Clients.js"
import { type EventStore, EventStoreError } from "./eventstore/EventStore.js"
import * as EventStoreDbOnDemand from "./eventstore/EventStoreDbOnDemand.js"
import * as JetStreamEventStore from "./eventstore/JetStreamEventStore.js"
import * as GrpcServer from "./grpc/GrpcServer.js"
import { PublicUrl } from "./platform/PublicUrl.js"
import * as HttpServerRole from "./http/Server.js"
import { Nats, NatsError } from "./nats/Nats.js"
import { ensureStreams } from "./nats/Topology.js"
import * as OutboxRole from "./outbox/Role.js"
import * as Tracing from "./observability/Tracing.js"
import * as ProjectionRunner from "./projections/ProjectionRunner.js"
import { reactors, readModels } from "./projections/Registry.js"
import { ReadModels } from "./projections/ReadModels.js"
import type { ProvidersFile } from "./providers/ProviderConfig.js"
import { Providers } from "./providers/Providers.js"

export const ROLES = ["intake", "providers", "dlr", "projector", "http", "outbox"] as const
export type Role = (typeof ROLES)[number]

export interface GatewayOptions {
  readonly roles: ReadonlySet<Role>
  readonly natsUrl: string
  readonly providers: ProvidersFile
  readonly http: { readonly host: string; readonly port: number }
  /** where the HTTP role also serves the gRPC API (none: no gRPC) */
  readonly grpc?: { readonly host: string; readonly port: number }
  /** base URL providers call back on; defaults to the HTTP address */
  readonly publicUrl: string
  /** where the HTTP role writes `admin.key` when it issues the first admin key (none: no bootstrap; issue 7) */
  readonly dataDir?: string
  /** how long a start waits out NATS or the event store passing through an election (default 60 s) */
  readonly startRetrySeconds?: number
}

const projectorRole = Layer.scopedDiscard(
  Effect.gen(function* () {
    const models = yield* readModels
    yield* Effect.forkScoped(ProjectionRunner.runAll([...models.map((m) => m.projection), ...reactors]))
  })
)

const roleLayer = (role: Role, options: GatewayOptions) => {
  switch (role) {
    case "intake":
      // the intake asks the in-process view of inactive numbers instead of reading per message
      return Layer.merge(Intake.layer().pipe(Layer.provide(InactiveNumbers.layer)), SendService.layer)
    case "providers":
      return ProviderActor.layer
    case "dlr":
      // the report deadlines end what the delivery reports would have: the same role
      return Layer.merge(DeliveryReportActor.layer(), ReportDeadline.layer)
    case "projector":
      return projectorRole
    case "http":
      // the gRPC API beside the HTTP API, in the same process (issue 17)
      return Layer.mergeAll(
        HttpServerRole.layer(options.http),
        ClientsBootstrap.layer(options.dataDir),
        options.grpc === undefined ? Layer.empty : GrpcServer.layer(options.grpc)
      )
    case "outbox":
      // OUTBOX_URL switches it on (see src/outbox/Config.ts); without it the role has nothing to read
      return OutboxRole.fromEnv
  }
}

/** `EVENT_STORE=esdb` keeps the events in EventStoreDB (`ESDB_URL`); the default is the JetStream stream. */
export const eventStoreLayer = (
  choice = process.env.EVENT_STORE ?? "jetstream"
): Layer.Layer<EventStore, EventStoreError, Nats> =>
  choice === "jetstream"
    ? JetStreamEventStore.layer
    : choice === "esdb"
      ? EventStoreDbOnDemand.layer
      : Layer.fail(
          new EventStoreError({
            reason: "InvalidData",
            message: `EVENT_STORE must be jetstream or esdb, not ${choice}`
          })
        )

/** The infrastructure every role shares: NATS, streams, event store, read models, providers. */
export const infrastructure = (options: GatewayOptions) => {
  const nats = Nats.layer(options.natsUrl)
  const topology = Layer.effectDiscard(ensureStreams)
  const stores = Layer.mergeAll(eventStoreLayer(), ReadModels.layer, Clients.layer, topology).pipe(
    Layer.provideMerge(nats)
  )
  return Layer.mergeAll(
    stores,
    ProviderHealth.layer.pipe(Layer.provideMerge(Providers.layer(options.providers))),
    Layer.succeed(PublicUrl, options.publicUrl.replace(/\/+$/, "")),
    MessageCache.layer
  )
}

export type Infrastructure =
  | Nats
  | EventStore
  | ReadModels
  | Clients
  | Providers
  | ProviderHealth
  | PublicUrl
  | MessageCache

/** The chosen roles; they need the infrastructure. */
export const roles = (options: GatewayOptions) =>
  Layer.mergeAll(Layer.empty, ...[...options.roles].map((role) => roleLayer(role, options)))

/**
 * A start that meets NATS mid-election (a cluster node just died, a server restarting) gets timeouts
 * and "no responders" for a few seconds: it starts again, for up to a minute, instead of exiting (seen
 * in the cluster chaos run: a gateway restarted right after a node's kill -9). Anything else, a wrong
 * setting, a busy port, invalid data, still ends the start at once.
 */
const isPassing = (error: unknown) =>
  (error instanceof NatsError && error.reason === "RequestFailed") ||
  (error instanceof EventStoreError && (error.reason === "Unavailable" || error.reason === "Timeout"))

const startAgain = (seconds: number) =>
  Schedule.exponential("250 millis", 2).pipe(
    Schedule.union(Schedule.spaced("5 seconds")),
    Schedule.whileInput(isPassing),
    Schedule.upTo(Duration.seconds(seconds))
  )

export const gateway = (options: GatewayOptions) =>
  roles(options).pipe(
    // traces (when an OTLP endpoint is set) start before the roles and are flushed after them
    Layer.provide(Layer.merge(infrastructure(options), Tracing.layer())),
    Layer.retry(startAgain(options.startRetrySeconds ?? 60))
  )
