/**
 * What the message events say about outbox rows: one patch per message of a batch, folded from its
 * events in order, so a batch is one write however many events it holds. Pure.
 *
 * A patch carries the position of the last event folded into it; the write applies it only to a row
 * whose `last_event_position` is lower (or unset), so a replayed batch, or two gateways applying the
 * same events, change nothing, and a row never goes back to an older status.
 */
import type { MessageEvent } from "../domain/Message.js"
import type { OutboxStatus } from "./Mapping.js"
import { MAX_ERROR_LENGTH, rowKeyOf } from "./RowCommand.js"

export interface StatusPatch {
  readonly messageId: string
  /**
   * the row's primary key, when the batch holds the message's `SmsRequested`: the write then finds
   * the row by its key and records the message id on it (the claim may not have, yet or ever: it
   * crashed after storing the command); otherwise it finds the row by message id
   */
  readonly key: string | undefined
  /** position of the last event folded in */
  readonly position: number
  readonly status: OutboxStatus
  readonly provider: string | undefined
  readonly providerMessageId: string | undefined
  /** the error now: set for `failed` and `retrying`, cleared (null) otherwise */
  readonly error: string | null
  readonly dispatchedAt: Date | undefined
  /** when it became final (`delivered`, `failed`); cleared otherwise (a resubmission leaves `failed`) */
  readonly completedAt: Date | null
}

export interface PositionedEvent {
  readonly event: MessageEvent
  readonly position: number
}

/** The events the status reactor reads. */
export const STATUS_EVENTS: ReadonlySet<MessageEvent["_tag"]> = new Set([
  "SmsRequested",
  "SmsDispatched",
  "SmsRetried",
  "SmsDelivered",
  "SmsFailed",
  "SmsStatusUnknown",
  "SmsResubmitted"
])

const clip = (text: string) => text.slice(0, MAX_ERROR_LENGTH)

type Draft = { -readonly [K in keyof StatusPatch]: StatusPatch[K] }

/** Folds one event into the draft; false when the event changes nothing for the row. */
const step = (draft: Draft, event: MessageEvent, position: number): boolean => {
  switch (event._tag) {
    case "SmsRequested":
      draft.status = "queued"
      break
    case "SmsResubmitted":
      draft.status = "queued"
      draft.error = null
      draft.completedAt = null
      break
    case "SmsDispatched":
      draft.status = "dispatched"
      draft.provider = event.provider
      draft.providerMessageId = event.providerMessageId
      draft.dispatchedAt = event.dispatchedAt
      draft.error = null
      draft.completedAt = null
      break
    case "SmsRetried":
      draft.status = "retrying"
      draft.provider = event.provider
      draft.error = clip(`${event.reason}${event.detail === undefined ? "" : `: ${event.detail}`}`)
      draft.completedAt = null
      break
    case "SmsDelivered":
      // the first final status wins: a contradicting report is for the audit only
      if (event.contradicts !== undefined) return false
      draft.status = "delivered"
      draft.provider = event.provider
      draft.providerMessageId = event.providerMessageId
      draft.error = null
      draft.completedAt = event.deliveredAt
      break
    case "SmsFailed": {
      if (event.contradicts !== undefined) return false
      draft.status = "failed"
      if (event.provider !== undefined) draft.provider = event.provider
      const code = event.code === undefined ? "" : ` (${event.code})`
      const detail = event.detail === undefined ? "" : `: ${event.detail}`
      draft.error = clip(`${event.reason}${code}${detail}`)
      draft.completedAt = event.failedAt
      break
    }
    case "SmsStatusUnknown":
      draft.status = "unknown"
      draft.provider = event.provider
      if (event.providerMessageId !== undefined) draft.providerMessageId = event.providerMessageId
      draft.error = null
      draft.completedAt = null
      break
    default:
      return false
  }
  draft.position = position
  return true
}

/**
 * One patch per message of `events` (in stream order), for the rows of `table`. Messages whose
 * `SmsRequested` is in the batch and names another table or no outbox row are left out; the others
 * are written by message id, where no row of this table matches the messages of other producers.
 */
export const patchesOf = (
  table: string,
  events: ReadonlyArray<PositionedEvent>
): ReadonlyArray<StatusPatch> => {
  const drafts = new Map<string, Draft>()
  const foreign = new Set<string>()
  for (const { event, position } of events) {
    const id = event.messageId
    if (foreign.has(id)) continue
    let draft = drafts.get(id)
    if (event._tag === "SmsRequested") {
      const key = rowKeyOf(table, event.idempotencyKey)
      if (key === undefined) {
        foreign.add(id)
        drafts.delete(id)
        continue
      }
      draft = draft ?? blank(id)
      draft.key = key
      drafts.set(id, draft)
    }
    const next = draft ?? blank(id)
    if (step(next, event, position) && draft === undefined) drafts.set(id, next)
  }
  return [...drafts.values()].filter((draft) => draft.position >= 0)
}

const blank = (messageId: string): Draft => ({
  messageId,
  key: undefined,
  position: -1,
  status: "queued",
  provider: undefined,
  providerMessageId: undefined,
  error: null,
  dispatchedAt: undefined,
  completedAt: null
})
