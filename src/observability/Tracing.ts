/**
 * Traces of a message's life, exported over OTLP/HTTP to `OTEL_EXPORTER_OTLP_ENDPOINT` (or
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`); off when neither is set.
 *
 * The context travels as a W3C `traceparent`: in the NATS header of a `SendSms` (a producer's, or
 * the HTTP and gRPC ingress's copy of their caller's), then of each work item, and of each stored
 * delivery report; `SmsRequested` records the intake's span, so the report actor, which finds its
 * message only once the report is matched, records its span in the message's trace. Spans:
 * `sms.intake` (the producer's child), `sms.provider.submit` (one per call), `sms.delivery_report`
 * (the webhook: its own trace, since providers send no context) and `sms.delivery_report.apply`
 * (in the message's trace, linked to the webhook's).
 *
 * Off, nothing of the SDK is loaded, no header is read or written, and each hook is one check of
 * `active`; the hot paths call the hooks once per batch or per call, never building anything first.
 * A module-level tracer rather than a service: the webhook's fast path and the publish promises run
 * outside any Effect.
 */
import {
  context,
  type Link,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
  TraceFlags
} from "@opentelemetry/api"
import { Effect, Layer } from "effect"

type Attributes = Readonly<Record<string, string | number | boolean>>

let active: Tracer | undefined

/** Whether traces are recorded (hooks may skip their work otherwise). */
export const tracing = (): boolean => active !== undefined

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/

/** The span context of a W3C `traceparent`, or undefined for anything else (never trusted as more). */
const spanContextOf = (traceparent: string | undefined) => {
  if (traceparent === undefined) return undefined
  const parts = TRACEPARENT.exec(traceparent)
  if (parts === null) return undefined
  const [, traceId = "", spanId = "", flags = "00"] = parts
  const spanContext = { traceId, spanId, traceFlags: Number.parseInt(flags, 16), isRemote: true }
  return trace.isSpanContextValid(spanContext) ? spanContext : undefined
}

/** A checked `traceparent` header value, or undefined. */
export const validTraceparent = (value: unknown): string | undefined =>
  typeof value === "string" && spanContextOf(value) !== undefined ? value : undefined

export interface SpanOptions {
  readonly name: string
  readonly kind: "server" | "client" | "consumer" | "producer" | "internal"
  /** the parent's `traceparent`; none (or an invalid one): a new trace */
  readonly parent?: string | undefined
  /** other spans this one follows from (a batch, a report's webhook) */
  readonly links?: ReadonlyArray<string | undefined>
  readonly attributes?: Attributes
  /** epoch milliseconds; now when absent */
  readonly startTime?: number
}

export interface OpenSpan {
  /** this span as a `traceparent`, for what it causes */
  readonly traceparent: string
  readonly end: (outcome?: {
    readonly error?: string
    readonly attributes?: Attributes
    readonly at?: number
  }) => void
}

const kinds = {
  server: SpanKind.SERVER,
  client: SpanKind.CLIENT,
  consumer: SpanKind.CONSUMER,
  producer: SpanKind.PRODUCER,
  internal: SpanKind.INTERNAL
} as const

const hex2 = (n: number) => n.toString(16).padStart(2, "0")

/** Starts a span, or answers undefined while tracing is off. */
export const startSpan = (options: SpanOptions): OpenSpan | undefined => {
  const tracer = active
  if (tracer === undefined) return undefined
  const parent = spanContextOf(options.parent)
  const links: Array<Link> = []
  for (const link of options.links ?? []) {
    const linked = spanContextOf(link)
    if (linked !== undefined) links.push({ context: linked })
  }
  const span = tracer.startSpan(
    options.name,
    {
      kind: kinds[options.kind],
      links,
      ...(options.attributes === undefined ? {} : { attributes: options.attributes }),
      ...(options.startTime === undefined ? {} : { startTime: options.startTime }),
      // a span without a parent starts a trace: never the ambient context's
      root: parent === undefined
    },
    parent === undefined ? undefined : trace.setSpanContext(context.active(), parent)
  )
  const own = span.spanContext()
  return {
    traceparent: `00-${own.traceId}-${own.spanId}-${hex2(own.traceFlags & TraceFlags.SAMPLED)}`,
    end: (outcome) => {
      if (outcome?.attributes !== undefined) span.setAttributes(outcome.attributes)
      if (outcome?.error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.error })
      span.end(outcome?.at)
    }
  }
}

