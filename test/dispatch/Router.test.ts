import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import { failoverFrom, firstProvider, type RouteInput } from "../../src/dispatch/Router.js"
import { ProviderEntry } from "../../src/providers/ProviderConfig.js"

const entry = (id: string, extra: Record<string, unknown> = {}) =>
  Schema.decodeUnknownSync(ProviderEntry)({
    id,
    type: "generic-http",
    baseUrl: "http://127.0.0.1:1",
    apiKeyEnv: "K",
    webhookSecretEnv: "S",
    ...extra
  })

const input = (
  configured: ReadonlyArray<ProviderEntry>,
  overrides: Partial<RouteInput> = {}
): RouteInput => ({
  configured,
  isHealthy: () => true,
  random: 0,
  ...overrides
})

describe("Router", () => {
  const a = entry("a", { weight: 3 })
  const b = entry("b", { weight: 1 })
  const backup = entry("backup", { priority: 5 })

  it("splits by weight within the preferred priority", () => {
    const picks = Array.from({ length: 400 }, (_, i) =>
      firstProvider(input([a, b, backup], { random: i / 400 }))
    )
    expect(picks.filter((p) => p === "a")).toHaveLength(300)
    expect(picks.filter((p) => p === "b")).toHaveLength(100)
    expect(picks).not.toContain("backup")
  })

  it("skips unhealthy providers, falling to the next priority only when a whole priority is down", () => {
    expect(firstProvider(input([a, b, backup], { isHealthy: (id) => id !== "a", random: 0 }))).toBe("b")
    expect(firstProvider(input([a, b, backup], { isHealthy: (id) => id === "backup" }))).toBe("backup")
    // nothing healthy: still route, by preference (the work will wait for a probe)
    expect(firstProvider(input([a, b, backup], { isHealthy: () => false, random: 0 }))).toBe("a")
  })

  it("honours an explicit list exclusively and in order, ignoring unknown ids", () => {
    expect(firstProvider(input([a, b, backup], { explicit: ["backup", "a"] }))).toBe("backup")
    expect(firstProvider(input([a, b, backup], { explicit: ["nope", "b"] }))).toBe("b")
    expect(firstProvider(input([a, b, backup], { explicit: ["nope"] }))).toBeUndefined()
    expect(
      firstProvider(input([a, b, backup], { explicit: ["backup", "a"], isHealthy: (id) => id !== "backup" }))
    ).toBe("a")
  })

  it("fails over to the next healthy provider, or stays when there is none", () => {
    expect(failoverFrom("a", input([a, b, backup]))).toBe("b")
    expect(failoverFrom("a", input([a, b, backup], { isHealthy: (id) => id === "backup" }))).toBe("backup")
    expect(failoverFrom("a", input([a, b, backup], { isHealthy: () => false }))).toBe("a")
    // explicit: the next in the list, wrapping around, never outside it
    expect(failoverFrom("b", input([a, b, backup], { explicit: ["a", "b"] }))).toBe("a")
    expect(failoverFrom("a", input([a, b, backup], { explicit: ["a"] }))).toBe("a")
  })
})
