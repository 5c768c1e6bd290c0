/**
 * Which provider a message goes to. An explicit list on the message is honoured exclusively and in
 * order. Otherwise: the lowest priority that has a healthy provider, and among its healthy
 * providers a weighted random pick (seed 001's load balancing). Pure: health and randomness come in.
 */
import { Effect } from "effect"
import type { ProviderEntry } from "../providers/ProviderConfig.js"
import { Providers } from "../providers/Providers.js"
import { ProviderHealth } from "./ProviderHealth.js"

export interface RouteInput {
  readonly configured: ReadonlyArray<ProviderEntry>
  /** the message's own list, if any */
  readonly explicit?: ReadonlyArray<string>
  readonly isHealthy: (provider: string) => boolean
  /** uniform in [0, 1) */
  readonly random: number
}

const candidatesOf = ({ configured, explicit }: RouteInput): ReadonlyArray<ProviderEntry> => {
  if (explicit === undefined) return configured
  const byId = new Map(configured.map((p) => [p.id as string, p]))
  return explicit.flatMap((id) => {
    const provider = byId.get(id)
    return provider === undefined ? [] : [provider]
  })
}

const weightedPick = (providers: ReadonlyArray<ProviderEntry>, random: number): ProviderEntry | undefined => {
  const total = providers.reduce((sum, p) => sum + p.weight, 0)
  let point = random * total
  for (const provider of providers) {
    point -= provider.weight
    if (point < 0) return provider
  }
  return providers[providers.length - 1]
}

const byPriority = (
  providers: ReadonlyArray<ProviderEntry>,
  input: RouteInput
): ProviderEntry | undefined => {
  const healthy = providers.filter((p) => input.isHealthy(p.id))
  const pool = healthy.length > 0 ? healthy : providers
  const top = Math.min(...pool.map((p) => p.priority))
  return weightedPick(
    pool.filter((p) => p.priority === top),
    input.random
  )
}

/** The provider of a message's first attempt; undefined when none of its providers is configured. */
export const firstProvider = (input: RouteInput): string | undefined => {
  const candidates = candidatesOf(input)
  if (candidates.length === 0) return undefined
  const chosen =
    input.explicit === undefined
      ? byPriority(candidates, input)
      : (candidates.find((p) => input.isHealthy(p.id)) ?? candidates[0])
  return chosen?.id
}

/**
 * Where to go after a transient failure on `current`: another healthy provider if there is one
 * (the next in the explicit list, wrapping around), otherwise `current` again.
 */
export const failoverFrom = (current: string, input: RouteInput): string => {
  const candidates = candidatesOf(input)
  if (input.explicit !== undefined) {
    const at = candidates.findIndex((p) => p.id === current)
    for (let step = 1; step < candidates.length; step++) {
      const next = candidates[(at + step) % candidates.length]
      if (next !== undefined && next.id !== current && input.isHealthy(next.id)) return next.id
    }
    return current
  }
  const others = candidates.filter((p) => p.id !== current && input.isHealthy(p.id))
  return others.length > 0 ? (byPriority(others, input)?.id ?? current) : current
}

/** The live inputs: configured providers, this process's view of their health, a random draw. */
export const liveRouteInput = (explicit: ReadonlyArray<string> | undefined) =>
  Effect.gen(function* () {
    const providers = yield* Providers
    const health = yield* ProviderHealth
    const healthy = new Set<string>()
    for (const { config } of providers.all) if (yield* health.isHealthy(config.id)) healthy.add(config.id)
    return {
      configured: providers.all.map((p) => p.config),
      explicit,
      isHealthy: (id: string) => healthy.has(id),
      random: yield* health.random
    } satisfies RouteInput
  })

export const routeFailover = (current: string, explicit: ReadonlyArray<string> | undefined) =>
  Effect.map(liveRouteInput(explicit), (input) => failoverFrom(current, input))
