/** What `sms.work.<provider>` carries: a pointer to the message stream, which holds everything else. */
import { Effect, Schema } from "effect"
import { MessageId } from "../domain/Ids.js"
import { Nats, NatsError } from "../nats/Nats.js"
import { Subjects } from "../nats/Topology.js"

export class WorkItem extends Schema.Class<WorkItem>("WorkItem")({
  messageId: MessageId,
  provider: Schema.String,
  /** provider calls made for this message before this work item (on other providers) */
  priorAttempts: Schema.Number,
  trackingId: Schema.optional(Schema.String)
}) {}

export const decodeWorkItem = Schema.decodeUnknown(Schema.parseJson(WorkItem))
const encodeWorkItem = Schema.encodeSync(Schema.parseJson(WorkItem))

/**
 * Publishes a work item. `origin` names what caused this hop (the work item's own JetStream sequence
 * for a failover, a label for intake or a resubmission), so a re-run of the same step is dropped by
 * JetStream's dedupe window while two different hops never share an id.
 */
export const publishWork = (item: WorkItem, origin: string | number) =>
  Effect.flatMap(Nats, ({ js }) =>
    Effect.tryPromise({
      try: () =>
        js.publish(Subjects.work(item.provider), encodeWorkItem(item), {
          msgID: `${item.messageId}:${item.provider}:${item.priorAttempts}:${origin}`
        }),
      catch: (cause) => new NatsError({ reason: "RequestFailed", message: "cannot publish work item", cause })
    })
  )
