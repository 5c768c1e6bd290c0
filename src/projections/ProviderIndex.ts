/**
 * provider message id -> message id, so a delivery report (which only knows the provider's id)
 * finds its message. Written right after `SmsDispatched` is stored; a rebuild can derive it again
 * from those events.
 */
import { Effect, Option } from "effect"
import type { MessageId } from "../domain/Ids.js"
import { NatsError } from "../nats/Nats.js"
import { ReadModels } from "./ReadModels.js"

/** KV keys allow `[-/_=.a-zA-Z0-9]`; other provider ids are stored base64url-encoded. */
export const indexKey = (provider: string, providerMessageId: string): string =>
  /^[-_=a-zA-Z0-9]+$/.test(providerMessageId)
    ? `${provider}.${providerMessageId}`
    : `${provider}.b64_${Buffer.from(providerMessageId).toString("base64url")}`

export const recordProviderMessage = (provider: string, providerMessageId: string, messageId: MessageId) =>
  Effect.flatMap(ReadModels, ({ providerIndex }) =>
    Effect.tryPromise({
      try: () => providerIndex.put(indexKey(provider, providerMessageId), messageId),
      catch: (cause) =>
        new NatsError({ reason: "RequestFailed", message: "cannot index provider message", cause })
    })
  )

export const findMessageId = (provider: string, providerMessageId: string) =>
  Effect.flatMap(ReadModels, ({ providerIndex }) =>
    Effect.tryPromise({
      try: () => providerIndex.get(indexKey(provider, providerMessageId)),
      catch: (cause) =>
        new NatsError({ reason: "RequestFailed", message: "cannot read provider index", cause })
    }).pipe(
      Effect.map((entry) =>
        entry === null || entry.operation !== "PUT" ? Option.none() : Option.some(entry.string() as MessageId)
      )
    )
  )
