import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { replicasFrom, serversOf } from "../../src/nats/Replicas.js"

describe("NATS_REPLICAS and NATS_URL", () => {
  it.effect("one copy unless told otherwise; 1 to 5 accepted", () =>
    Effect.gen(function* () {
      expect(yield* replicasFrom({})).toBe(1)
      expect(yield* replicasFrom({ NATS_REPLICAS: "" })).toBe(1)
      expect(yield* replicasFrom({ NATS_REPLICAS: "3" })).toBe(3)
      expect(yield* replicasFrom({ NATS_REPLICAS: " 5 " })).toBe(5)
    })
  )

  it.effect("anything else is refused, naming the variable", () =>
    Effect.gen(function* () {
      for (const bad of ["0", "6", "2.5", "three", "-1"]) {
        const result = yield* Effect.either(replicasFrom({ NATS_REPLICAS: bad }))
        expect(Either.isLeft(result)).toBe(true)
        if (Either.isLeft(result)) expect(result.left.message).toContain("NATS_REPLICAS")
      }
    })
  )

  it("a cluster's seeds are given comma-separated", () => {
    expect(serversOf("nats://a:4222")).toEqual(["nats://a:4222"])
    expect(serversOf("nats://a:4222, nats://b:4222,,nats://c:4222")).toEqual([
      "nats://a:4222",
      "nats://b:4222",
      "nats://c:4222"
    ])
  })
})
