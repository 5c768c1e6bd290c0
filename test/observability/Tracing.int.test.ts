/**
 * Traces of a message's life (issue 13, item 7), through the whole in-process gateway on a real
 * nats-server, exported over OTLP/HTTP to a receiver this test runs on loopback: a producer's
 * `traceparent` header on `SendSms` is followed by the intake, the provider call, and the report
 * actor; the webhook's span is linked. Without an endpoint nothing is recorded or carried.
 */
import { randomBytes, randomUUID } from "node:crypto"
import { createServer } from "node:http"
import { headers } from "@nats-io/nats-core"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { messageIdFor } from "../../src/domain/Ids.js"
import { Nats } from "../../src/nats/Nats.js"
import * as sdk from "@opentelemetry/sdk-trace"
import { otlpEndpointFromEnv, samplerFromEnv, tracing } from "../../src/observability/Tracing.js"
import { issueApiKey } from "../support/apiKeys.js"
import { eventually } from "../support/gateway.js"
import { serveOnLoopback } from "../support/httpServer.js"
import { awaitFinal, providerEntry, simulator, startGateway } from "../support/inProcessGateway.js"

interface ReceivedSpan {
  readonly traceId: string
  readonly spanId: string
  readonly parentSpanId?: string
  readonly name: string
  readonly links?: ReadonlyArray<{ readonly traceId: string; readonly spanId: string }>
  readonly attributes?: ReadonlyArray<{ readonly key: string; readonly value: Record<string, unknown> }>
}

/** An OTLP/HTTP (JSON) trace receiver: every span posted to `/v1/traces`. */
const otlpReceiver = Effect.gen(function* () {
  const spans: Array<ReceivedSpan> = []
  const server = createServer((req, res) => {
    const chunks: Array<Buffer> = []
    req.on("data", (chunk: Buffer) => chunks.push(chunk))
    req.on("end", () => {
      if (req.url === "/v1/traces" && req.headers["content-type"]?.startsWith("application/json")) {
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
          resourceSpans: ReadonlyArray<{ scopeSpans: ReadonlyArray<{ spans: ReadonlyArray<ReceivedSpan> }> }>
        }
        for (const resource of body.resourceSpans)
          for (const scope of resource.scopeSpans) spans.push(...scope.spans)
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}")
    })
  })
  const port = yield* serveOnLoopback(server)
  return { url: `http://127.0.0.1:${port}/v1/traces`, spans }
})

const attribute = (span: ReceivedSpan, key: string) => {
  const value = span.attributes?.find((a) => a.key === key)?.value
  return value === undefined ? undefined : Object.values(value)[0]
}

const hex = (bytes: number) => randomBytes(bytes).toString("hex")

