import { describe, expect, it } from "@effect/vitest"
import { Effect, Metric, MetricBoundaries } from "effect"
import { render, renderSnapshot } from "../../src/observability/Prometheus.js"
import { parsePrometheusText, sampleValue } from "../support/prometheus.js"

describe("Prometheus text format", () => {
  it.effect("counters, gauges and histograms render as strict exposition text", () =>
    Effect.gen(function* () {
      const counter = Metric.counter("test_render_requests_total", {
        description: "requests\nwith a newline"
      })
      const gauge = Metric.gauge("test_render_queue_depth")
      const histogram = Metric.histogram(
        "test_render_latency_seconds",
        MetricBoundaries.fromIterable([0.1, 0.5, 1]),
        "latency"
      )
      yield* Metric.increment(Metric.tagged(counter, "path", 'a "quoted" \\ value\n'))
      yield* Metric.incrementBy(Metric.tagged(counter, "path", "/plain"), 2)
      yield* Metric.set(gauge, 7)
      for (const value of [0.05, 0.2, 0.7, 3])
        yield* Metric.update(Metric.tagged(histogram, "provider", "sim"), value)

      const text = yield* renderSnapshot([
        {
          name: "test_render_scraped",
          help: "computed at scrape time",
          type: "gauge",
          labels: { stream: "S" },
          value: 4
        }
      ])
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

  it("an empty registry still renders a valid document", () => {
    expect(parsePrometheusText(render([], [])).size).toBe(0)
  })
})
