/**
 * A strict parser of the Prometheus text exposition format (0.0.4), for tests: it throws on anything
 * a Prometheus server would refuse or misread (bad names, bad escapes, a TYPE after samples, families
 * split apart, duplicate series, non-cumulative histogram buckets, `+Inf` bucket != `_count`).
 */
import { Effect } from "effect"
export interface Series {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

export interface Family {
  readonly name: string
  readonly type: "counter" | "gauge" | "histogram" | "summary" | "untyped"
  readonly help: string | undefined
  readonly series: Array<Series>
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/
const TYPES = new Set(["counter", "gauge", "histogram", "summary", "untyped"])

const fail = (lineNo: number, line: string, why: string): never => {
  throw new Error(`line ${lineNo}: ${why}: ${JSON.stringify(line)}`)
}

const parseValue = (text: string, lineNo: number, line: string): number => {
  // as Go's strconv.ParseFloat, which Prometheus uses: the special values in any case
  if (/^\+?inf$/i.test(text)) return Number.POSITIVE_INFINITY
  if (/^-inf$/i.test(text)) return Number.NEGATIVE_INFINITY
  if (/^nan$/i.test(text)) return Number.NaN
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) fail(lineNo, line, `bad value ${text}`)
  return Number(text)
}

/** `name{a="b",c="d"} value [timestamp]` */
const parseSample = (line: string, lineNo: number): Series => {
  let i = 0
  while (i < line.length && /[a-zA-Z0-9_:]/.test(line[i] ?? "")) i++
  const name = line.slice(0, i)
  if (!METRIC_NAME.test(name)) fail(lineNo, line, "bad metric name")
  const labels: Record<string, string> = {}
  if (line[i] === "{") {
    i++
    while (line[i] !== "}") {
      const start = i
      while (i < line.length && /[a-zA-Z0-9_]/.test(line[i] ?? "")) i++
      const label = line.slice(start, i)
      if (!LABEL_NAME.test(label)) fail(lineNo, line, "bad label name")
      if (label in labels) fail(lineNo, line, `duplicate label ${label}`)
      if (line[i] !== "=" || line[i + 1] !== '"') fail(lineNo, line, 'expected ="')
      i += 2
      let value = ""
      for (;;) {
        const c = line[i]
        if (c === undefined) fail(lineNo, line, "unterminated label value")
        if (c === '"') break
        if (c === "\\") {
          const next = line[i + 1]
          if (next === "\\") value += "\\"
          else if (next === '"') value += '"'
          else if (next === "n") value += "\n"
          else fail(lineNo, line, "bad escape")
          i += 2
          continue
        }
        value += c
        i++
      }
      labels[label] = value
      i++
      if (line[i] === ",") i++
      else if (line[i] !== "}") fail(lineNo, line, "expected , or }")
    }
    i++
  }
  if (line[i] !== " ") fail(lineNo, line, "expected a space before the value")
  const rest = line
    .slice(i + 1)
    .trim()
    .split(/\s+/)
  if (rest.length < 1 || rest.length > 2 || rest[0] === "") fail(lineNo, line, "expected value [timestamp]")
  if (rest[1] !== undefined && !/^-?\d+$/.test(rest[1])) fail(lineNo, line, "bad timestamp")
  return { name, labels, value: parseValue(rest[0] ?? "", lineNo, line) }
}

const familyName = (sample: string, families: Map<string, Family>) => {
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    if (sample.endsWith(suffix)) {
      const base = sample.slice(0, -suffix.length)
      const family = families.get(base)
      if (family?.type === "histogram" || family?.type === "summary") return base
    }
  }
  return sample
}