describe("traces of a message's life", () => {
  it("the standard sampler settings choose the sampler", () => {
    expect(String(samplerFromEnv(sdk, {}))).toMatch(/^ParentBased\{root=AlwaysOnSampler,/)
    expect(
      String(
        samplerFromEnv(sdk, {
          OTEL_TRACES_SAMPLER: "parentbased_traceidratio",
          OTEL_TRACES_SAMPLER_ARG: "0.1"
        })
      )
    ).toMatch(/^ParentBased\{root=TraceIdRatioBased\{0\.1\},/)
    expect(String(samplerFromEnv(sdk, { OTEL_TRACES_SAMPLER: "always_off" }))).toBe("AlwaysOffSampler")
    expect(
      String(samplerFromEnv(sdk, { OTEL_TRACES_SAMPLER: "traceidratio", OTEL_TRACES_SAMPLER_ARG: "7" }))
    ).toBe("TraceIdRatioBased{1}")
  })

  it.scopedLive(
    "a producer's traceparent is followed by the intake, the provider call and the report actor",
    () =>
      Effect.gen(function* () {
        const receiver = yield* otlpReceiver
        const sim = yield* simulator()
        const gw = yield* startGateway([providerEntry("sim", sim.url)], { traces: receiver.url })
        expect(tracing()).toBe(true)

        const producerTrace = hex(16)
        const producerSpan = hex(8)
        const command = { clientId: "t", idempotencyKey: randomUUID(), to: "+447911123456", body: "traced" }
        const messageId = messageIdFor(command.clientId, command.idempotencyKey)
        const carried = headers()
        carried.set("traceparent", `00-${producerTrace}-${producerSpan}-01`)
        const { js } = yield* gw.provide(Nats)
        yield* Effect.promise(() =>
          js.publish("sms.commands.send", JSON.stringify(command), { headers: carried })
        )
        const [loaded] = yield* awaitFinal(gw, [messageId])
        expect(loaded?.state.status).toBe("delivered")

        const spans = yield* eventually(
          Effect.suspend(() => {
            const names = new Set(receiver.spans.map((span) => span.name))
            return [
              "sms.intake",
              "sms.provider.submit",
              "sms.delivery_report",
              "sms.delivery_report.apply"
            ].every((name) => names.has(name))
              ? Effect.succeed(receiver.spans)
              : Effect.fail(`spans so far: ${[...names].join(", ")}`)
          }),
          "20 seconds"
        )
        const one = (name: string) => {
          const found = spans.filter((span) => span.name === name)
          expect(found, name).toHaveLength(1)
          return found[0] as ReceivedSpan
        }
        const intake = one("sms.intake")
        expect(intake.traceId).toBe(producerTrace)
        expect(intake.parentSpanId).toBe(producerSpan)
        expect(attribute(intake, "sms.message_id")).toBe(messageId)
        expect(attribute(intake, "sms.intake.outcome")).toBe("queued")

        const submit = one("sms.provider.submit")
        expect(submit.traceId).toBe(producerTrace)
        expect(submit.parentSpanId).toBe(intake.spanId)
        expect(attribute(submit, "sms.provider")).toBe("sim")
        expect(attribute(submit, "sms.attempt")).toBe(1)

        // the webhook's span has a trace of its own (the provider sent no context); the report
        // actor's is in the message's trace, linked to it
        const received = one("sms.delivery_report")
        expect(received.traceId).not.toBe(producerTrace)
        const applied = one("sms.delivery_report.apply")
        expect(applied.traceId).toBe(producerTrace)
        expect(applied.parentSpanId).toBe(intake.spanId)
        expect(applied.links?.map((link) => [link.traceId, link.spanId])).toEqual([
          [received.traceId, received.spanId]
        ])

        // the message's history keeps the context it was requested under
        const requested = loaded?.state.status === "delivered" ? loaded.state.request : undefined
        expect(requested?.traceparent).toBe(`00-${producerTrace}-${intake.spanId}-01`)

        // an HTTP caller's traceparent header is carried with its command the same way
        const apiKey = yield* issueApiKey(gw.natsUrl, "traced-web", "client")
        const callerTrace = hex(16)
        const callerSpan = hex(8)
        const response = yield* Effect.promise(() =>
          fetch(`${gw.publicUrl}/v1/messages`, {
            method: "POST",
            headers: {
              "content-type": "application/json",
              "x-api-key": apiKey,
              "idempotency-key": randomUUID(),
              traceparent: `00-${callerTrace}-${callerSpan}-01`
            },
            body: JSON.stringify({ to: "+447911123457", body: "traced over http" })
          })
        )
        expect(response.status).toBe(202)
        const { messageId: httpMessageId } = (yield* Effect.promise(() => response.json())) as {
          messageId: string
        }
        const httpIntake = yield* eventually(
          Effect.suspend(() => {
            const found = receiver.spans.find(
              (span) => span.name === "sms.intake" && span.traceId === callerTrace
            )
            return found === undefined
              ? Effect.fail("no intake span in the caller's trace yet")
              : Effect.succeed(found)
          }),
          "20 seconds"
        )
        expect(httpIntake.parentSpanId).toBe(callerSpan)
        expect(attribute(httpIntake, "sms.message_id")).toBe(httpMessageId)
      }),
    60_000
  )

  it.scopedLive("without an OTLP endpoint nothing is recorded or carried", () =>
    Effect.gen(function* () {
      expect(tracing()).toBe(false)
      expect(otlpEndpointFromEnv({})).toBeUndefined()
      expect(otlpEndpointFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318/" })).toBe(
        "http://collector:4318/v1/traces"
      )
      expect(
        otlpEndpointFromEnv({
          OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318",
          OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://traces:4318/custom"
        })
      ).toBe("http://traces:4318/custom")

      const sim = yield* simulator()
      const gw = yield* startGateway([providerEntry("sim", sim.url)])
      const command = { clientId: "t", idempotencyKey: randomUUID(), to: "+447911123456", body: "untraced" }
      const messageId = messageIdFor(command.clientId, command.idempotencyKey)
      const carried = headers()
      carried.set("traceparent", `00-${hex(16)}-${hex(8)}-01`)
      const { js } = yield* gw.provide(Nats)
      yield* Effect.promise(() =>
        js.publish("sms.commands.send", JSON.stringify(command), { headers: carried })
      )
      const [loaded] = yield* awaitFinal(gw, [messageId])
      expect(loaded?.state.status).toBe("delivered")
      const requested = loaded?.state.status === "delivered" ? loaded.state.request : undefined
      expect(requested?.messageId).toBe(messageId)
      expect(requested?.traceparent).toBeUndefined()
    })
  )
})
