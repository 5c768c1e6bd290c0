/**
 * The EventStoreDB adapter, imported only when it is chosen: its gRPC client costs about 25 MB of
 * memory in every process that loads it, and the embedded default never uses it.
 */
import { Effect, Layer } from "effect"
import type { EventStore, EventStoreError } from "./EventStore.js"

export const DEFAULT_URL = "esdb://127.0.0.1:2113?tls=false"

export const layerFromUrl = (url: string): Layer.Layer<EventStore, EventStoreError> =>
  Layer.unwrapEffect(
    Effect.map(
      Effect.promise(() => import("./EventStoreDbEventStore.js")),
      (adapter) => adapter.layerFromUrl(url)
    )
  )

/** `ESDB_URL` (default `esdb://127.0.0.1:2113?tls=false`), as `EVENT_STORE=esdb` selects it. */
export const layer: Layer.Layer<EventStore, EventStoreError> = Layer.unwrapEffect(
  Effect.sync(() => layerFromUrl(process.env.ESDB_URL ?? DEFAULT_URL))
)
