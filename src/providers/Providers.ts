/** The configured providers, their adapters, and the choice of provider for a new message. */
import { Context, Effect, Layer } from "effect"
import * as GenericHttp from "./GenericHttp.js"
import type { ProviderAdapter } from "./ProviderAdapter.js"
import { type ProviderEntry, type ProvidersFile, secretFromEnv } from "./ProviderConfig.js"

export interface ConfiguredProvider {
  readonly config: ProviderEntry
  readonly adapter: ProviderAdapter
}

export interface ProvidersService {
  readonly all: ReadonlyArray<ConfiguredProvider>
  readonly get: (id: string) => ConfiguredProvider | undefined
  /**
   * The provider for a message's first attempt: an explicit list is honoured exclusively and in
   * order (its first configured entry); otherwise the preferred provider by priority.
   */
  readonly route: (explicit: ReadonlyArray<string> | undefined) => ConfiguredProvider | undefined
}

export class Providers extends Context.Tag("sms-gateway/Providers")<Providers, ProvidersService>() {
  static make = (file: ProvidersFile) =>
    Effect.gen(function* () {
      const all = yield* Effect.forEach(file.providers, (config) =>
        Effect.gen(function* () {
          const adapter = yield* GenericHttp.make({
            id: config.id,
            baseUrl: config.baseUrl,
            apiKey: yield* secretFromEnv(config.id, config.apiKeyEnv),
            webhookSecret: yield* secretFromEnv(config.id, config.webhookSecretEnv),
            timeoutMs: config.timeoutMs
          })
          return { config, adapter } satisfies ConfiguredProvider
        })
      )
      const byId = new Map(all.map((p) => [p.config.id as string, p]))
      const byPreference = [...all].sort((a, b) => a.config.priority - b.config.priority)
      return Providers.of({
        all,
        get: (id) => byId.get(id),
        route: (explicit) =>
          explicit === undefined
            ? byPreference[0]
            : explicit.map((id) => byId.get(id)).find((p): p is ConfiguredProvider => p !== undefined)
      })
    })

  static layer = (file: ProvidersFile): Layer.Layer<Providers, unknown> =>
    Layer.scoped(Providers, Providers.make(file))
}
