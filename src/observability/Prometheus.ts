/**
 * `/metrics`: this process's registry (`Metrics.ts`), the Node process's own figures, and
 * scrape-time samples, in the Prometheus text exposition format, all rendered by `prom-client`.
 */
import { Effect } from "effect"
import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client"
import { registry } from "./Metrics.js"

export const CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE

/** A value computed at scrape time (not kept in the registry). */
export interface Sample {
  readonly name: string
  readonly help: string
  readonly type: "gauge" | "counter"
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

/**
 * The samples as a registry of their own, made for one scrape: one metric per name, its label
 * names the union of its samples' (a sample may leave one out).
 */
const samplesRegistry = (samples: ReadonlyArray<Sample>) => {
  const scraped = new Registry()
  const byName = new Map<string, Array<Sample>>()
  for (const sample of samples) {
    const same = byName.get(sample.name)
    if (same === undefined) byName.set(sample.name, [sample])
    else same.push(sample)
  }
  for (const [name, group] of byName) {
    const first = group[0] as Sample
    const labelNames = [...new Set(group.flatMap((sample) => Object.keys(sample.labels)))]
    const config = { name, help: first.help, labelNames, registers: [scraped] }
    if (first.type === "counter") {
      const counter = new Counter(config)
      for (const sample of group) counter.inc(sample.labels, sample.value)
    } else {
      const gauge = new Gauge(config)
      for (const sample of group) gauge.set(sample.labels, sample.value)
    }
  }
  return scraped
}

/** The exposition text of `registries` and `samples`. */
export const render = (
  registries: ReadonlyArray<Registry>,
  samples: ReadonlyArray<Sample> = []
): Promise<string> => Registry.merge([...registries, samplesRegistry(samples)]).metrics()

let processMetrics: Registry | undefined

/**
 * The Node process's figures (CPU, resident memory, event-loop delay, GC, handles), from
 * `prom-client`'s default collectors; started with the first scrape, so a process nobody scrapes
 * pays nothing for them.
 */
const processRegistry = () => {
  if (processMetrics === undefined) {
    processMetrics = new Registry()
    collectDefaultMetrics({ register: processMetrics })
  }
  return processMetrics
}

/** The process's metrics, rendered with `samples`. */
export const renderSnapshot = (samples: ReadonlyArray<Sample> = []) =>
  Effect.promise(() => render([registry, processRegistry()], samples))
