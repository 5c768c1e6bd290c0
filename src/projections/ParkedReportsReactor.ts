/**
 * The provider-message-id index as a projection, so it can be rebuilt from the events (the provider
 * actor also writes each entry as soon as it records a dispatch, for speed). It also joins a parked
 * delivery report (one that arrived before its dispatch and gave up waiting) to its message: the
 * report goes back on `sms.dlr.<provider>` now that its message can be found.
 */
import { Effect } from "effect"
import { fromStored } from "../eventstore/MessageEvents.js"
import type { Nats } from "../nats/Nats.js"
import { hasParked, requeueParked } from "./ParkedReports.js"
import type { Projection } from "./ProjectionRunner.js"
import { indexKey, recordProviderMessage } from "./ProviderIndex.js"
import type { ReadModels } from "./ReadModels.js"

export const projection: Projection<unknown, ReadModels | Nats> = {
  name: "provider-index",
  handles: new Set(["SmsDispatched"]),
  applyBatch: (recorded) =>
    Effect.gen(function* () {
      // parked reports are rare: one look at the bucket per batch, not a lookup per dispatch
      const anyParked = yield* hasParked
      yield* Effect.forEach(
        recorded,
        (record) =>
          Effect.gen(function* () {
            const event = yield* fromStored(record)
            if (event._tag !== "SmsDispatched") return
            yield* recordProviderMessage(event.provider, event.providerMessageId, event.messageId)
            if (anyParked) yield* requeueParked(indexKey(event.provider, event.providerMessageId))
          }),
        { concurrency: 32, discard: true }
      )
    })
}
