import { hash as oneShotHash } from "node:crypto"
import { Schema } from "effect"

/**
 * Namespace of message ids: `messageId = uuidv5(clientId + "\n" + idempotencyKey, MESSAGE_ID_NAMESPACE)`.
 * Part of the producers' contract (they may compute the id themselves): never change it.
 */
export const MESSAGE_ID_NAMESPACE = "6f1d2c3e-5b8a-4e7f-9c0d-1a2b3c4d5e6f"
/** Namespace of deterministic event ids, so a retried append is recognised as the same append. */
const EVENT_ID_NAMESPACE = "0e7b9c52-4a1f-4d8e-b3a6-7c5d2e1f9a80"

export const MessageId = Schema.UUID.pipe(Schema.brand("MessageId"))
export type MessageId = typeof MessageId.Type

/** `Schema.is(MessageId)` as a plain test (Schema.UUID's own pattern): hot paths ask it per message. */
const UUID_PATTERN = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/
export const isMessageId = (value: unknown): value is MessageId =>
  typeof value === "string" && UUID_PATTERN.test(value)

const namespaceBytes = (uuid: string): Buffer => Buffer.from(uuid.replaceAll("-", ""), "hex")
const MESSAGE_NAMESPACE_BYTES = namespaceBytes(MESSAGE_ID_NAMESPACE)
const EVENT_NAMESPACE_BYTES = namespaceBytes(EVENT_ID_NAMESPACE)

/**
 * RFC 4122 version 5 (SHA-1, UTF-8 name), as the `uuid` package computes it (a test holds the two
 * equal), with node's own UTF-8 encoding: every message and event id is one, and the package's
 * character-by-character encoding was most of their cost.
 */
export const uuidV5 = (name: string, namespace: Buffer): string => {
  // one buffer and the one-shot `hash`: half the cost of a Hash object's create, update and digest
  const input = Buffer.allocUnsafe(namespace.length + Buffer.byteLength(name, "utf8"))
  namespace.copy(input, 0)
  input.write(name, namespace.length, "utf8")
  const hash = oneShotHash("sha1", input, "buffer")
  hash[6] = ((hash[6] ?? 0) & 0x0f) | 0x50
  hash[8] = ((hash[8] ?? 0) & 0x3f) | 0x80
  const hex = hash.toString("hex", 0, 16)
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

export const messageIdFor = (clientId: string, idempotencyKey: string): MessageId =>
  // a v5 UUID by construction: the brand's Schema check (a parse per message) would only repeat it
  MessageId.make(uuidV5(`${clientId}\n${idempotencyKey}`, MESSAGE_NAMESPACE_BYTES), {
    disableValidation: true
  })

/** An event id derived from what the event records, e.g. `eventIdFor(id, "dispatched", 2)`. */
export const eventIdFor = (...parts: ReadonlyArray<string | number>): string =>
  uuidV5(parts.join("\n"), EVENT_NAMESPACE_BYTES)
