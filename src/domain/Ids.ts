import { Schema } from "effect"
import { v5 as uuidv5 } from "uuid"

/**
 * Namespace of message ids: `messageId = uuidv5(clientId + "\n" + idempotencyKey, MESSAGE_ID_NAMESPACE)`.
 * Part of the producers' contract (they may compute the id themselves): never change it.
 */
export const MESSAGE_ID_NAMESPACE = "6f1d2c3e-5b8a-4e7f-9c0d-1a2b3c4d5e6f"
/** Namespace of deterministic event ids, so a retried append is recognised as the same append. */
const EVENT_ID_NAMESPACE = "0e7b9c52-4a1f-4d8e-b3a6-7c5d2e1f9a80"

export const MessageId = Schema.UUID.pipe(Schema.brand("MessageId"))
export type MessageId = typeof MessageId.Type

export const messageIdFor = (clientId: string, idempotencyKey: string): MessageId =>
  MessageId.make(uuidv5(`${clientId}\n${idempotencyKey}`, MESSAGE_ID_NAMESPACE))

/** An event id derived from what the event records, e.g. `eventIdFor(id, "dispatched", 2)`. */
export const eventIdFor = (...parts: ReadonlyArray<string | number>): string =>
  uuidv5(parts.join("\n"), EVENT_ID_NAMESPACE)
