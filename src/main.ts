/**
 * Composes the gateway's layers by role. `start` runs every role in one process; `--roles` picks
 * some, and many processes may run the same role (the durable consumers share the work).
 */
import { Effect, Layer, Ref } from "effect"
import * as DeliveryReportActor from "./actors/DeliveryReportActor.js"
import * as Intake from "./actors/Intake.js"
import * as ProviderActor from "./actors/ProviderActor.js"
import * as SendService from "./actors/SendService.js"
import type { EventStore } from "./eventstore/EventStore.js"
import * as JetStreamEventStore from "./eventstore/JetStreamEventStore.js"
import { PublicUrl } from "./http/PublicUrl.js"
import * as HttpServerRole from "./http/Server.js"
import { Nats } from "./nats/Nats.js"
import { ensureStreams } from "./nats/Topology.js"
import * as MessageStatus from "./projections/MessageStatus.js"
import * as ProjectionRunner from "./projections/ProjectionRunner.js"
import { ReadModels } from "./projections/ReadModels.js"
import type { ProvidersFile } from "./providers/ProviderConfig.js"
import { Providers } from "./providers/Providers.js"

export const ROLES = ["intake", "providers", "dlr", "projector", "http"] as const
export type Role = (typeof ROLES)[number]

export interface GatewayOptions {
  readonly roles: ReadonlySet<Role>
  readonly natsUrl: string
  readonly providers: ProvidersFile
  readonly http: { readonly host: string; readonly port: number }
  /** base URL providers call back on; defaults to the HTTP address */
  readonly publicUrl: string
}

const projectorRole = Layer.scopedDiscard(
  Effect.gen(function* () {
    const projection = yield* MessageStatus.projection
    const progress = yield* Ref.make({ position: 0 })
    yield* Effect.forkScoped(ProjectionRunner.run(projection, progress))
  })
)

const roleLayer = (role: Role, options: GatewayOptions) => {
  switch (role) {
    case "intake":
      return Layer.merge(Intake.layer(), SendService.layer)
    case "providers":
      return ProviderActor.layer
    case "dlr":
      return DeliveryReportActor.layer()
    case "projector":
      return projectorRole
    case "http":
      return HttpServerRole.layer(options.http)
  }
}

/** The infrastructure every role shares: NATS, streams, event store, read models, providers. */
export const infrastructure = (options: GatewayOptions) => {
  const nats = Nats.layer(options.natsUrl)
  const topology = Layer.effectDiscard(ensureStreams)
  const stores = Layer.mergeAll(JetStreamEventStore.layer, ReadModels.layer, topology).pipe(
    Layer.provideMerge(nats)
  )
  return Layer.mergeAll(
    stores,
    Providers.layer(options.providers),
    Layer.succeed(PublicUrl, options.publicUrl.replace(/\/+$/, ""))
  )
}

export type Infrastructure = Nats | EventStore | ReadModels | Providers | PublicUrl

export const gateway = (options: GatewayOptions) =>
  Layer.mergeAll(Layer.empty, ...[...options.roles].map((role) => roleLayer(role, options))).pipe(
    Layer.provide(infrastructure(options))
  )
