import type { MessageId } from "./Ids.js"
import { digitsOf } from "./PhoneNumber.js"

/** Every stream name is `<category>-<id>`, built here and nowhere else. */
export const streamName = (category: "sms" | "phone", id: string): string => `${category}-${id}`

export const messageStream = (id: MessageId): string => streamName("sms", id)
/** `number` is E.164, validated when its command was accepted */
export const phoneStream = (number: string): string => streamName("phone", digitsOf(number))
