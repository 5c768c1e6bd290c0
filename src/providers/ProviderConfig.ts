/**
 * The providers file (`PROVIDERS_CONFIG`, JSON). Credentials are never written in it: each names
 * the environment variable that holds it.
 *
 * { "providers": [ { "id": "sim", "type": "generic-http", "baseUrl": "http://127.0.0.1:9100",
 *     "apiKeyEnv": "SIM_API_KEY", "webhookSecretEnv": "SIM_WEBHOOK_SECRET",
 *     "priority": 0, "weight": 1, "concurrency": 64, "messagesPerSecond": 100,
 *     "retry": { "initialDelayMs": 5000, "maxRetries": 11, "maxDelayMs": 600000 },
 *     "circuitBreaker": { "failureThreshold": 5, "openForMs": 30000 }, "reportDeadlineMs": 259200000 } ] }
 */
import { readFileSync } from "node:fs"
import { Data, Effect, Either, ParseResult, Schema } from "effect"
import { ProviderId } from "../domain/SendSms.js"
import { GenericHttpConfig } from "./GenericHttp.js"
import { TwilioConfig } from "./Twilio.js"
import { VonageConfig } from "./Vonage.js"

/** Retries on this provider: exponential from `initialDelayMs`, jittered, capped at `maxDelayMs`. */
export const RetryPolicy = Schema.Struct({
  initialDelayMs: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 5_000 }),
  maxRetries: Schema.optionalWith(Schema.Int.pipe(Schema.between(0, 100)), { default: () => 11 }),
  maxDelayMs: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 600_000 })
})
export type RetryPolicy = typeof RetryPolicy.Type

/** Opens after `failureThreshold` consecutive transient failures; probes again after `openForMs`. */
export const BreakerPolicy = Schema.Struct({
  failureThreshold: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 5 }),
  openForMs: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 30_000 })
})
export type BreakerPolicy = typeof BreakerPolicy.Type

/** Providers lose delivery reports: 72 h, after which AWS itself reports a message's status UNKNOWN. */
export const DEFAULT_REPORT_DEADLINE_MS = 72 * 60 * 60 * 1000

/** What every provider has, whatever its wire format. */
const common = {
  id: ProviderId,
  /** lower is preferred when no provider list is given */
  priority: Schema.optionalWith(Schema.Int, { default: () => 0 }),
  /** share of traffic among providers of the same priority */
  weight: Schema.optionalWith(Schema.Number.pipe(Schema.positive()), { default: () => 1 }),
  /** provider calls in flight at once (JetStream `max_ack_pending`) */
  concurrency: Schema.optionalWith(Schema.Int.pipe(Schema.between(1, 10_000)), { default: () => 64 }),
  /** submissions per second, per gateway process (token bucket); none = unlimited */
  messagesPerSecond: Schema.optional(Schema.Number.pipe(Schema.positive())),
  timeoutMs: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), { default: () => 10_000 }),
  retry: Schema.optionalWith(RetryPolicy, { default: () => RetryPolicy.make({}) }),
  circuitBreaker: Schema.optionalWith(BreakerPolicy, { default: () => BreakerPolicy.make({}) }),
  /**
   * how long after a dispatch its final delivery report may come: past it the message is recorded
   * `unknown` (`SmsStatusUnknown`); a later report still wins. Default 72 h, when AWS reports UNKNOWN.
   * Twilio and Vonage are first asked for the message's status: a final answer is recorded instead.
   */
  reportDeadlineMs: Schema.optionalWith(Schema.Int.pipe(Schema.positive()), {
    default: () => DEFAULT_REPORT_DEADLINE_MS
  })
}

/** Every `...Env` field names the environment variable holding a secret. */
export const GenericHttpEntry = Schema.Struct({
  ...common,
  type: Schema.Literal("generic-http"),
  baseUrl: GenericHttpConfig.fields.baseUrl,
  apiKeyEnv: Schema.String,
  webhookSecretEnv: Schema.String,
  path: GenericHttpConfig.fields.path,
  idField: GenericHttpConfig.fields.idField,
  statusMap: GenericHttpConfig.fields.statusMap,
  /**
   * the provider sends our `reference` back in its delivery reports: they then find their message
   * without the provider-id index (Twilio and Vonage always do)
   */
  echoesReference: Schema.optionalWith(Schema.Boolean, { default: () => false })
})

export const TwilioEntry = Schema.Struct({
  ...common,
  type: Schema.Literal("twilio"),
  baseUrl: TwilioConfig.fields.baseUrl,
  accountSid: TwilioConfig.fields.accountSid,
  authTokenEnv: Schema.String,
  from: TwilioConfig.fields.from,
  messagingServiceSid: TwilioConfig.fields.messagingServiceSid
})

export const VonageEntry = Schema.Struct({
  ...common,
  type: Schema.Literal("vonage"),
  baseUrl: VonageConfig.fields.baseUrl,
  /** the Reports API, asked for a message's status at its report deadline; default `https://api.nexmo.com` */
  reportsBaseUrl: VonageConfig.fields.reportsBaseUrl,
  apiKeyEnv: Schema.String,
  apiSecretEnv: Schema.String,
  signatureSecretEnv: Schema.String,
  signatureMethod: VonageConfig.fields.signatureMethod,
  from: VonageConfig.fields.from
})

export const ProviderEntry = Schema.Union(GenericHttpEntry, TwilioEntry, VonageEntry)
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
