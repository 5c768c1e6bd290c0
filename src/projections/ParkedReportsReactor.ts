/**
 * Joins a parked delivery report (one that arrived before its dispatch was recorded and gave up
 * waiting) to its message: when the dispatch shows up, the report goes back on
 * `sms.dlr.<provider>`. A reactor: it acts, so it only ever moves forward.
 *
 * (The provider-id index itself is written once, by the provider actor, and only for providers
 * that cannot echo our reference; see `ProviderActor`.)
 */
import { Effect } from "effect"
import { fromStored } from "../eventstore/MessageEvents.js"
import type { Nats } from "../nats/Nats.js"
import { hasParked, requeueParked } from "./ParkedReports.js"
import type { Projection } from "./ProjectionRunner.js"
import { indexKey } from "./ProviderIndex.js"
import type { ReadModels } from "./ReadModels.js"

export const projection: Projection<unknown, ReadModels | Nats> = {
  name: "parked-reports",
  handles: new Set(["SmsDispatched"]),
  applyBatch: (recorded) =>
    Effect.gen(function* () {
      // parked reports are rare: one look at the bucket per batch, not a lookup per dispatch
      if (!(yield* hasParked)) return
      yield* Effect.forEach(
        recorded,
        (record) =>
          Effect.gen(function* () {
            const event = yield* fromStored(record)
            if (event._tag !== "SmsDispatched") return
            yield* requeueParked(indexKey(event.provider, event.providerMessageId))
          }),
        { concurrency: 32, discard: true }
      )
    })
}
