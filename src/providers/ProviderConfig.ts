/**
 * The providers file (`PROVIDERS_CONFIG`, JSON). Credentials are never written in it: each names
 * the environment variable that holds it.
 *
 * { "providers": [ { "id": "sim", "type": "generic-http", "baseUrl": "http://127.0.0.1:9100",
 *     "apiKeyEnv": "SIM_API_KEY", "webhookSecretEnv": "SIM_WEBHOOK_SECRET",
 *     "priority": 0, "concurrency": 64 } ] }
 */
import { readFileSync } from "node:fs"
import { Data, Effect, Either, ParseResult, Schema } from "effect"
import { ProviderId } from "../domain/SendSms.js"

export const ProviderEntry = Schema.Struct({
  id: ProviderId,
  type: Schema.Literal("generic-http"),
  baseUrl: Schema.String.pipe(Schema.pattern(/^https?:\/\//, { message: () => "must be an http(s) URL" })),
  apiKeyEnv: Schema.String,
  webhookSecretEnv: Schema.String,
  /** lower is preferred when no provider list is given */
  priority: Schema.optionalWith(Schema.Int, { default: () => 0 }),
  /** provider calls in flight at once (JetStream `max_ack_pending`) */
  concurrency: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 10_000)), { default: () => 64 }),
  timeoutMs: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 10_000 })
})
export type ProviderEntry = typeof ProviderEntry.Type

export const ProvidersFile = Schema.Struct({
  providers: Schema.Array(ProviderEntry).pipe(Schema.minItems(1))
}).pipe(
  Schema.filter((file) => {
    const ids = file.providers.map((p) => p.id)
    return new Set(ids).size === ids.length || "provider ids must be unique"
  })
)
export type ProvidersFile = typeof ProvidersFile.Type

export class ProviderConfigError extends Data.TaggedError("ProviderConfigError")<{
  readonly message: string
}> {}

export const decodeProvidersFile = (json: unknown, source: string) =>
  Either.mapLeft(
    Schema.decodeUnknownEither(ProvidersFile)(json, { errors: "all" }),
    (error) =>
      new ProviderConfigError({
        message: `${source} is not a valid providers file:\n${ParseResult.TreeFormatter.formatErrorSync(error)}`
      })
  )

export const loadProvidersFile = (path: string) =>
  Effect.try({
    try: () => JSON.parse(readFileSync(path, "utf8")) as unknown,
    catch: (cause) => new ProviderConfigError({ message: `cannot read ${path}: ${String(cause)}` })
  }).pipe(Effect.flatMap((json) => decodeProvidersFile(json, path)))

/** A credential named by the file, read from the environment. */
export const secretFromEnv = (provider: string, variable: string) =>
  Effect.suspend(() => {
    const value = process.env[variable]
    return value
      ? Effect.succeed(value)
      : Effect.fail(
          new ProviderConfigError({
            message: `provider ${provider}: environment variable ${variable} is not set`
          })
        )
  })
