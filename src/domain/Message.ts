/**
 * One SMS as an event-sourced decider: events, commands, state, `decide` and `evolve`.
 * Pure: time, ids and routing arrive as arguments.
 *
 * The event classes are storage contracts. Never rename a tag or reshape a field: add optional
 * fields, or add an upcaster where events are decoded.
 *
 * Its size (over 400 lines) is one decider: a message's events, commands, state, `evolve` and `decide`
 * read together, as the status rules need.
 */
import { Either, Schema } from "effect"
import { MessageId } from "./Ids.js"

export const RetryReason = Schema.Literal(
  "timeout",
  "http_5xx",
  "throttled",
  "network",
  "provider_unavailable"
)
export type RetryReason = typeof RetryReason.Type

export const FailureReason = Schema.Literal(
  "invalid_number",
  "rejected",
  "undeliverable",
  "expired",
  "retries_exhausted",
  "recipient_inactive",
  "no_provider"
)
export type FailureReason = typeof FailureReason.Type

/**
 * Where a final status came from when no delivery report brought it: `status_query`, the provider's
 * answer to a status query at the report deadline (the report was lost). Absent: a delivery report.
 */
export const ReportSource = Schema.Literal("status_query")
export type ReportSource = typeof ReportSource.Type

export class SmsRequested extends Schema.TaggedClass<SmsRequested>()("SmsRequested", {
  messageId: MessageId,
  clientId: Schema.String,
  idempotencyKey: Schema.String,
  /**
   * E.164, validated when the command was accepted. Events are facts: they are not re-validated on
   * decode, or a newer numbering-plan database could make old history unreadable.
   */
  to: Schema.String,
  from: Schema.optional(Schema.String),
  body: Schema.String,
  encoding: Schema.Literal("GSM-7", "UCS-2"),
  segments: Schema.Number,
  providers: Schema.optional(Schema.Array(Schema.String)),
  validUntil: Schema.optional(Schema.Date),
  metadata: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String })),
  trackingId: Schema.optional(Schema.String),
  /**
   * The W3C trace context of the intake's span, when traces were recorded: the message's later
   * steps record their spans in its trace (`observability/Tracing.ts`).
   */
  traceparent: Schema.optional(Schema.String),
  requestedAt: Schema.Date
}) {}

export class SmsDispatched extends Schema.TaggedClass<SmsDispatched>()("SmsDispatched", {
  messageId: MessageId,
  provider: Schema.String,
  providerMessageId: Schema.String,
  attempt: Schema.Number,
  dispatchedAt: Schema.Date
}) {}

export class SmsRetried extends Schema.TaggedClass<SmsRetried>()("SmsRetried", {
  messageId: MessageId,
  provider: Schema.String,
  attempt: Schema.Number,
  reason: RetryReason,
  detail: Schema.optional(Schema.String),
  nextAttemptAt: Schema.Date,
  nextProvider: Schema.optional(Schema.String)
}) {}

export class SmsDelivered extends Schema.TaggedClass<SmsDelivered>()("SmsDelivered", {
  messageId: MessageId,
  provider: Schema.String,
  providerMessageId: Schema.String,
  deliveredAt: Schema.Date,
  rawStatus: Schema.String,
  /**
   * Set when the message had already failed: the report is kept for the audit only (the first final
   * status wins), and reactors act on it no further. On the event, so they need not read the stream.
   */
  contradicts: Schema.optional(Schema.Literal("failed")),
  /** how the outcome was learnt when not from a delivery report: see `ReportSource` */
  source: Schema.optional(ReportSource)
}) {}

export class SmsFailed extends Schema.TaggedClass<SmsFailed>()("SmsFailed", {
  messageId: MessageId,
  reason: FailureReason,
  permanent: Schema.Boolean,
  provider: Schema.optional(Schema.String),
  code: Schema.optional(Schema.String),
  detail: Schema.optional(Schema.String),
  failedAt: Schema.Date,
  /**
   * Set when the message had already been delivered: the report is kept for the audit only (the
   * first final status wins), and reactors act on it no further. On the event, so they need not read
   * the stream.
   */
  contradicts: Schema.optional(Schema.Literal("delivered")),
  /** how the outcome was learnt when not from a delivery report: see `ReportSource` */
  source: Schema.optional(ReportSource)
}) {}

