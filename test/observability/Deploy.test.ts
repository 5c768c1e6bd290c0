/** The Grafana dashboard and the alert rules only use metrics the gateway exports. */
import { readFileSync } from "node:fs"
import { describe, expect, it } from "@effect/vitest"

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), "utf8")

const exported = `${read("src/observability/Metrics.ts")}\n${read("src/http/Collect.ts")}`
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
    for (const name of metricNames(queries.join("\n"))) expect(exported, name).toContain(`"${name}"`)
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
    for (const name of metricNames(expressions)) expect(exported, name).toContain(`"${name}"`)
  })
})
