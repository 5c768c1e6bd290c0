/**
 * The intake's quota gate: a `SendSms` from NATS is charged to its client's daily quota before it
 * becomes a message. A command over quota is refused like a malformed one: stored on `sms.rejects`
 * (field `clientId`, reason "daily quota exceeded") and terminated, and no message stream is created,
 * exactly as the HTTP ingress answers 429 without creating one; the same idempotency key can be sent
 * again the next day. Commands the HTTP ingress stored were charged there and pass (see `Quotas`).
 *
 * When no client registry is provided (some tests, tools), nothing is enforced.
 */
import { Effect, Option } from "effect"
import { publishReject } from "../actors/Rejects.js"
import { type Verdict, Verdict as Verdicts } from "../actors/JetStreamWorker.js"
import { messageIdFor } from "../domain/Ids.js"
import { maskNumber } from "../domain/PhoneNumber.js"
import type { SendSms } from "../domain/SendSms.js"
import { Subjects } from "../nats/Topology.js"
import { quotaRejections } from "../observability/Metrics.js"
import { Clients } from "./Clients.js"

export const QUOTA_EXCEEDED_REASON = "daily quota exceeded"

/**
 * Runs `accepted` when `command` is within its client's quota (charging it), otherwise stores the
 * refusal on `sms.rejects` and answers `Term`.
 */
export const withinQuota = <E, R>(
  command: SendSms,
  raw: Uint8Array,
  ref: string,
  accepted: Effect.Effect<Verdict, E, R>
) =>
  Effect.gen(function* () {
    const registry = yield* Effect.serviceOption(Clients)
    if (Option.isNone(registry)) return yield* accepted
    const messageId = messageIdFor(command.clientId, command.idempotencyKey)
    const charge = yield* registry.value.charge(command.clientId, messageId)
    if (charge._tag !== "Exhausted") return yield* accepted
    yield* quotaRejections(command.clientId, "nats")
    yield* Effect.logWarning("SendSms over the daily quota: rejected").pipe(
      Effect.annotateLogs({
        messageId,
        clientId: command.clientId,
        to: maskNumber(command.to),
        trackingId: command.trackingId ?? messageId,
        limit: charge.limit
      })
    )
    yield* publishReject({
      source: Subjects.send,
      field: "clientId",
      reason: QUOTA_EXCEEDED_REASON,
      payload: raw,
      ref
    })
    return Verdicts.Term({ reason: `${command.clientId}: ${QUOTA_EXCEEDED_REASON} (${charge.limit})` })
  })