export const parsePrometheusText = (text: string): Map<string, Family> => {
  if (!text.endsWith("\n")) throw new Error("exposition must end with a newline")
  const families = new Map<string, Family>()
  const seen = new Set<string>()
  const closed = new Set<string>()
  let current: string | undefined
  const lines = text.slice(0, -1).split("\n")
  lines.forEach((line, index) => {
    const lineNo = index + 1
    if (line.trim() === "") return
    if (line.startsWith("#")) {
      const match = /^# (HELP|TYPE) ([^ ]+) ?(.*)$/.exec(line)
      if (match === null) return // a comment
      const [, kind, name = "", rest = ""] = match
      if (!METRIC_NAME.test(name)) fail(lineNo, line, "bad metric name")
      const family = families.get(name)
      if (family !== undefined && family.series.length > 0)
        fail(lineNo, line, `${kind} after samples of ${name}`)
      if (closed.has(name)) fail(lineNo, line, `${name} appears twice`)
      if (current !== undefined && current !== name) closed.add(current)
      current = name
      if (kind === "TYPE") {
        if (!TYPES.has(rest)) fail(lineNo, line, `bad type ${rest}`)
        if (family?.type !== undefined && family.type !== "untyped") fail(lineNo, line, "second TYPE")
        families.set(name, {
          name,
          type: rest as Family["type"],
          help: family?.help,
          series: family?.series ?? []
        })
      } else {
        if (family?.help !== undefined) fail(lineNo, line, "second HELP")
        families.set(name, {
          name,
          type: family?.type ?? "untyped",
          help: rest,
          series: family?.series ?? []
        })
      }
      return
    }
    const sample = parseSample(line, lineNo)
    const name = familyName(sample.name, families)
    if (closed.has(name)) fail(lineNo, line, `samples of ${name} are not together`)
    if (current !== undefined && current !== name) closed.add(current)
    current = name
    const family = families.get(name) ?? { name, type: "untyped" as const, help: undefined, series: [] }
    families.set(name, family)
    const key = `${sample.name}${JSON.stringify(Object.entries(sample.labels).sort())}`
    if (seen.has(key)) fail(lineNo, line, "duplicate series")
    seen.add(key)
    if (family.type === "counter" && (sample.value < 0 || Number.isNaN(sample.value)))
      fail(lineNo, line, "negative counter")
    family.series.push(sample)
  })
  for (const family of families.values()) if (family.type === "histogram") checkHistogram(family)
  return families
}

const checkHistogram = (family: Family) => {
  const groups = new Map<string, { buckets: Array<[number, number]>; count?: number; sum?: number }>()
  for (const series of family.series) {
    const { le, ...rest } = series.labels
    const key = JSON.stringify(Object.entries(rest).sort())
    const group = groups.get(key) ?? { buckets: [] }
    groups.set(key, group)
    if (series.name === `${family.name}_bucket`) {
      if (le === undefined) throw new Error(`${family.name}: bucket without le`)
      group.buckets.push([le === "+Inf" ? Number.POSITIVE_INFINITY : Number(le), series.value])
    } else if (series.name === `${family.name}_count`) group.count = series.value
    else if (series.name === `${family.name}_sum`) group.sum = series.value
    else throw new Error(`${family.name}: unexpected series ${series.name}`)
  }
  for (const [key, group] of groups) {
    const sorted = [...group.buckets].sort((a, b) => a[0] - b[0])
    const inf = sorted[sorted.length - 1]
    if (inf === undefined || inf[0] !== Number.POSITIVE_INFINITY)
      throw new Error(`${family.name}${key}: no +Inf bucket`)
    if (group.count === undefined || group.sum === undefined)
      throw new Error(`${family.name}${key}: no _count/_sum`)
    if (inf[1] !== group.count) throw new Error(`${family.name}${key}: +Inf bucket != _count`)
    sorted.reduce((previous, [, count]) => {
      if (count < previous) throw new Error(`${family.name}${key}: buckets are not cumulative`)
      return count
    }, 0)
  }
}

/** The value of the series `name` whose labels include `labels` (undefined when there is none). */
export const sampleValue = (
  families: Map<string, Family>,
  name: string,
  labels: Readonly<Record<string, string>> = {}
): number | undefined => {
  for (const family of families.values()) {
    for (const series of family.series) {
      if (series.name !== name) continue
      if (Object.entries(labels).every(([k, v]) => series.labels[k] === v)) return series.value
    }
  }
  return undefined
}

/** The value of one labelled series of a `prom-client` counter or gauge (0 when never updated). */
export const seriesValue = <Label extends string>(
  metric: {
    readonly get: () => Promise<{ readonly values: ReadonlyArray<{ labels: object; value: number }> }>
  },
  labels: Readonly<Record<Label, string>>
): Effect.Effect<number> =>
  Effect.promise(async () => {
    const { values } = await metric.get()
    const wanted = Object.entries(labels)
    const series = values.find((value) =>
      wanted.every(([name, label]) => (value.labels as Record<string, unknown>)[name] === label)
    )
    return series?.value ?? 0
  })
