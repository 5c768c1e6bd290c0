/**
 * Pulling a subscription's messages into batches in plain promises, for the adapters' `subscribeAll`.
 *
 * A batch takes what the client has buffered; with a gathering window (`SubscribeOptions.gatherMs`)
 * it may also wait for more, so that chunks come at most one per window (`ChunkPace`). The projector
 * used to regroup the adapters' chunks by time with `Stream.groupedWithin`: under load the chunks
 * held about five events each, and the regrouping's handoff, deferreds and fibers per chunk took a
 * fifth of the projector process's CPU (issue 11's profile).
 */

/** An async iterator whose unanswered `next()` is kept for the following pull, never dropped. */
export class Puller<A> {
  private carried: Promise<IteratorResult<A>> | undefined

  constructor(private readonly iterator: AsyncIterator<A>) {}

  next(): Promise<IteratorResult<A>> {
    const next = this.carried ?? this.iterator.next()
    this.carried = undefined
    return next
  }

  /** The next result, or `undefined` when none came within `ms` (then it is kept for the next pull). */
  async within(ms: number): Promise<IteratorResult<A> | undefined> {
    const next = this.next()
    let timer: ReturnType<typeof setTimeout> | undefined
    const timeout = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), ms)
    })
    // the race handles a rejection of `next`, which the following pull then sees
    const result = await Promise.race([next, timeout])
    clearTimeout(timer)
    if (result === undefined) this.carried = next
    return result
  }
}

/**
 * Paces a subscription's chunks at most one per window: a chunk may wait for more until the window
 * after the previous chunk was handed over. After a quiet spell the first event goes at once (light
 * traffic keeps its latency); under load, a reader slower than the window never waits, and a faster
 * one gets a chunk per window, as `Stream.groupedWithin` gave it.
 */
export class ChunkPace {
  private handedOverAt = 0

  constructor(private readonly gatherMs: number | undefined) {}

  /** Until when the chunk being gathered may wait for more; 0 without a window. */
  deadline(): number {
    return this.gatherMs === undefined || this.gatherMs <= 0 ? 0 : this.handedOverAt + this.gatherMs
  }

  handedOver(): void {
    this.handedOverAt = Date.now()
  }
}
