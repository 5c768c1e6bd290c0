import { describe, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { Nats } from "../../src/nats/Nats.js"
import { NatsTest } from "./nats.js"

describe("test support", () => {
  layer(NatsTest)("nats-server", (it) => {
    it.effect("starts on loopback with JetStream enabled", () =>
      Effect.gen(function* () {
        const { jsm, url } = yield* Nats
        const info = yield* Effect.promise(() => jsm.getAccountInfo())
        expect(url).toMatch(/^nats:\/\/127\.0\.0\.1:\d+$/)
        expect(info.streams).toBe(0)
      })
    )
  })
})
