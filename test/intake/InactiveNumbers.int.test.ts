/** The InactiveNumbers contract against the memory twin and the KV watch on a real nats-server. */
import { describe, expect, layer } from "@effect/vitest"
import { Context, Effect, Layer } from "effect"
import { InactiveNumbers, InactiveNumbersMemory } from "../../src/intake/InactiveNumbers.js"
import type { PhoneNumberView } from "../../src/projections/PhoneNumbers.js"
import { ReadModels } from "../../src/projections/ReadModels.js"
import { InactiveNumbersSource, newNumber, suite } from "../contracts/InactiveNumbersContract.js"
import { eventually } from "../support/gateway.js"
import { NatsTest } from "../support/nats.js"

const memory = (initial: ReadonlyArray<string>) =>
  Layer.effect(
    InactiveNumbersSource,
    Effect.map(InactiveNumbersMemory, (control) => ({
      deactivate: control.deactivate,
      reactivate: control.reactivate,
      remove: control.reactivate
    }))
  ).pipe(Layer.provideMerge(InactiveNumbers.layerMemory(initial)))

suite("memory", {
  layer: memory([]),
  startedAfter: (numbers) =>
    Effect.map(Layer.build(memory(numbers)), (context) => ({
      view: Context.get(context, InactiveNumbers),
      source: Context.get(context, InactiveNumbersSource)
    }))
})

/** What the phone-numbers projection writes, reduced to what the view reads (the status). */
const document = (e164: string, status: PhoneNumberView["status"]): string => {
  const view: PhoneNumberView = {
    number: e164,
    status,
    since: "2026-01-01T00:00:00.000Z",
    reason: "test",
    history: [],
    position: 1
  }
  return JSON.stringify(view)
}

const kvSource = Layer.effect(
  InactiveNumbersSource,
  Effect.map(ReadModels, ({ phones }) => ({
    deactivate: (e164: string) => Effect.promise(() => phones.put(e164.slice(1), document(e164, "inactive"))),
    reactivate: (e164: string) => Effect.promise(() => phones.put(e164.slice(1), document(e164, "active"))),
    remove: (e164: string) => Effect.promise(() => phones.delete(e164.slice(1)))
  }))
)

const kv = Layer.merge(InactiveNumbers.layer, kvSource).pipe(
  Layer.provideMerge(ReadModels.layer),
  Layer.provideMerge(NatsTest)
)

suite("KV watch of sms_phones", {
  layer: kv,
  startedAfter: (numbers) =>
    Effect.gen(function* () {
      const source = yield* InactiveNumbersSource
      yield* Effect.forEach(numbers, source.deactivate, { discard: true })
      const view = Context.get(yield* Layer.build(InactiveNumbers.layer), InactiveNumbers)
      return { view, source }
    })
})

describe("InactiveNumbers KV adapter", () => {
  layer(kv, { excludeTestServices: true })((it) => {
    const becomes = (number: string, expected: boolean) =>
      eventually(
        Effect.flatMap(InactiveNumbers, (view) =>
          view.mayBeInactive(number) === expected ? Effect.void : Effect.fail("not yet")
        ),
        "5 seconds"
      )

    it.effect("a purged key is no longer inactive", () =>
      Effect.gen(function* () {
        const { phones } = yield* ReadModels
        const number = newNumber()
        yield* (yield* InactiveNumbersSource).deactivate(number)
        yield* becomes(number, true)
        yield* Effect.promise(() => phones.purge(number.slice(1)))
        yield* becomes(number, false)
      })
    )

    it.effect(
      "a document it cannot read counts as maybe inactive; keys that are not numbers are ignored",
      () =>
        Effect.gen(function* () {
          const { phones } = yield* ReadModels
          const view = yield* InactiveNumbers
          const unreadable = newNumber()
          const marker = newNumber()
          yield* Effect.promise(() => phones.put("not-a-number", document(unreadable, "inactive")))
          yield* Effect.promise(() => phones.put(unreadable.slice(1), "{not json"))
          // entries are applied in order: once the marker shows, the two writes before it were applied
          yield* (yield* InactiveNumbersSource).deactivate(marker)
          yield* becomes(marker, true)
          expect(view.mayBeInactive(unreadable)).toBe(true)
          expect(view.mayBeInactive("+not-a-number")).toBe(false)
        })
    )
  })
})
