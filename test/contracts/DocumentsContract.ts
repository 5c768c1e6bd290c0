/**
 * The documents contract (`src/platform/Documents.ts`): every adapter runs this suite. `fresh`
 * gives an empty store for each test; `remove`, for a store something else can delete from (KV: a
 * delete marker), deletes a key the way that store does.
 */
import { describe, expect, it } from "vitest"
import { DocumentConflict, type Documents } from "../../src/platform/Documents.js"

export interface DocumentsSubject {
  readonly fresh: () => Promise<Documents>
  readonly remove?: (documents: Documents, key: string) => Promise<void>
}

/** Retries `check` until it passes, for at most two seconds (a watch hears of writes asynchronously). */
const eventually = async (check: () => void) => {
  const until = Date.now() + 2000
  for (;;) {
    try {
      check()
      return
    } catch (error) {
      if (Date.now() > until) throw error
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
  }
}

/** A revision, or that the write was refused as a conflict (any other failure fails the test). */
const outcome = (write: Promise<number>) =>
  write.then(
    (revision) => ({ revision }),
    (error: unknown) => {
      if (error instanceof DocumentConflict) return "refused" as const
      throw error
    }
  )

export const suite = (name: string, subject: DocumentsSubject): void => {
  describe(`Documents contract: ${name}`, () => {
    it("reads nothing at a key never written", async () => {
      const documents = await subject.fresh()
      expect(await documents.get("nobody")).toBeUndefined()
    })

    it("creates once: a second create of the same key is refused and stores nothing", async () => {
      const documents = await subject.fresh()
      const created = await documents.put("a", "first", undefined)
      expect(await outcome(documents.put("a", "second", undefined))).toBe("refused")
      expect(await documents.get("a")).toEqual({ value: "first", revision: created })
    })

    it("updates at the revision read, and refuses a write naming a revision that moved", async () => {
      const documents = await subject.fresh()
      const first = await documents.put("a", "1", undefined)
      const second = await documents.put("a", "2", first)
      expect(second).toBeGreaterThan(first)
      expect(await outcome(documents.put("a", "stale", first))).toBe("refused")
      expect(await outcome(documents.put("b", "on nothing", first))).toBe("refused")
      expect(await documents.get("a")).toEqual({ value: "2", revision: second })
      expect(await documents.get("b")).toBeUndefined()
    })

    it("revisions increase across keys, so a later write always names a later one", async () => {
      const documents = await subject.fresh()
      const a = await documents.put("a", "x", undefined)
      const b = await documents.put("b", "y", undefined)
      const a2 = await documents.put("a", "x2", a)
      expect(b).toBeGreaterThan(a)
      expect(a2).toBeGreaterThan(b)
    })

    it("of many writes in flight at once to one revision, exactly one lands", async () => {
      const documents = await subject.fresh()
      const base = await documents.put("race", "0", undefined)
      const outcomes = await Promise.all(
        Array.from({ length: 10 }, (_, i) => outcome(documents.put("race", `writer ${i}`, base)))
      )
      const landed = outcomes.filter((o) => o !== "refused")
      expect(landed).toHaveLength(1)
      const stored = await documents.get("race")
      expect(stored?.revision).toBe((landed[0] as { revision: number }).revision)
    })

    it("sets whatever is there, and a conditional write then names the set's revision", async () => {
      const documents = await subject.fresh()
      const first = await documents.set("s", "one")
      const second = await documents.set("s", "two")
      expect(second).toBeGreaterThan(first)
      expect(await outcome(documents.put("s", "stale", first))).toBe("refused")
      const third = await documents.put("s", "three", second)
      expect(await documents.get("s")).toEqual({ value: "three", revision: third })
    })

    it("lists the keys under a prefix, sorted, and nothing else", async () => {
      const documents = await subject.fresh()
      expect(await documents.keys("keys.")).toEqual([])
      await documents.put("keys.b", "2", undefined)
      await documents.set("keys.a", "1")
      await documents.set("clients.a", "x")
      await documents.set("keysake", "not under keys.")
      expect(await documents.keys("keys.")).toEqual(["keys.a", "keys.b"])
      expect(await documents.keys("key")).toEqual(["keys.a", "keys.b", "keysake"])
      expect(await documents.keys("")).toEqual(["clients.a", "keys.a", "keys.b", "keysake"])
    })

    it("a watch hears every later write in order, and nothing after it stops", async () => {
      const documents = await subject.fresh()
      await documents.set("before", "not heard")
      const heard: Array<[string, string | undefined, number | undefined]> = []
      const stop = await documents.watch((key, document) =>
        heard.push([key, document?.value, document?.revision])
      )
      const a = await documents.put("a", "1", undefined)
      const b = await documents.set("b", "2")
      const a2 = await documents.put("a", "3", a)
      await eventually(() =>
        expect(heard).toEqual([
          ["a", "1", a],
          ["b", "2", b],
          ["a", "3", a2]
        ])
      )
      stop()
      await documents.set("after", "not heard")
      await new Promise((resolve) => setTimeout(resolve, 100))
      expect(heard.map(([key]) => key)).not.toContain("after")
    })

    const remove = subject.remove
    if (remove !== undefined) {
      it("a watch hears a delete as an absent document", async () => {
        const documents = await subject.fresh()
        await documents.set("doomed", "x")
        const heard: Array<[string, string | undefined]> = []
        const stop = await documents.watch((key, document) => heard.push([key, document?.value]))
        await remove(documents, "doomed")
        await eventually(() => expect(heard).toEqual([["doomed", undefined]]))
        stop()
        expect(await documents.keys("")).toEqual([])
      })

      it("a deleted key reads as absent, and is created again", async () => {
        const documents = await subject.fresh()
        await documents.put("gone", "x", undefined)
        await remove(documents, "gone")
        expect(await documents.get("gone")).toBeUndefined()
        const again = await documents.put("gone", "back", undefined)
        expect(await documents.get("gone")).toEqual({ value: "back", revision: again })
      })
    }
  })
}
