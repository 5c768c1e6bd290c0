/**
 * The operator's console in the HTTP role: its routes on the HttpApi's router (`/console` and
 * below), and what they need that the API does not: the sessions (KV), the sign-in check, and this
 * process's search store with the projector that keeps it current.
 *
 * - `CONSOLE=off` leaves the console out of this process (no route, no store, no projector).
 * - `CONSOLE_SEARCH_DB`: the SQLite file of the search store (default `:memory:`, built from the
 *   events from the first console request of each start on). Each HTTP process needs a file of its own.
 */
import { HttpApiBuilder } from "@effect/platform"
import { Effect, Layer } from "effect"
import { HttpLifecycle } from "../http/Readiness.js"
import { loadAssets } from "./Assets.js"
import { ConsoleAuth } from "./ConsoleAuth.js"
import { type ConsoleServices, handle } from "./Routes.js"
import { SearchProjector } from "./SearchProjector.js"
import { SearchStore } from "./SearchStore.js"
import { ConsoleSessions } from "./Sessions.js"

export const searchFile = (env: NodeJS.ProcessEnv = process.env) => env.CONSOLE_SEARCH_DB ?? ":memory:"

export const isEnabled = (env: NodeJS.ProcessEnv = process.env) => env.CONSOLE !== "off"

/** The console's routes, given its services. */
const routes = HttpApiBuilder.Router.use((router) =>
  Effect.gen(function* () {
    // the pages run with the services this layer was built with (the router's handlers may only need the request)
    const context = yield* Effect.context<ConsoleServices>()
    const lifecycle = yield* HttpLifecycle
    const handler = Effect.provide(
      handle({ assets: loadAssets(), open: () => !lifecycle.isDraining() }),
      context
    )
    yield* router.all("/console", handler)
    yield* router.all("/console/*", handler)
  })
)

const services = (file: string) =>
  Layer.mergeAll(
    ConsoleAuth.layer.pipe(Layer.provideMerge(ConsoleSessions.layer)),
    SearchProjector.layer(file !== ":memory:").pipe(Layer.provideMerge(SearchStore.layer(file)))
  )

/** The console, or nothing when `CONSOLE=off` (read when the HTTP role starts). */
export const layer = Layer.unwrapEffect(
  Effect.sync(() => (isEnabled() ? routes.pipe(Layer.provide(services(searchFile()))) : Layer.empty))
)
