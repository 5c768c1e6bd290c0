/** The success path of a NATS request builds its throw-away "cancelled" error without a stack trace. */
import { describe, expect, it, layer } from "@effect/vitest"
import { RequestOne } from "@nats-io/nats-core/internal"
import { Effect } from "effect"
import { Nats } from "../../src/nats/Nats.js"
import { installed } from "../../src/nats/StacklessCancel.js"
import { NatsTest } from "../support/nats.js"

/** A request on its own, with a multiplexer that only records that it was told. */
const lonelyRequest = () => {
  const muxCancelled: Array<RequestOne> = []
  // the multiplexer is an internal nats-core type; cancel() is all a lone request needs of it
  const request = new RequestOne(
    { cancel: (r: RequestOne) => muxCancelled.push(r) } as unknown as ConstructorParameters<
      typeof RequestOne
    >[0],
    "x",
    { timeout: 1000 },
    false
  )
  return { request, muxCancelled }
}

describe("stackless cancel", () => {
  it("is installed on nats-core's RequestOne", () => {
    expect(installed).toBe(true)
  })

  it("cancel() rejects with a 'cancelled' RequestError without stack frames, and restores the limit", async () => {
    const limit = Error.stackTraceLimit
    const { request, muxCancelled } = lonelyRequest()
    request.cancel()
    const error = await request.deferred.then(
      () => undefined,
      (e: Error) => e
    )
    expect(error?.name).toBe("RequestError")
    expect(error?.message).toBe("cancelled")
    expect(error?.stack ?? "").not.toMatch(/\n\s+at /)
    expect(muxCancelled).toEqual([request])
    expect(Error.stackTraceLimit).toBe(limit)
  })

  it("cancel(err) rejects with that very error, stack and all", async () => {
    const { request } = lonelyRequest()
    const cause = new Error("shutting down")
    request.cancel(cause)
    await expect(request.deferred).rejects.toBe(cause)
    expect(cause.stack).toMatch(/\n\s+at /)
  })

  layer(NatsTest)("against nats-server", (it) => {
    it.effect("requests still get their replies, and a request nobody answers still fails", () =>
      Effect.gen(function* () {
        const { nc } = yield* Nats
        const sub = nc.subscribe("echo", {
          callback: (_err, msg) => {
            msg.respond(`re: ${msg.string()}`)
          }
        })
        const replies = yield* Effect.promise(() =>
          Promise.all(
            Array.from({ length: 50 }, (_, i) => nc.request("echo", String(i)).then((m) => m.string()))
          )
        )
        expect(replies).toEqual(Array.from({ length: 50 }, (_, i) => `re: ${i}`))
        sub.unsubscribe()
        const unanswered = yield* Effect.promise(() =>
          nc.request("nobody.home", "?", { timeout: 500 }).then(
            () => undefined,
            (e: Error) => e
          )
        )
        expect(unanswered?.name).toBe("RequestError")
        expect(unanswered?.message).not.toBe("cancelled")
      })
    )
  })
})