/** A span whose work is over (its start and end known): recorded at once. */
export const recordSpan = (
  options: SpanOptions & { readonly endTime: number; readonly error?: string | undefined }
): void => {
  startSpan(options)?.end({
    at: options.endTime,
    ...(options.error === undefined ? {} : { error: options.error })
  })
}

/** Where traces go: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (as given) or `OTEL_EXPORTER_OTLP_ENDPOINT` (+ `/v1/traces`). */
export const otlpEndpointFromEnv = (env: NodeJS.ProcessEnv = process.env): string | undefined => {
  const traces = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim()
  if (traces) return traces
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim()
  return base ? `${base.replace(/\/+$/, "")}/v1/traces` : undefined
}

type Sdk = typeof import("@opentelemetry/sdk-trace")

/**
 * The standard `OTEL_TRACES_SAMPLER` (and `OTEL_TRACES_SAMPLER_ARG`, a ratio), which this SDK
 * release leaves to its callers: `parentbased_always_on` (the default), `parentbased_traceidratio`,
 * `parentbased_always_off`, `always_on`, `always_off`, `traceidratio`.
 */
export const samplerFromEnv = (sdk: Sdk, env: NodeJS.ProcessEnv = process.env) => {
  const ratio = Number.parseFloat(env.OTEL_TRACES_SAMPLER_ARG ?? "1")
  const byRatio = () =>
    new sdk.TraceIdRatioBasedSampler(Number.isFinite(ratio) ? Math.min(Math.max(ratio, 0), 1) : 1)
  switch (env.OTEL_TRACES_SAMPLER?.trim()) {
    case "always_on":
      return new sdk.AlwaysOnSampler()
    case "always_off":
      return new sdk.AlwaysOffSampler()
    case "traceidratio":
      return byRatio()
    case "parentbased_always_off":
      return new sdk.ParentBasedSampler({ root: new sdk.AlwaysOffSampler() })
    case "parentbased_traceidratio":
      return new sdk.ParentBasedSampler({ root: byRatio() })
    default:
      return new sdk.ParentBasedSampler({ root: new sdk.AlwaysOnSampler() })
  }
}

const endpointOf = (url: string) => {
  try {
    const parsed = new URL(url)
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`
  } catch {
    return "(not a url)"
  }
}

/**
 * Records traces to `url` for the layer's life (flushed when it closes); nothing without a url.
 * The SDK and the exporter are loaded only here, so a gateway without traces never loads them.
 */
export const layer = (url: string | undefined = otlpEndpointFromEnv()) =>
  url === undefined
    ? Layer.empty
    : Layer.scopedDiscard(
        Effect.acquireRelease(
          Effect.promise(async () => {
            const [sdk, { OTLPTraceExporter }, { resourceFromAttributes }] = await Promise.all([
              import("@opentelemetry/sdk-trace"),
              import("@opentelemetry/exporter-trace-otlp-http"),
              import("@opentelemetry/resources")
            ])
            const { TracerProvider, BatchSpanProcessor } = sdk
            const provider = new TracerProvider({
              sampler: samplerFromEnv(sdk),
              resource: resourceFromAttributes({
                "service.name": process.env.OTEL_SERVICE_NAME?.trim() || "sms-gateway"
              }),
              spanProcessors: [
                new BatchSpanProcessor({
                  exporter: new OTLPTraceExporter({ url }),
                  // about four spans per message: the defaults (2,048 queued, sent every 5 s) would
                  // drop most of them at a thousand messages a second
                  maxQueueSize: 32_768,
                  maxExportBatchSize: 2_048,
                  scheduledDelayMillis: 1_000
                })
              ]
            })
            active = provider.getTracer("sms-gateway")
            return provider
          }),
          (provider) =>
            Effect.promise(() => {
              active = undefined
              return provider.shutdown().catch(() => undefined)
            })
        ).pipe(
          // the endpoint without what a url may carry besides it (credentials, a query)
          Effect.zipLeft(
            Effect.logInfo("traces exported over OTLP").pipe(
              Effect.annotateLogs({ endpoint: endpointOf(url) })
            )
          )
        )
      )

/**
 * The `traceparent` header of a NATS message, when it is one (never forwarded otherwise); not even
 * looked for while traces are off.
 */
export const traceparentOf = (msg: {
  readonly headers?: { readonly get: (key: string) => string } | undefined
}): string | undefined =>
  active === undefined ? undefined : validTraceparent(msg.headers?.get("traceparent"))