/**
 * An operator sent a dead-lettered message (failed with `retries_exhausted`) back to the providers.
 * The one event that leaves a terminal state, deliberately and on the record.
 */
export class SmsResubmitted extends Schema.TaggedClass<SmsResubmitted>()("SmsResubmitted", {
  messageId: MessageId,
  by: Schema.String,
  reason: Schema.optional(Schema.String),
  provider: Schema.optional(Schema.String),
  resubmittedAt: Schema.Date
}) {}

/** An intermediate status a provider reported (queued, sent, ...): on the record, never a status change. */
export class SmsStatusReported extends Schema.TaggedClass<SmsStatusReported>()("SmsStatusReported", {
  messageId: MessageId,
  provider: Schema.String,
  providerMessageId: Schema.String,
  rawStatus: Schema.String,
  reportedAt: Schema.Date
}) {}

/**
 * No final delivery report came within the provider's report deadline (`reportDeadlineMs`): the
 * outcome is recorded as unknown, so the message no longer looks in flight for ever. Not final: a
 * real report that arrives later still wins (a delivered or failed handset beats "we do not know").
 */
export class SmsStatusUnknown extends Schema.TaggedClass<SmsStatusUnknown>()("SmsStatusUnknown", {
  messageId: MessageId,
  provider: Schema.String,
  providerMessageId: Schema.optional(Schema.String),
  /** the deadline that ran out, as configured when it was checked */
  deadlineMs: Schema.Number,
  at: Schema.Date
}) {}

export const MessageEvent = Schema.Union(
  SmsRequested,
  SmsStatusReported,
  SmsStatusUnknown,
  SmsDispatched,
  SmsRetried,
  SmsDelivered,
  SmsFailed,
  SmsResubmitted
)
export type MessageEvent = typeof MessageEvent.Type
export const messageEventTypes: ReadonlyArray<MessageEvent["_tag"]> = [
  "SmsRequested",
  "SmsDispatched",
  "SmsRetried",
  "SmsDelivered",
  "SmsFailed",
  "SmsResubmitted",
  "SmsStatusReported",
  "SmsStatusUnknown"
]

// ---------------------------------------------------------------------------------------------
// State

/** `unknown`: dispatched, and no final report within the deadline; a late report still moves it on */
export type MessageStatus = "requested" | "dispatched" | "retrying" | "delivered" | "failed" | "unknown"

export type MessageState =
  | { readonly status: "none" }
  | {
      readonly status: MessageStatus
      readonly request: SmsRequested
      /** provider calls made so far (dispatches and retried attempts) */
      readonly attempts: number
      readonly provider?: string
      readonly providerMessageId?: string
      readonly nextProvider?: string
      readonly lastError?: string
      /** the first terminal event: it decides the final status (see `evolve`) */
      readonly final?: SmsDelivered | SmsFailed
      /** a later terminal report that disagreed with `final`: recorded once, for the audit trail */
      readonly contradictedBy?: SmsDelivered | SmsFailed
      /** intermediate statuses the provider reported, each recorded once */
      readonly reported?: ReadonlyArray<string>
    }

export const initialState: MessageState = { status: "none" }

/** `delivered` and `failed`: only an operator's resubmission leaves one (`canResubmit`). */
export const isFinalStatus = (status: MessageStatus | "none"): status is "delivered" | "failed" =>
  status === "delivered" || status === "failed"

export const isTerminal = (state: MessageState): boolean => isFinalStatus(state.status)

/**
 * The status rules, in one place: the status a message has after `event`. The decider's state and
 * every view of a message (the status read model, the gRPC watch) follow them. The first final
 * status wins; `unknown` is not final, so a late report still moves it on; the decider records
 * `SmsResubmitted` only for a message that may be resubmitted (`canResubmit`).
 */
