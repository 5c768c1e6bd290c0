/**
 * The message states this process recorded last, so the next step of a message (its delivery
 * report, usually within milliseconds of its dispatch) decides without reading the stream. A hint
 * only: the append names the cached revision, so when another process wrote in between the append
 * conflicts and the command is decided again on a fresh read.
 */
import { Context, Layer } from "effect"
import type { MessageState } from "../domain/Message.js"
import type { Loaded } from "../platform/CommandHandler.js"

/** Enough for the reports of a burst still in flight; each entry is one message's state. */
const CAPACITY = 20_000

export interface MessageCacheService {
  readonly get: (messageId: string) => Loaded<MessageState> | undefined
  readonly set: (messageId: string, loaded: Loaded<MessageState>) => void
  readonly delete: (messageId: string) => void
}

export class MessageCache extends Context.Tag("sms-gateway/MessageCache")<
  MessageCache,
  MessageCacheService
>() {
  static readonly layer = Layer.sync(MessageCache, () => {
    const entries = new Map<string, Loaded<MessageState>>()
    return {
      get: (messageId) => entries.get(messageId),
      set: (messageId, loaded) => {
        const known = entries.get(messageId)
        if (known !== undefined && known.revision > loaded.revision) return
        entries.delete(messageId)
        entries.set(messageId, loaded)
        if (entries.size > CAPACITY) {
          const oldest = entries.keys().next()
          if (!oldest.done) entries.delete(oldest.value)
        }
      },
      delete: (messageId) => {
        entries.delete(messageId)
      }
    }
  })
}
