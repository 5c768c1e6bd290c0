/** Issues an API key straight into a gateway's client registry (KV `sms_clients`), as `clients add` does. */
import { Effect, Layer } from "effect"
import { Clients, type Scope } from "../../src/clients/Clients.js"
import { Nats } from "../../src/nats/Nats.js"

export const issueApiKey = (natsUrl: string, clientId: string, scope: Scope, dailyQuota?: number) =>
  Effect.flatMap(Clients, (clients) => clients.issueKey({ clientId, scope, dailyQuota })).pipe(
    Effect.map(({ apiKey }) => apiKey),
    Effect.provide(Clients.layer.pipe(Layer.provide(Nats.layer(natsUrl, "test-api-keys"))))
  )
