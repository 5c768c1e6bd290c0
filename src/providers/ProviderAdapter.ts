/**
 * The provider adapter contract: one outbound call per attempt, classified into what the message
 * actor needs to decide (dispatch, retry, fail), and the provider's DLR webhook verified and
 * translated into our vocabulary. Adapters never fail: the classification is the result.
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
}
