import type { MessageId } from "./Ids.js"
import { digitsOf, type E164 } from "./PhoneNumber.js"

/** Every stream name is `<category>-<id>`, built here and nowhere else. */
export const streamName = (category: "sms" | "phone", id: string): string => `${category}-${id}`

export const messageStream = (id: MessageId): string => streamName("sms", id)
export const phoneStream = (number: E164): string => streamName("phone", digitsOf(number))

export const categoryOf = (name: string): string => name.slice(0, Math.max(0, name.indexOf("-")))
