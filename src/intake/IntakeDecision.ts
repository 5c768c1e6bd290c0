/**
 * What the intake decides for one valid command, as plain functions: the `SmsRequested` it records
 * and whether the message is queued on a provider or refused on the record. The actor around them
 * (`Intake.ts`) looks up what they need and stores what they decide.
 */
import { Either } from "effect"
import type { MessageId } from "../domain/Ids.js"
import { decide, type Fail, fold, initialState, type MessageEvent, SmsRequested } from "../domain/Message.js"
import { type SendSms, segmentsOfCommand } from "../domain/SendSms.js"
import type { WorkItem } from "../dispatch/WorkItem.js"

/** What the intake decided for one command: pure, from the command and what was looked up. */
export type IntakeDecision =
  | { readonly _tag: "Queue"; readonly events: ReadonlyArray<MessageEvent>; readonly work: WorkItem }
  | { readonly _tag: "Refuse"; readonly events: ReadonlyArray<MessageEvent> }

/**
 * The `SmsRequested` of a valid command. Built from validated fields: not validated again.
 * `traceparent`: the intake's span, while traces are recorded.
 */
export const requestedEvent = (
  command: SendSms,
  messageId: MessageId,
  now: Date,
  traceparent?: string
): SmsRequested => {
  const { encoding, segments } = segmentsOfCommand(command)
  return new SmsRequested(
    {
      messageId,
      clientId: command.clientId,
      idempotencyKey: command.idempotencyKey,
      to: command.to,
      from: command.from,
      body: command.body,
      encoding,
      segments,
      providers: command.providers,
      validUntil: command.validUntil,
      metadata: command.metadata,
      trackingId: command.trackingId,
      traceparent,
      requestedAt: now
    },
    { disableValidation: true }
  )
}

/**
 * Decides one new message: queued on `provider`, or refused on the record (an inactive number, whose
 * proof is `inactive`; no configured provider). Pure.
 */
export const decideIntake = (
  requested: SmsRequested,
  provider: string | undefined,
  inactive: string | undefined
): IntakeDecision => {
  const refusal: Fail | undefined =
    inactive !== undefined
      ? {
          _tag: "Fail",
          reason: "recipient_inactive",
          permanent: true,
          detail: inactive,
          at: requested.requestedAt
        }
      : provider === undefined
        ? {
            _tag: "Fail",
            reason: "no_provider",
            permanent: true,
            detail: `none of the providers [${requested.providers?.join(", ") ?? ""}] is configured`,
            at: requested.requestedAt
          }
        : undefined
  // the message decider's own rules; on a new stream neither command can be refused
  const events = [...Either.getOrThrow(decide({ _tag: "Request", event: requested }, initialState))]
  if (refusal === undefined && provider !== undefined) {
    return {
      _tag: "Queue",
      events,
      work: {
        messageId: requested.messageId,
        provider,
        priorAttempts: 0,
        ...(requested.trackingId === undefined ? {} : { trackingId: requested.trackingId }),
        fresh: { revision: 0, status: "requested", request: requested }
      }
    }
  }
  if (refusal !== undefined) events.push(...Either.getOrThrow(decide(refusal, fold(events))))
  return { _tag: "Refuse", events }
}
