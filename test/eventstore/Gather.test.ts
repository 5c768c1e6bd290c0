/**
 * The puller under the adapters' gathering window: a `next()` that the window gave up on is kept for
 * the following pull, so no message is skipped or read twice, and its failure still reaches a pull.
 */
import { describe, expect, it } from "vitest"
import { Puller } from "../../src/eventstore/Gather.js"

/** An async iterator fed by hand: `push` answers the oldest waiting `next()`, or waits for one. */
const fedByHand = <A>() => {
  const waiting: Array<(result: IteratorResult<A>) => void> = []
  const ready: Array<IteratorResult<A>> = []
  let failure: unknown
  const iterator: AsyncIterator<A> = {
    next: () => {
      if (failure !== undefined) return Promise.reject(failure)
      const result = ready.shift()
      return result !== undefined ? Promise.resolve(result) : new Promise((resolve) => waiting.push(resolve))
    }
  }
  const settle = (result: IteratorResult<A>) => {
    const next = waiting.shift()
    if (next === undefined) ready.push(result)
    else next(result)
  }
  return {
    iterator,
    push: (value: A) => settle({ done: false, value }),
    end: () => settle({ done: true, value: undefined }),
    calls: () => waiting.length,
    fail: (error: unknown) => {
      failure = error
    }
  }
}

describe("Puller", () => {
  it("answers at once what is ready, and gives up after the window on what is not", async () => {
    const feed = fedByHand<string>()
    const puller = new Puller(feed.iterator)
    feed.push("a")
    expect(await puller.within(1_000)).toEqual({ done: false, value: "a" })
    const started = Date.now()
    expect(await puller.within(30)).toBeUndefined()
    expect(Date.now() - started).toBeGreaterThanOrEqual(25)
  })

  it("keeps the next() it gave up on: the following pull gets its answer, once", async () => {
    const feed = fedByHand<string>()
    const puller = new Puller(feed.iterator)
    expect(await puller.within(10)).toBeUndefined()
    expect(feed.calls()).toBe(1)
    expect(await puller.within(10)).toBeUndefined()
    // still the same single call waiting: nothing was asked twice
    expect(feed.calls()).toBe(1)
    feed.push("b")
    feed.push("c")
    expect(await puller.next()).toEqual({ done: false, value: "b" })
    expect(await puller.next()).toEqual({ done: false, value: "c" })
    feed.end()
    expect(await puller.next()).toEqual({ done: true, value: undefined })
  })

  it("passes a failure to the pull that waits for it", async () => {
    const feed = fedByHand<string>()
    const puller = new Puller(feed.iterator)
    feed.fail(new Error("connection closed"))
    await expect(puller.within(1_000)).rejects.toThrow("connection closed")
  })
})
