/**
 * The gateway's infrastructure with no role running, on a test's nats-server: for tests that start
 * the one actor they look at (the intake, mostly). Its one provider, `sim`, is never reached.
 */
import { Layer, Schema } from "effect"
import { infrastructure } from "../../src/main.js"
import { ProvidersFile } from "../../src/providers/ProviderConfig.js"

process.env.UNREACHED_SIM_KEY = "k"
process.env.UNREACHED_SIM_SECRET = "s"

export const infrastructureAlone = (natsUrl: string) =>
  Layer.build(
    infrastructure({
      roles: new Set<never>(),
      natsUrl,
      providers: Schema.decodeUnknownSync(ProvidersFile)({
        providers: [
          {
            id: "sim",
            type: "generic-http",
            baseUrl: "http://127.0.0.1:1",
            apiKeyEnv: "UNREACHED_SIM_KEY",
            webhookSecretEnv: "UNREACHED_SIM_SECRET"
          }
        ]
      }),
      http: { host: "127.0.0.1", port: 0 },
      publicUrl: "http://127.0.0.1:1"
    })
  )
