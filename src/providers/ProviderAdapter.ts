/**
 * The provider adapter contract: one outbound call per attempt, classified into what the message
 * actor needs to decide (dispatch, retry, fail), and the provider's DLR webhook verified and
 * translated into our vocabulary. Adapters never fail: the classification is the result (the one
 * exception, a status query, fails with the reason it got no usable answer).
 */
import { Effect, Either, Schema } from "effect"
import type { FailureReason, RetryReason } from "../domain/Message.js"

export interface OutboundSms {
  readonly messageId: string
  readonly to: string
  readonly from?: string
  readonly body: string
  readonly callbackUrl: string
}

export type SubmitResult =
  | { readonly _tag: "Accepted"; readonly providerMessageId: string }
  | {
      readonly _tag: "Transient"
      readonly reason: RetryReason
      readonly detail: string
      readonly retryAfterMs?: number
    }
  | {
      readonly _tag: "Permanent"
      readonly reason: "invalid_number" | "rejected"
      readonly code: string
      readonly detail: string
    }

export interface DeliveryReport {
  readonly providerMessageId: string
  /** our message id, when the provider echoes the reference we sent */
  readonly reference?: string
  /** "pending" for intermediate statuses (accepted, queued, sent...) */
  readonly outcome: "delivered" | "failed" | "pending"
  /** set when outcome is "failed": invalid_number, undeliverable, rejected */
  readonly failureReason?: FailureReason
  readonly code?: string
  readonly rawStatus: string
}

export interface InboundWebhook {
  readonly headers: Readonly<Record<string, string | undefined>>
  /** the body as UTF-8 text */
  readonly body: string
  /** the body's bytes as received, when known: a signature over the body is checked on these */
  readonly rawBody?: Uint8Array
  readonly url: string
}

export class InvalidDeliveryReport extends Schema.TaggedError<InvalidDeliveryReport>()(
  "InvalidDeliveryReport",
  { reason: Schema.Literal("BadSignature", "Malformed"), message: Schema.String }
) {}

/**
 * What a provider's status query answered (at a report deadline, when its report never came): a
 * final status, in the very shape a delivery report yields, so the decider applies it as one; or a
 * status that is not final yet (queued, sent, accepted...), with the provider's own word for it.
 */
export type QueriedStatus =
  | {
      readonly _tag: "Final"
      /** `outcome` is "delivered" or "failed" */
      readonly report: DeliveryReport
    }
  | { readonly _tag: "NotFinal"; readonly rawStatus: string }

/**
 * A status query that got no usable answer. `reason`: `timeout`, `network` (no answer), `http_5xx`,
 * `throttled` (the provider's trouble), `not_found` (it does not know the id), `auth` (our
 * credentials), `unexpected` (another HTTP status), `malformed` (an answer we cannot read).
 */
export class StatusQueryError extends Schema.TaggedError<StatusQueryError>()("StatusQueryError", {
  reason: Schema.Literal(
    "timeout",
    "network",
    "http_5xx",
    "throttled",
    "not_found",
    "auth",
    "unexpected",
    "malformed"
  ),
  message: Schema.String
}) {}

export interface ProviderAdapter {
  readonly id: string
  readonly type: "generic-http" | "twilio" | "vonage"
  /** one HTTP call; never fails: every outcome, including network errors and timeouts, is classified */
  readonly submit: (sms: OutboundSms) => Effect.Effect<SubmitResult>
  /** the same call as a promise that never rejects: a batch starts all its calls without a fiber each */
  readonly submitNow: (sms: OutboundSms) => Promise<SubmitResult>
  /** checks the webhook's signature, then parses it */
  readonly parseDeliveryReport: (
    webhook: InboundWebhook
  ) => Either.Either<DeliveryReport, InvalidDeliveryReport>
  /**
   * Asks the provider for a message's current status, where its API has a way (Twilio's Message
   * resource, Vonage's Reports API; generic-http has none). One HTTP call within the adapter's timeout.
   */
  readonly queryStatus?: (providerMessageId: string) => Effect.Effect<QueriedStatus, StatusQueryError>
}
