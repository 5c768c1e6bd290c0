/** The configured providers and their adapters. */
import { Context, Effect, Layer } from "effect"
import * as GenericHttp from "./GenericHttp.js"
import * as Twilio from "./Twilio.js"
import * as Vonage from "./Vonage.js"
import type { ProviderAdapter } from "./ProviderAdapter.js"
import { type ProviderEntry, type ProvidersFile, secretFromEnv } from "./ProviderConfig.js"

export interface ConfiguredProvider {
  readonly config: ProviderEntry
  readonly adapter: ProviderAdapter
}

export interface ProvidersService {
  readonly all: ReadonlyArray<ConfiguredProvider>
  readonly get: (id: string) => ConfiguredProvider | undefined
}

/** Builds the adapter of one configured provider, reading its secrets from the environment. */
const adapterFor = (config: ProviderEntry) =>
  Effect.gen(function* () {
    const secret = (variable: string) => secretFromEnv(config.id, variable)
    const { id, timeoutMs } = config
    switch (config.type) {
      case "generic-http":
        return yield* GenericHttp.make({
          id,
          timeoutMs,
          baseUrl: config.baseUrl,
          apiKey: yield* secret(config.apiKeyEnv),
          webhookSecret: yield* secret(config.webhookSecretEnv),
          path: config.path,
          idField: config.idField,
          statusMap: config.statusMap
        })
      case "twilio":
        return yield* Twilio.make({
          id,
          timeoutMs,
          baseUrl: config.baseUrl,
          accountSid: config.accountSid,
          authToken: yield* secret(config.authTokenEnv),
          from: config.from,
          messagingServiceSid: config.messagingServiceSid
        })
      case "vonage":
        return yield* Vonage.make({
          id,
          timeoutMs,
          baseUrl: config.baseUrl,
          reportsBaseUrl: config.reportsBaseUrl,
          apiKey: yield* secret(config.apiKeyEnv),
          apiSecret: yield* secret(config.apiSecretEnv),
          signatureSecret: yield* secret(config.signatureSecretEnv),
          signatureMethod: config.signatureMethod,
          from: config.from
        })
    }
  })

export class Providers extends Context.Tag("sms-gateway/Providers")<Providers, ProvidersService>() {
  static make = (file: ProvidersFile) =>
    Effect.gen(function* () {
      const all = yield* Effect.forEach(file.providers, (config) =>
        Effect.map(adapterFor(config), (adapter): ConfiguredProvider => ({ config, adapter }))
      )
      const byId = new Map(all.map((p) => [p.config.id as string, p]))
      return Providers.of({ all, get: (id) => byId.get(id) })
    })

  static layer = (file: ProvidersFile): Layer.Layer<Providers, unknown> =>
    Layer.scoped(Providers, Providers.make(file))
}
