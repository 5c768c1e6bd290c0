/** What the message events write to their outbox rows: one patch per message per batch, pure. */
import { describe, expect, it } from "@effect/vitest"
import { messageIdFor } from "../../src/domain/Ids.js"
import {
  SmsDelivered,
  SmsDispatched,
  SmsFailed,
  SmsRequested,
  SmsResubmitted,
  SmsRetried,
  SmsStatusUnknown
} from "../../src/domain/Message.js"
import { patchesOf, type PositionedEvent } from "../../src/outbox/StatusPatch.js"

const at = new Date("2026-01-01T00:00:00Z")
const later = new Date("2026-01-01T00:00:05Z")
const ours = messageIdFor("shop", "outbox:sms_outbox:42")
const theirs = messageIdFor("shop", "order-42")

const requested = (messageId: typeof ours, idempotencyKey: string) =>
  new SmsRequested({
    messageId,
    clientId: "shop",
    idempotencyKey,
    to: "+447911123456",
    body: "hi",
    encoding: "GSM-7",
    segments: 1,
    requestedAt: at
  })
const dispatched = (messageId = ours) =>
  new SmsDispatched({ messageId, provider: "sim", providerMessageId: "p-1", attempt: 1, dispatchedAt: at })
const delivered = (contradicts?: "failed") =>
  new SmsDelivered({
    messageId: ours,
    provider: "sim",
    providerMessageId: "p-1",
    deliveredAt: later,
    rawStatus: "DELIVRD",
    ...(contradicts === undefined ? {} : { contradicts })
  })
const failed = (contradicts?: "delivered") =>
  new SmsFailed({
    messageId: ours,
    reason: "invalid_number",
    permanent: true,
    provider: "sim",
    code: "21211",
    detail: "no such number",
    failedAt: later,
    ...(contradicts === undefined ? {} : { contradicts })
  })

const positioned = (...events: ReadonlyArray<PositionedEvent["event"]>): ReadonlyArray<PositionedEvent> =>
  events.map((event, i) => ({ event, position: (i + 1) * 1024 }))

describe("status patches", () => {
  it("a whole life in one batch is one patch, found by the row's key, ending delivered", () => {
    const [patch, ...rest] = patchesOf(
      "sms_outbox",
      positioned(requested(ours, "outbox:sms_outbox:42"), dispatched(), delivered())
    )
    expect(rest).toEqual([])
    expect(patch).toEqual({
      messageId: ours,
      key: "42",
      position: 3 * 1024,
      status: "delivered",
      provider: "sim",
      providerMessageId: "p-1",
      error: null,
      dispatchedAt: at,
      completedAt: later
    })
  })

  it("without the request in the batch, the row is found by its message id", () => {
    const [patch] = patchesOf("sms_outbox", positioned(dispatched()))
    expect(patch).toMatchObject({
      key: undefined,
      status: "dispatched",
      providerMessageId: "p-1",
      completedAt: null
    })
  })

  it("messages of other producers and other tables are left out", () => {
    expect(patchesOf("sms_outbox", positioned(requested(theirs, "order-42"), dispatched(theirs)))).toEqual([])
    const other = messageIdFor("shop", "outbox:other_table:42")
    expect(
      patchesOf("sms_outbox", positioned(requested(other, "outbox:other_table:42"), dispatched(other)))
    ).toEqual([])
  })

  it("a failure carries its reason, code and detail; retries show as retrying with their reason", () => {
    expect(patchesOf("sms_outbox", positioned(failed()))[0]).toMatchObject({
      status: "failed",
      error: "invalid_number (21211): no such number",
      completedAt: later
    })
    const retried = new SmsRetried({
      messageId: ours,
      provider: "sim",
      attempt: 1,
      reason: "http_5xx",
      detail: "503",
      nextAttemptAt: later
    })
    expect(patchesOf("sms_outbox", positioned(retried))[0]).toMatchObject({
      status: "retrying",
      error: "http_5xx: 503"
    })
    expect(patchesOf("sms_outbox", positioned(retried, dispatched()))[0]).toMatchObject({
      status: "dispatched",
      error: null
    })
  })

  it("the first final status wins: a contradicting report changes nothing", () => {
    expect(patchesOf("sms_outbox", positioned(delivered(), failed("delivered")))[0]).toMatchObject({
      status: "delivered",
      position: 1024
    })
    expect(patchesOf("sms_outbox", positioned(failed("delivered")))).toEqual([])
  })

  it("unknown is not final; a resubmission takes a failed message back to queued", () => {
    const unknown = new SmsStatusUnknown({
      messageId: ours,
      provider: "sim",
      providerMessageId: "p-1",
      deadlineMs: 1000,
      at
    })
    expect(patchesOf("sms_outbox", positioned(dispatched(), unknown))[0]).toMatchObject({
      status: "unknown",
      completedAt: null
    })
    const resubmitted = new SmsResubmitted({ messageId: ours, by: "alice", resubmittedAt: later })
    expect(patchesOf("sms_outbox", positioned(failed(), resubmitted))[0]).toMatchObject({
      status: "queued",
      error: null,
      completedAt: null
    })
  })
})
