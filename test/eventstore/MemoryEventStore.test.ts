import { describe, expect, it } from "@effect/vitest"
import { Chunk, Context, Effect, Layer, Stream } from "effect"
import { EventStore, ExpectedRevision, START } from "../../src/eventstore/EventStore.js"
import * as MemoryEventStore from "../../src/eventstore/MemoryEventStore.js"
import { suite } from "../contracts/EventStoreContract.js"

suite("memory", MemoryEventStore.layer)

describe("MemoryEventStore", () => {
  it.scoped("numbers positions 1, 2, 3, ... and readAll of an empty store ends at once", () =>
    Effect.gen(function* () {
      const store = Context.get(yield* Layer.build(MemoryEventStore.layer), EventStore)
      expect(Chunk.toReadonlyArray(yield* Stream.runCollect(store.readAll({ from: START })))).toEqual([])
      yield* store.append("sms-a", [{ id: "1", type: "A", data: null }], ExpectedRevision.NoStream())
      const result = yield* store.append(
        "sms-b",
        [
          { id: "2", type: "B", data: null },
          { id: "3", type: "B", data: null }
        ],
        ExpectedRevision.NoStream()
      )
      expect(result).toEqual({ revision: 1, position: 3, written: true })
      const all = Chunk.toReadonlyArray(yield* Stream.runCollect(store.readAll()))
      expect(all.map((e) => e.position)).toEqual([1, 2, 3])
    })
  )
})
