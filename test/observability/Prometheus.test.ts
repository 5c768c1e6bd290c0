import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Counter, Gauge, Histogram, Registry } from "prom-client"
import { render, renderSnapshot } from "../../src/observability/Prometheus.js"
import { parsePrometheusText, sampleValue } from "../support/prometheus.js"

describe("Prometheus text format", () => {
  it.effect("counters, gauges, histograms and scrape-time samples render as strict exposition text", () =>
    Effect.gen(function* () {
      const registry = new Registry()
      const registers = [registry]
      const counter = new Counter({
        name: "test_render_requests_total",
        help: "requests\nwith a newline",
        labelNames: ["path"],
        registers
      })
      const gauge = new Gauge({ name: "test_render_queue_depth", help: "depth", registers })
      const histogram = new Histogram({
        name: "test_render_latency_seconds",
        help: "latency",
        labelNames: ["provider"],
        buckets: [0.1, 0.5, 1],
        registers
      })
      counter.inc({ path: 'a "quoted" \\ value\n' })
      counter.inc({ path: "/plain" }, 2)
      gauge.set(7)
      for (const value of [0.05, 0.2, 0.7, 3]) histogram.observe({ provider: "sim" }, value)

      const text = yield* Effect.promise(() =>
        render(
          [registry],
          [
            {
              name: "test_render_scraped",
              help: "computed at scrape time",
              type: "gauge",
              labels: { stream: "S" },
              value: 4
            },
            {
              name: "test_render_scraped",
              help: "computed at scrape time",
              type: "gauge",
              labels: { stream: "T", kind: "k" },
              value: 5
            },
            {
              name: "test_render_scraped_total",
              help: "counted elsewhere",
              type: "counter",
              labels: { type: "x" },
              value: 0
            }
          ]
        )
      )
      const families = parsePrometheusText(text)
      expect(families.get("test_render_requests_total")?.type).toBe("counter")
      expect(sampleValue(families, "test_render_requests_total", { path: 'a "quoted" \\ value\n' })).toBe(1)
      expect(sampleValue(families, "test_render_requests_total", { path: "/plain" })).toBe(2)
      expect(sampleValue(families, "test_render_queue_depth")).toBe(7)
      expect(
        sampleValue(families, "test_render_latency_seconds_bucket", { provider: "sim", le: "0.1" })
      ).toBe(1)
      expect(sampleValue(families, "test_render_latency_seconds_bucket", { provider: "sim", le: "1" })).toBe(
        3
      )
      expect(
        sampleValue(families, "test_render_latency_seconds_bucket", { provider: "sim", le: "+Inf" })
      ).toBe(4)
      expect(sampleValue(families, "test_render_latency_seconds_count", { provider: "sim" })).toBe(4)
      expect(sampleValue(families, "test_render_latency_seconds_sum", { provider: "sim" })).toBeCloseTo(3.95)
      expect(sampleValue(families, "test_render_scraped", { stream: "S" })).toBe(4)
      expect(sampleValue(families, "test_render_scraped", { stream: "T", kind: "k" })).toBe(5)
      expect(families.get("test_render_scraped_total")?.type).toBe("counter")
      expect(sampleValue(families, "test_render_scraped_total", { type: "x" })).toBe(0)
    })
  )

  it.effect("the gateway's registry renders with the process's own figures and stays valid", () =>
    Effect.gen(function* () {
      const families = parsePrometheusText(yield* renderSnapshot([]))
      expect(families.get("sms_messages_total")?.type).toBe("counter")
      expect(families.get("sms_provider_request_duration_seconds")?.type).toBe("histogram")
      expect(sampleValue(families, "process_resident_memory_bytes")).toBeGreaterThan(0)
      expect(families.has("nodejs_eventloop_lag_seconds")).toBe(true)
    })
  )

  it("the test parser refuses what Prometheus would refuse", () => {
    expect(() => parsePrometheusText("a 1")).toThrow(/newline/)
    expect(() => parsePrometheusText("1bad 1\n")).toThrow(/name/)
    expect(() => parsePrometheusText('a{b="c} 1\n')).toThrow()
    expect(() => parsePrometheusText("a 1\nb 1\na 2\n")).toThrow(/together|duplicate/)
    expect(() => parsePrometheusText("a 1\n# TYPE a counter\n")).toThrow(/after samples/)
    expect(() =>
      parsePrometheusText(
        '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'
      )
    ).toThrow(/cumulative/)
    expect(() => parsePrometheusText("# TYPE c counter\nc -1\n")).toThrow(/negative/)
  })

  it.effect("an empty registry still renders a valid document", () =>
    Effect.gen(function* () {
      expect(parsePrometheusText(yield* Effect.promise(() => render([], []))).size).toBe(0)
    })
  )
})
