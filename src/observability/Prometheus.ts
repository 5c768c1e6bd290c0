/**
 * Renders the process's Effect metrics (`Metric.snapshot`) and scrape-time samples in the Prometheus
 * text exposition format 0.0.4: one `# HELP` and `# TYPE` per family, then its samples; histograms as
 * cumulative `_bucket{le}` series with `+Inf`, `_sum` and `_count`.
 */
import { Effect, Metric, MetricState, Option } from "effect"
import type { MetricPair } from "effect"

export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

/** A value computed at scrape time (not kept in the registry). */
export interface Sample {
  readonly name: string
  readonly help: string
  readonly type: "gauge" | "counter"
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

type Labels = ReadonlyArray<readonly [string, string]>

interface Family {
  readonly name: string
  readonly help: string
  readonly type: "counter" | "gauge" | "histogram" | "summary" | "untyped"
  readonly lines: Array<string>
}

const sanitizeName = (name: string) => {
  const cleaned = name.replace(/[^a-zA-Z0-9_:]/g, "_")
  return /^[a-zA-Z_:]/.test(cleaned) ? cleaned : `_${cleaned}`
}
const sanitizeLabel = (name: string) => {
  const cleaned = name.replace(/[^a-zA-Z0-9_]/g, "_")
  return /^[a-zA-Z_]/.test(cleaned) ? cleaned : `_${cleaned}`
}
const escapeLabelValue = (value: string) =>
  value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"')
const escapeHelp = (text: string) => text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")

const formatValue = (value: number | bigint): string => {
  if (typeof value === "bigint") return value.toString()
  if (Number.isNaN(value)) return "NaN"
  if (value === Number.POSITIVE_INFINITY) return "+Inf"
  if (value === Number.NEGATIVE_INFINITY) return "-Inf"
  return String(value)
}

const formatLabels = (labels: Labels) =>
  labels.length === 0
    ? ""
    : `{${labels.map(([name, value]) => `${sanitizeLabel(name)}="${escapeLabelValue(value)}"`).join(",")}}`

const line = (name: string, labels: Labels, value: number | bigint) =>
  `${name}${formatLabels(labels)} ${formatValue(value)}`

const familyOf = (families: Map<string, Family>, name: string, help: string, type: Family["type"]) => {
  const existing = families.get(name)
  if (existing !== undefined) return existing
  const created: Family = { name, help, type, lines: [] }
  families.set(name, created)
  return created
}

const renderPair = (families: Map<string, Family>, pair: MetricPair.MetricPair.Untyped) => {
  const name = sanitizeName(pair.metricKey.name)
  const help = Option.getOrElse(pair.metricKey.description, () => name)
  const labels: Labels = pair.metricKey.tags.map((tag) => [tag.key, tag.value] as const)
  const state = pair.metricState
  if (MetricState.isCounterState(state)) {
    familyOf(families, name, help, "counter").lines.push(line(name, labels, state.count))
  } else if (MetricState.isGaugeState(state)) {
    familyOf(families, name, help, "gauge").lines.push(line(name, labels, state.value))
  } else if (MetricState.isHistogramState(state)) {
    const family = familyOf(families, name, help, "histogram")
    for (const [boundary, count] of state.buckets) {
      if (boundary === Number.POSITIVE_INFINITY) continue
      family.lines.push(line(`${name}_bucket`, [...labels, ["le", formatValue(boundary)]], count))
    }
    family.lines.push(line(`${name}_bucket`, [...labels, ["le", "+Inf"]], state.count))
    family.lines.push(line(`${name}_sum`, labels, state.sum))
    family.lines.push(line(`${name}_count`, labels, state.count))
  } else if (MetricState.isSummaryState(state)) {
    const family = familyOf(families, name, help, "summary")
    for (const [quantile, value] of state.quantiles) {
      family.lines.push(
        line(
          name,
          [...labels, ["quantile", formatValue(quantile)]],
          Option.getOrElse(value, () => Number.NaN)
        )
      )
    }
    family.lines.push(line(`${name}_sum`, labels, state.sum))
    family.lines.push(line(`${name}_count`, labels, state.count))
  } else if (MetricState.isFrequencyState(state)) {
    // a frequency counts occurrences of string values: one counter series per value
    const family = familyOf(families, name, help, "counter")
    for (const [value, count] of state.occurrences)
      family.lines.push(line(name, [...labels, ["value", value]], count))
  }
}

/** The exposition text of `pairs` (a `Metric.snapshot`) and `samples`. */
export const render = (
  pairs: ReadonlyArray<MetricPair.MetricPair.Untyped>,
  samples: ReadonlyArray<Sample> = []
): string => {
  const families = new Map<string, Family>()
  for (const pair of pairs) renderPair(families, pair)
  for (const sample of samples) {
    const name = sanitizeName(sample.name)
    familyOf(families, name, sample.help, sample.type).lines.push(
      line(name, Object.entries(sample.labels), sample.value)
    )
  }
  const out: Array<string> = []
  for (const family of [...families.values()].sort((a, b) => a.name.localeCompare(b.name))) {
    if (family.lines.length === 0) continue
    out.push(`# HELP ${family.name} ${escapeHelp(family.help)}`, `# TYPE ${family.name} ${family.type}`)
    out.push(...family.lines)
  }
  return `${out.join("\n")}\n`
}

/** The registry's metrics, rendered with `samples`. */
export const renderSnapshot = (samples: ReadonlyArray<Sample> = []) =>
  Effect.map(Metric.snapshot, (pairs) => render(pairs, samples))
