/** A whole gateway in the test process, on a fresh nats-server, against simulators the test controls. */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { randomUUID } from "node:crypto"
import { Context, type Duration, Effect, Layer, Schema } from "effect"
import { type LoadedMessage, load } from "../../src/messages/MessageRepository.js"
import { messageIdFor, type MessageId } from "../../src/domain/Ids.js"
import { infrastructure, ROLES, roles } from "../../src/main.js"
import { Nats } from "../../src/nats/Nats.js"
import { startNatsServer } from "../../src/nats/NatsServer.js"
import * as Tracing from "../../src/observability/Tracing.js"
import { signDeliveryReport } from "../../src/providers/GenericHttp.js"
import { ProvidersFile } from "../../src/providers/ProviderConfig.js"
import * as Simulator from "../../src/providers/Simulator.js"
import { eventually, freePort } from "./gateway.js"

export const SIM_KEY = "in-process-key"
export const SIM_SECRET = "in-process-secret"
process.env.IN_PROCESS_SIM_KEY = SIM_KEY
process.env.IN_PROCESS_SIM_SECRET = SIM_SECRET

/** Fast policies so retries and breakers play out in a test's time. */
export const fast = {
  retry: { initialDelayMs: 50, maxRetries: 4, maxDelayMs: 200 },
  circuitBreaker: { failureThreshold: 3, openForMs: 300 }
}

export const simulator = (options: Partial<Simulator.SimulatorOptions> = {}) =>
  Simulator.start({
    apiKey: SIM_KEY,
    webhookSecret: SIM_SECRET,
    seed: 11,
    dlr: { delayMs: { min: 0, max: 5 } },
    ...options
  })

export const providerEntry = (id: string, url: string, extra: Record<string, unknown> = {}) => ({
  id,
  type: "generic-http",
  baseUrl: url,
  apiKeyEnv: "IN_PROCESS_SIM_KEY",
  webhookSecretEnv: "IN_PROCESS_SIM_SECRET",
  timeoutMs: 30_000,
  ...fast,
  ...extra
})

/**
 * Starts nats-server and every role of the gateway with these providers, for the current scope;
 * `traces`: an OTLP/HTTP url the gateway's traces go to.
 */
export const startGateway = (
  providers: ReadonlyArray<Record<string, unknown>>,
  extra: { readonly traces?: string } = {}
) =>
  Effect.gen(function* () {
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => mkdtempSync(join(tmpdir(), "sms-gw-inproc-"))),
      (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
    )
    const nats = yield* startNatsServer({ storeDir: dir })
    const port = yield* freePort
    const file = Schema.decodeUnknownSync(ProvidersFile)({ providers })
    const options = {
      roles: new Set(ROLES),
      natsUrl: nats.url,
      providers: file,
      http: { host: "127.0.0.1", port },
      publicUrl: `http://127.0.0.1:${port}`
    }
    const context = yield* Layer.build(infrastructure(options))
    if (extra.traces !== undefined) yield* Layer.build(Tracing.layer(extra.traces))
    yield* Layer.build(roles(options).pipe(Layer.provide(Layer.succeedContext(context))))
    const { js } = Context.get(context, Nats)
    const send = (overrides: Record<string, unknown> = {}) =>
      Effect.gen(function* () {
        const command = {
          clientId: "t",
          idempotencyKey: randomUUID(),
          to: "+447911123456",
          body: "hello",
          ...overrides
        }
        yield* Effect.promise(() => js.publish("sms.commands.send", JSON.stringify(command)))
        return messageIdFor(command.clientId, command.idempotencyKey)
      })
    return {
      natsUrl: nats.url,
      publicUrl: options.publicUrl,
      send,
      load: (id: MessageId) => load(id).pipe(Effect.provide(context)),
      provide: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.provide(effect, context)
    }
  })

/** Posts a generic-http delivery report, signed as the simulators sign theirs, to `provider`'s webhook; the status. */
export const postSignedReport = (publicUrl: string, provider: string, report: Record<string, unknown>) =>
  Effect.promise(async () => {
    const body = JSON.stringify(report)
    const signedAt = Math.floor(Date.now() / 1000)
    const response = await fetch(`${publicUrl}/v1/providers/${provider}/delivery-reports`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-signature": signDeliveryReport(SIM_SECRET, body, signedAt),
        "x-signature-timestamp": String(signedAt)
      },
      body
    })
    return response.status
  })

/** Until every message is final (delivered or failed); its loaded state per id. */
export const awaitFinal = (
  gw: { readonly load: (id: MessageId) => Effect.Effect<LoadedMessage, unknown, never> },
  ids: ReadonlyArray<MessageId>,
  within: Duration.DurationInput = "30 seconds"
) =>
  eventually(
    Effect.gen(function* () {
      const loaded = yield* Effect.forEach(ids, gw.load, { concurrency: 32 })
      const open = loaded.filter((l) => l.state.status !== "delivered" && l.state.status !== "failed").length
      return open === 0 ? loaded : yield* Effect.fail(`${open} of ${ids.length} not final`)
    }),
    within
  )