export const statusAfter = (status: MessageStatus | "none", event: MessageEvent): MessageStatus | "none" => {
  switch (event._tag) {
    case "SmsRequested":
      return status === "none" ? "requested" : status
    case "SmsResubmitted":
      return status === "failed" ? "requested" : status
    case "SmsStatusUnknown":
      // only a dispatch still waiting for its report becomes unknown
      return status === "dispatched" ? "unknown" : status
    case "SmsStatusReported":
      // a provider's intermediate status (queued, sent...) never changes ours
      return status
    case "SmsDispatched":
      return status === "none" || isFinalStatus(status) ? status : "dispatched"
    case "SmsRetried":
      return status === "none" || isFinalStatus(status) ? status : "retrying"
    case "SmsDelivered":
      return status === "none" || isFinalStatus(status) ? status : "delivered"
    case "SmsFailed":
      return status === "none" || isFinalStatus(status) ? status : "failed"
  }
}

/** Only a message that ran out of retries (dead-lettered) can be sent again, by an operator. */
export const canResubmit = (state: MessageState): boolean =>
  state.status === "failed" &&
  state.final?._tag === "SmsFailed" &&
  state.final.reason === "retries_exhausted" &&
  state.contradictedBy === undefined

/**
 * Precedence: the first terminal event wins. A later, contradicting report (a `failed` DLR after
 * `delivered`) is still recorded in the stream for the audit trail, but never changes the status.
 */
export const evolve = (state: MessageState, event: MessageEvent): MessageState => {
  const status = statusAfter(state.status, event)
  if (state.status === "none") {
    return status === "requested" && event._tag === "SmsRequested"
      ? { status, request: event, attempts: 0 }
      : state
  }
  if (status === "none") return state
  switch (event._tag) {
    case "SmsRequested":
      return state
    case "SmsStatusReported":
      return { ...state, reported: [...(state.reported ?? []), event.rawStatus] }
    case "SmsResubmitted":
      return status !== state.status && canResubmit(state)
        ? {
            request: state.request,
            attempts: state.attempts,
            status,
            provider: event.provider ?? state.provider,
            lastError: state.lastError
          }
        : state
    case "SmsStatusUnknown":
      return status === state.status ? state : { ...state, status }
  }
  if (isTerminal(state)) {
    // a later terminal report that disagrees with the first is kept for the audit trail, once
    const contradicts =
      (event._tag === "SmsDelivered" || event._tag === "SmsFailed") && event._tag !== state.final?._tag
    return contradicts && state.contradictedBy === undefined ? { ...state, contradictedBy: event } : state
  }
  switch (event._tag) {
    case "SmsDispatched":
      return {
        ...state,
        status,
        attempts: Math.max(state.attempts, event.attempt),
        provider: event.provider,
        providerMessageId: event.providerMessageId,
        nextProvider: undefined
      }
    case "SmsRetried":
      return {
        ...state,
        status,
        attempts: Math.max(state.attempts, event.attempt),
        provider: event.provider,
        nextProvider: event.nextProvider,
        lastError: event.detail ? `${event.reason}: ${event.detail}` : event.reason
      }
    case "SmsDelivered":
      return { ...state, status, provider: event.provider, final: event }
    case "SmsFailed":
      return {
        ...state,
        status,
        provider: event.provider ?? state.provider,
        lastError: event.code ? `${event.reason} (${event.code})` : event.reason,
        final: event
      }
  }
}

export const fold = (events: Iterable<MessageEvent>, from: MessageState = initialState): MessageState => {
  let state = from
  for (const event of events) state = evolve(state, event)
  return state
}

// ---------------------------------------------------------------------------------------------
// Commands

