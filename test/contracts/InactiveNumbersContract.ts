/**
 * The InactiveNumbers contract: every adapter runs this suite. `layer` is a view started on an empty
 * source and shared by the suite, with the source's control; each test works on its own numbers.
 * Changes reach a view after a lag, so they are polled for with a bounded wait, never slept on.
 */
import { describe, expect, layer } from "@effect/vitest"
import { Context, Effect, type Layer, type Scope } from "effect"
import { InactiveNumbers, type InactiveNumbersService } from "../../src/intake/InactiveNumbers.js"
import { eventually } from "../support/gateway.js"

/** What the view follows: the phone-numbers read model, or the memory twin's control. */
export class InactiveNumbersSource extends Context.Tag("test/InactiveNumbersSource")<
  InactiveNumbersSource,
  {
    readonly deactivate: (e164: string) => Effect.Effect<void, unknown>
    readonly reactivate: (e164: string) => Effect.Effect<void, unknown>
    /** the number leaves the source altogether */
    readonly remove: (e164: string) => Effect.Effect<void, unknown>
  }
>() {}

export interface InactiveNumbersSubject<R> {
  readonly layer: Layer.Layer<InactiveNumbers | InactiveNumbersSource | R, unknown>
  /** a second view, started after `numbers` were deactivated in its source, and that source */
  readonly startedAfter: (
    numbers: ReadonlyArray<string>
  ) => Effect.Effect<
    { readonly view: InactiveNumbersService; readonly source: InactiveNumbersSource["Type"] },
    unknown,
    InactiveNumbersSource | R | Scope.Scope
  >
}

/** A random UK mobile number, distinct across tests sharing a source. */
export const newNumber = (): string => `+447${String(Math.floor(Math.random() * 1e9)).padStart(9, "0")}`

const becomes = (number: string, expected: boolean) =>
  eventually(
    Effect.flatMap(InactiveNumbers, (view) =>
      view.mayBeInactive(number) === expected ? Effect.void : Effect.fail(`${number} not yet ${expected}`)
    ),
    "5 seconds"
  )

export const suite = <R>(name: string, subject: InactiveNumbersSubject<R>): void => {
  describe(`InactiveNumbers contract: ${name}`, () => {
    // Live clock: the bounded waits are real.
    layer(subject.layer, { excludeTestServices: true })((it) => {
      // first, while the source is still empty
      it.effect("ready completes on an empty source, which holds no number", () =>
        Effect.gen(function* () {
          const view = yield* InactiveNumbers
          yield* Effect.timeout(view.ready, "5 seconds")
          expect(view.size()).toBe(0)
          expect(view.mayBeInactive(newNumber())).toBe(false)
        })
      )

      it.effect("a number deactivated in the source becomes inactive; reactivated, active again", () =>
        Effect.gen(function* () {
          const source = yield* InactiveNumbersSource
          const number = newNumber()
          const other = newNumber()
          yield* source.deactivate(number)
          yield* becomes(number, true)
          expect((yield* InactiveNumbers).mayBeInactive(other)).toBe(false)
          yield* source.reactivate(number)
          yield* becomes(number, false)
        })
      )

      it.effect("a number removed from the source is no longer inactive", () =>
        Effect.gen(function* () {
          const source = yield* InactiveNumbersSource
          const number = newNumber()
          yield* source.deactivate(number)
          yield* becomes(number, true)
          yield* source.remove(number)
          yield* becomes(number, false)
        })
      )

      it.effect("values that are not E.164 numbers are never inactive", () =>
        Effect.map(InactiveNumbers, (view) => {
          for (const value of ["", "+", "+0", "+447911123456x", "+4479111234567890123"]) {
            expect(view.mayBeInactive(value)).toBe(false)
          }
        })
      )

      it.scoped("a view started later holds every inactive number as soon as it is ready", () =>
        Effect.gen(function* () {
          const numbers = Array.from({ length: 50 }, newNumber)
          const reactivated = numbers.slice(0, 10)
          const { view, source } = yield* subject.startedAfter(numbers)
          yield* Effect.timeout(view.ready, "5 seconds")
          // no wait here: ready means the numbers inactive at the start are in
          for (const number of numbers) expect(view.mayBeInactive(number)).toBe(true)
          expect(view.size()).toBeGreaterThanOrEqual(numbers.length)
          // and it follows the source afterwards
          for (const number of reactivated) yield* source.reactivate(number)
          yield* eventually(
            Effect.suspend(() =>
              reactivated.some((number) => view.mayBeInactive(number)) ? Effect.fail("not yet") : Effect.void
            ),
            "5 seconds"
          )
          for (const number of numbers.slice(10)) expect(view.mayBeInactive(number)).toBe(true)
        })
      )
    })
  })
}
