/** The HTTP role: the API on a Node HTTP server, with its OpenAPI document at /docs. */
import { createServer } from "node:http"
import { HttpApiBuilder, HttpApiSwagger, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Layer } from "effect"
import { GatewayApi } from "./Api.js"
import { DeliveryReportsLive, HealthLive, MessagesLive } from "./Handlers.js"

export const ApiLive = HttpApiBuilder.api(GatewayApi).pipe(
  Layer.provide([MessagesLive, DeliveryReportsLive, HealthLive])
)

/** Serves the API; provide an `HttpServer` (e.g. `listen`, or `NodeHttpServer.layerTest`). */
export const serveApi = HttpApiBuilder.serve().pipe(
  Layer.provide(HttpApiSwagger.layer({ path: "/docs" })),
  Layer.provide(ApiLive)
)

export const listen = (options: { readonly port: number; readonly host: string }) =>
  NodeHttpServer.layer(createServer, options)

export const layer = (options: { readonly port: number; readonly host: string }) =>
  serveApi.pipe(HttpServer.withLogAddress, Layer.provide(listen(options)))