export interface Request {
  readonly _tag: "Request"
  readonly event: SmsRequested
}
export interface RecordDispatch {
  readonly _tag: "RecordDispatch"
  readonly provider: string
  readonly providerMessageId: string
  readonly attempt: number
  readonly at: Date
}
export interface ScheduleRetry {
  readonly _tag: "ScheduleRetry"
  readonly provider: string
  readonly attempt: number
  readonly reason: RetryReason
  readonly detail?: string
  readonly nextAttemptAt: Date
  readonly nextProvider?: string
}
export interface RecordDeliveryReport {
  readonly _tag: "RecordDeliveryReport"
  readonly provider: string
  readonly providerMessageId: string
  readonly outcome:
    | { readonly _tag: "Delivered" }
    | { readonly _tag: "Failed"; readonly reason: FailureReason; readonly code?: string }
    | { readonly _tag: "Pending" }
  readonly rawStatus: string
  readonly at: Date
  /** absent for a delivery report; `status_query` when the provider answered a status query */
  readonly source?: ReportSource
}
export interface Fail {
  readonly _tag: "Fail"
  readonly reason: FailureReason
  readonly permanent: boolean
  readonly provider?: string
  readonly code?: string
  readonly detail?: string
  readonly at: Date
}

export interface Resubmit {
  readonly _tag: "Resubmit"
  readonly by: string
  readonly reason?: string
  readonly provider?: string
  readonly at: Date
}

/**
 * The report deadline of a dispatch ran out. Names the dispatch (its provider message id) so that a
 * check left over from an earlier dispatch never marks a later one.
 */
export interface RecordStatusUnknown {
  readonly _tag: "RecordStatusUnknown"
  readonly provider: string
  readonly providerMessageId: string
  readonly deadlineMs: number
  readonly at: Date
}

export type MessageCommand =
  | Request
  | RecordDispatch
  | ScheduleRetry
  | RecordDeliveryReport
  | Fail
  | Resubmit
  | RecordStatusUnknown

// ---------------------------------------------------------------------------------------------
// Rule violations

export class MessageAlreadyRequested extends Schema.TaggedError<MessageAlreadyRequested>()(
  "MessageAlreadyRequested",
  { messageId: Schema.String }
) {}

export class MessageNotRequested extends Schema.TaggedError<MessageNotRequested>()("MessageNotRequested", {
  command: Schema.String
}) {}

/** A DLR whose provider message id is not the one this message was dispatched with. */
export class ProviderMessageMismatch extends Schema.TaggedError<ProviderMessageMismatch>()(
  "ProviderMessageMismatch",
  { messageId: Schema.String, expected: Schema.String, received: Schema.String }
) {}

/** A DLR for a message whose dispatch is not recorded yet (the report beat the provider's answer). */
export class NotYetDispatched extends Schema.TaggedError<NotYetDispatched>()("NotYetDispatched", {
  messageId: Schema.String
}) {}

export class CannotResubmit extends Schema.TaggedError<CannotResubmit>()("CannotResubmit", {
  messageId: Schema.String,
  status: Schema.String
}) {
  override get message() {
    return `message ${this.messageId} is ${this.status}: only a message that failed with retries_exhausted can be resubmitted`
  }
}

export type MessageRuleViolation =
  | CannotResubmit
  | MessageAlreadyRequested
  | MessageNotRequested
  | ProviderMessageMismatch
  | NotYetDispatched

// ---------------------------------------------------------------------------------------------
// decide

const none: ReadonlyArray<MessageEvent> = []

/** Events built here from typed values skip re-validation (it was most of the decider's CPU). */
const trusted = { disableValidation: true } as const

