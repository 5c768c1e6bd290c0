/** The Grafana dashboard and the alert rules only use metrics the gateway exports. */
import { readFileSync } from "node:fs"
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { renderSnapshot } from "../../src/observability/Prometheus.js"
import { parsePrometheusText } from "../support/prometheus.js"

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), "utf8")

/** the families `/metrics` renders before anything happened, and the scrape-time samples' names */
const rendered = parsePrometheusText(await Effect.runPromise(renderSnapshot()))
const scraped = read("src/http/Collect.ts")
const exported = (name: string) => rendered.has(name) || scraped.includes(`"${name}"`)
const metricNames = (text: string) =>
  [...new Set(text.match(/\b(sms|process)_[a-z_]+\b/g) ?? [])].map((name) =>
    name.replace(/_(bucket|count|sum)$/, "")
  )

describe("deploy/", () => {
  it("the dashboard is valid JSON whose queries use exported metrics", () => {
    const dashboard = JSON.parse(read("deploy/grafana-dashboard.json")) as {
      panels: ReadonlyArray<{ targets?: ReadonlyArray<{ expr: string }> }>
    }
    const queries = dashboard.panels.flatMap((panel) => panel.targets ?? []).map((target) => target.expr)
    expect(queries.length).toBeGreaterThan(10)
    for (const name of metricNames(queries.join("\n"))) expect(exported(name), name).toBe(true)
  })

  it("every alert rule has an expression over exported metrics", () => {
    const rules = read("deploy/prometheus-alerts.yml")
    const alerts = rules.match(/- alert: \w+/g) ?? []
    expect(alerts.map((a) => a.slice(9))).toEqual(
      expect.arrayContaining(["SmsProviderDown", "SmsBacklogGrowing", "SmsProjectionLagging"])
    )
    const expressions = rules
      .split("\n")
      .filter((line) => !line.trim().startsWith("#") && !/summary|description/.test(line))
      .join("\n")
    for (const name of metricNames(expressions)) expect(exported(name), name).toBe(true)
  })
})