export const decide = (
  command: MessageCommand,
  state: MessageState
): Either.Either<ReadonlyArray<MessageEvent>, MessageRuleViolation> => {
  if (command._tag === "Request") {
    return state.status === "none"
      ? Either.right([command.event])
      : Either.left(new MessageAlreadyRequested({ messageId: state.request.messageId }))
  }
  if (state.status === "none") return Either.left(new MessageNotRequested({ command: command._tag }))
  const messageId = state.request.messageId
  switch (command._tag) {
    case "RecordDispatch":
      // once dispatched or finished, a second dispatch record is a redelivery: nothing new happened
      if (state.status !== "requested" && state.status !== "retrying") return Either.right(none)
      return Either.right([
        new SmsDispatched(
          {
            messageId,
            provider: command.provider,
            providerMessageId: command.providerMessageId,
            attempt: command.attempt,
            dispatchedAt: command.at
          },
          trusted
        )
      ])
    case "ScheduleRetry":
      if (state.status !== "requested" && state.status !== "retrying") return Either.right(none)
      if (state.status === "retrying" && state.attempts >= command.attempt) return Either.right(none)
      return Either.right([
        new SmsRetried(
          {
            messageId,
            provider: command.provider,
            attempt: command.attempt,
            reason: command.reason,
            detail: command.detail,
            nextAttemptAt: command.nextAttemptAt,
            nextProvider: command.nextProvider
          },
          trusted
        )
      ])
    case "RecordDeliveryReport":
      return decideReport(command, state, messageId)
    case "Fail":
      if (isTerminal(state)) return Either.right(none)
      return Either.right([
        new SmsFailed(
          {
            messageId,
            reason: command.reason,
            permanent: command.permanent,
            provider: command.provider,
            code: command.code,
            detail: command.detail,
            failedAt: command.at
          },
          trusted
        )
      ])
    case "Resubmit":
      if (!canResubmit(state)) return Either.left(new CannotResubmit({ messageId, status: state.status }))
      return Either.right([
        new SmsResubmitted(
          {
            messageId,
            by: command.by,
            reason: command.reason,
            provider: command.provider,
            resubmittedAt: command.at
          },
          trusted
        )
      ])
    case "RecordStatusUnknown":
      // Not a rule violation otherwise: a report that came in time, an unknown already recorded, or
      // another dispatch is simply what the deadline check finds; nothing is left to record.
      if (state.status !== "dispatched" || state.providerMessageId !== command.providerMessageId) {
        return Either.right(none)
      }
      return Either.right([
        new SmsStatusUnknown(
          {
            messageId,
            provider: command.provider,
            providerMessageId: command.providerMessageId,
            deadlineMs: command.deadlineMs,
            at: command.at
          },
          trusted
        )
      ])
    default:
      return absurd(command)
  }
}

const decideReport = (
  command: RecordDeliveryReport,
  state: Exclude<MessageState, { status: "none" }>,
  messageId: MessageId
): Either.Either<ReadonlyArray<MessageEvent>, MessageRuleViolation> => {
  if (state.providerMessageId === undefined) return Either.left(new NotYetDispatched({ messageId }))
  if (state.providerMessageId !== command.providerMessageId) {
    return Either.left(
      new ProviderMessageMismatch({
        messageId,
        expected: state.providerMessageId,
        received: command.providerMessageId
      })
    )
  }
  if (command.outcome._tag === "Pending") {
    return Either.right(
      state.reported?.includes(command.rawStatus)
        ? none
        : [
            new SmsStatusReported(
              {
                messageId,
                provider: command.provider,
                providerMessageId: command.providerMessageId,
                rawStatus: command.rawStatus,
                reportedAt: command.at
              },
              trusted
            )
          ]
    )
  }
  // a duplicate of the final report changes nothing; one contradicting report is kept for the audit
  if (state.final !== undefined) {
    const again = state.final._tag === (command.outcome._tag === "Delivered" ? "SmsDelivered" : "SmsFailed")
    if (again || state.contradictedBy !== undefined) return Either.right(none)
  }
  // marked as contradicting the final status, so that reactors can skip it without reading the stream
  const contradicts = state.final !== undefined
  // the key only when set: an event from a delivery report stays exactly what it was before queries
  const source = command.source === undefined ? {} : { source: command.source }
  const event =
    command.outcome._tag === "Delivered"
      ? new SmsDelivered(
          {
            messageId,
            provider: command.provider,
            providerMessageId: command.providerMessageId,
            deliveredAt: command.at,
            rawStatus: command.rawStatus,
            contradicts: contradicts ? "failed" : undefined,
            ...source
          },
          trusted
        )
      : new SmsFailed(
          {
            messageId,
            reason: command.outcome.reason,
            permanent: true,
            provider: command.provider,
            code: command.outcome.code,
            detail: `${command.source === "status_query" ? "queried status" : "DLR status"} ${command.rawStatus}`,
            failedAt: command.at,
            contradicts: contradicts ? "delivered" : undefined,
            ...source
          },
          trusted
        )
  return Either.right([event])
}

const absurd = (value: never): never => {
  throw new Error(`unhandled command ${JSON.stringify(value)}`)
}
