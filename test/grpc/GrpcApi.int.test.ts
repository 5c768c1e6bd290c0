/**
 * The gRPC API (issue 17) with a real gRPC client over loopback, against a whole gateway in the test
 * process (real nats-server, simulators as providers): send, watch, history, the errors with their
 * status codes and details, keys and scopes, health.
 */
import { randomUUID } from "node:crypto"
import * as grpc from "@grpc/grpc-js"
import * as protoLoader from "@grpc/proto-loader"
import { describe, expect, layer } from "@effect/vitest"
import { Effect } from "effect"
import { Clients } from "../../src/clients/Clients.js"
import { messageIdFor } from "../../src/domain/Ids.js"
import { STATUS_DETAILS_KEY } from "../../src/grpc/Errors.js"
import { messageTypeIn } from "../../src/grpc/Proto.js"
import { errorDetails } from "../../src/grpc/StandardProtos.js"
import { issueApiKey } from "../support/apiKeys.js"
import { eventually } from "../support/gateway.js"
import {
  type CallEnd,
  grpcClient,
  INVALID_NUMBER,
  jsonOf,
  TestGateway,
  TestGatewayLive,
  type WatchResult
} from "./support.js"

const details = protoLoader.fromJSON(errorDetails, { keepCase: true, longs: Number, defaults: true })
const RpcStatus = messageTypeIn<{
  code: number
  message: string
  details: Array<{ type_url: string; value: Buffer }>
}>(details, "google.rpc.Status")
const RetryInfo = messageTypeIn<{ retry_delay: { seconds: number; nanos: number } }>(
  details,
  "google.rpc.RetryInfo"
)
const BadRequest = messageTypeIn<{ field_violations: Array<{ field: string; description: string }> }>(
  details,
  "google.rpc.BadRequest"
)

/** The `google.rpc.Status` of a failed call's trailers, its details by type. */
const statusDetails = (end: CallEnd) => {
  const [raw] = end.metadata.get(STATUS_DETAILS_KEY)
  if (!(raw instanceof Buffer)) return undefined
  const status = RpcStatus.deserialize(raw)
  const byType = new Map(status.details.map((detail) => [detail.type_url.split("/").pop(), detail.value]))
  const badRequest = byType.get("google.rpc.BadRequest")
  const retryInfo = byType.get("google.rpc.RetryInfo")
  return {
    code: status.code,
    message: status.message,
    badRequest: badRequest && BadRequest.deserialize(badRequest),
    retryInfo: retryInfo && RetryInfo.deserialize(retryInfo)
  }
}

const expectInvalidArgument = (end: CallEnd, field: string) => {
  expect(grpc.status[end.code], end.details).toBe("INVALID_ARGUMENT")
  expect(end.details.startsWith(`${field}: `), end.details).toBe(true)
  const rich = statusDetails(end)
  expect(rich?.code).toBe(grpc.status.INVALID_ARGUMENT)
  expect(rich?.badRequest?.field_violations[0]?.field).toBe(field)
  expect(rich?.badRequest?.field_violations[0]?.description).toBe(end.details.slice(field.length + 2))
}

/** Revisions come once each, in order, none missing; the last update is final and only it. */
const expectGapless = (watch: WatchResult) => {
  expect(grpc.status[watch.end.code], watch.end.details).toBe("OK")
  const revisions = watch.updates.map((u) => u.revision)
  const first = revisions[0] ?? 0
  expect(revisions).toEqual(revisions.map((_, i) => first + i))
  expect(watch.updates.map((u) => u.final)).toEqual(
    watch.updates.map((_, i) => i === watch.updates.length - 1)
  )
}

const keyFor = (clientId: string, scope: "client" | "auditor" | "admin" = "client", dailyQuota?: number) =>
  Effect.flatMap(TestGateway, (gw) => issueApiKey(gw.natsUrl, clientId, scope, dailyQuota))

const client = Effect.flatMap(TestGateway, (gw) => grpcClient(gw.address))

const send = { to: "+447911123456", body: "hello over gRPC" }

describe("gRPC API", () => {
  layer(TestGatewayLive, { excludeTestServices: true, timeout: "60 seconds" })("sms.v1.SmsGateway", (it) => {
    it.scoped(
      "SendSms answers the message id; WatchMessage follows it to delivered, one update per event, and ends",
      () =>
        Effect.gen(function* () {
          const api = yield* client
          const key = yield* keyFor("grpc-shop")
          const idempotencyKey = randomUUID()
          const sent = yield* api.sendSms({ ...send, idempotencyKey, metadata: { order: "42" } }, key)
          expect(sent).toEqual({
            messageId: messageIdFor("grpc-shop", idempotencyKey),
            duplicate: false,
            trackingId: messageIdFor("grpc-shop", idempotencyKey)
          })
          // at once: the intake may not have recorded it yet, the watch waits for it
          const watch = yield* api.watch({ messageId: sent.messageId }, key)
          expectGapless(watch)
          const last = watch.updates.at(-1)
          expect(last?.message.status).toBe("MESSAGE_STATUS_DELIVERED")
          expect(last?.eventType).toBe("SmsDelivered")
          expect(last?.message).toMatchObject({
            messageId: sent.messageId,
            clientId: "grpc-shop",
            to: send.to
          })
          expect(Number(last?.message.deliveredAt?.seconds)).toBeGreaterThan(0)

          const history = yield* api.getHistory({ messageId: sent.messageId }, key)
          expect(history.events.map((e) => e.revision)).toEqual(history.events.map((_, i) => i))
          expect(history.events.at(-1)?.revision).toBe(last?.revision)
          expect(history.events[0]?.type).toBe("SmsRequested")
          expect(jsonOf(history.events[0]?.data)).toMatchObject({
            messageId: sent.messageId,
            clientId: "grpc-shop",
            idempotencyKey,
            body: send.body,
            metadata: { order: "42" },
            segments: 1
          })
          // the read model follows the events within moments
          const status = yield* eventually(
            Effect.filterOrFail(
              api.getMessage({ messageId: sent.messageId }, key),
              (message) => message.status === "MESSAGE_STATUS_DELIVERED"
            )
          )
          expect(status.revision).toBe(last?.revision)
          expect(status.attempts).toBe(1)
          expect(status.provider).toBe("sim")
        })
    )

    it.scoped("a duplicate SendSms answers the same id, duplicate, and stores and charges nothing more", () =>
      Effect.gen(function* () {
        const api = yield* client
        const key = yield* keyFor("grpc-dup", "client", 5)
        const idempotencyKey = randomUUID()
        const first = yield* api.sendSms({ ...send, idempotencyKey }, key)
        const again = yield* api.sendSms({ ...send, idempotencyKey, body: "another body" }, key)
        expect(again).toEqual({ ...first, duplicate: true })
        const watch = yield* api.watch({ messageId: first.messageId }, key)
        expect(watch.updates.at(-1)?.message.status).toBe("MESSAGE_STATUS_DELIVERED")
        const history = yield* api.getHistory({ messageId: first.messageId }, key)
        expect(history.events.filter((e) => e.type === "SmsRequested")).toHaveLength(1)
        expect(jsonOf(history.events[0]?.data)).toMatchObject({ body: send.body })
        const gw = yield* TestGateway
        const used = yield* gw.provide(Effect.flatMap(Clients, (clients) => clients.usage("grpc-dup")))
        expect(used).toBe(1)
      })
    )

    it.scoped("a watch on a message that fails ends with the failure, final", () =>
      Effect.gen(function* () {
        const api = yield* client
        const key = yield* keyFor("grpc-fail")
        const sent = yield* api.sendSms({ ...send, to: INVALID_NUMBER, idempotencyKey: randomUUID() }, key)
        const watch = yield* api.watch({ messageId: sent.messageId }, key)
        expectGapless(watch)
        const last = watch.updates.at(-1)
        expect(last?.eventType).toBe("SmsFailed")
        expect(last?.message).toMatchObject({
          status: "MESSAGE_STATUS_FAILED",
          failureReason: "invalid_number"
        })
      })
    )

    it.scoped(
      "a watch survives a provider answering slowly: open for seconds, every step as it is recorded",
      () =>
        Effect.gen(function* () {
          const api = yield* client
          const key = yield* keyFor("grpc-slow")
          const sent = yield* api.sendSms({ ...send, providers: ["slow"], idempotencyKey: randomUUID() }, key)
          const watch = yield* api.watch({ messageId: sent.messageId }, key)
          expectGapless(watch)
          const statuses = watch.updates.map((u) => u.message.status)
          // the first update came while the provider was still answering: nothing was folded in later
          expect(statuses[0]).toBe("MESSAGE_STATUS_REQUESTED")
          expect(statuses).toContain("MESSAGE_STATUS_DISPATCHED")
          expect(statuses.at(-1)).toBe("MESSAGE_STATUS_DELIVERED")
          expect(watch.updates.at(-1)?.message.provider).toBe("slow")
        })
    )

    it.scoped(
      "a reconnect with the last revision seen resumes without a gap or a repeat; at the final one it ends at once",
      () =>
        Effect.gen(function* () {
          const api = yield* client
          const key = yield* keyFor("grpc-resume")
          const sent = yield* api.sendSms({ ...send, providers: ["slow"], idempotencyKey: randomUUID() }, key)
          const messageId = sent.messageId
          // the first connection is lost after its first update, while the provider is still answering
          const cut = yield* api.watch({ messageId }, key, { stopWhen: (updates) => updates.length === 1 })
          expect(cut.end.code).toBe(grpc.status.CANCELLED)
          const seen = cut.updates[0]
          expect(seen?.final).toBe(false)

          const resumed = yield* api.watch({ messageId, afterRevision: seen?.revision }, key)
          expectGapless(resumed)
          expect(resumed.updates[0]?.revision).toBe((seen?.revision ?? 0) + 1)
          const history = yield* api.getHistory({ messageId }, key)
          expect([seen, ...resumed.updates].map((u) => [u?.revision, u?.eventType])).toEqual(
            history.events.map((e) => [e.revision, e.type])
          )

          const atFinal = yield* api.watch(
            { messageId, afterRevision: resumed.updates.at(-1)?.revision },
            key
          )
          expect(atFinal.updates).toEqual([])
          expect(grpc.status[atFinal.end.code]).toBe("OK")

          // -1: the whole history, then (here) the end
          const whole = yield* api.watch({ messageId, afterRevision: -1 }, key)
          expectGapless(whole)
          expect(whole.updates.map((u) => u.eventType)).toEqual(history.events.map((e) => e.type))

          const past = yield* api.watch({ messageId, afterRevision: history.events.length + 3 }, key)
          expectInvalidArgument(past.end, "after_revision")
        })
    )

    it.scoped(
      "a watch of a message that is not final ends at the call's deadline, after the status now",
      () =>
        Effect.gen(function* () {
          const api = yield* client
          const key = yield* keyFor("grpc-deadline")
          const sent = yield* api.sendSms({ ...send, providers: ["slow"], idempotencyKey: randomUUID() }, key)
          // recorded, so the watch has a status to open with; the provider answers only seconds later
          yield* eventually(api.getHistory({ messageId: sent.messageId }, key))
          const watch = yield* api.watch({ messageId: sent.messageId }, key, { deadlineMs: 700 })
          expect(grpc.status[watch.end.code]).toBe("DEADLINE_EXCEEDED")
          expect(watch.updates.length).toBeGreaterThan(0)
          expect(watch.updates.some((u) => u.final)).toBe(false)
        })
    )

    it.scoped("INVALID_ARGUMENT names the field, in the message and in a google.rpc.BadRequest", () =>
      Effect.gen(function* () {
        const api = yield* client
        const key = yield* keyFor("grpc-invalid")
        const refused = (request: Parameters<typeof api.sendSms>[0]) => Effect.flip(api.sendSms(request, key))
        expectInvalidArgument(yield* refused({ ...send, to: "447911123456", idempotencyKey: "a" }), "to")
        expectInvalidArgument(yield* refused(send), "idempotency_key")
        expectInvalidArgument(yield* refused({ ...send, idempotencyKey: "b", body: "" }), "body")
        expectInvalidArgument(
          yield* refused({ ...send, idempotencyKey: "c", providers: ["Not Valid"] }),
          "providers.0"
        )
        expectInvalidArgument(
          yield* refused({ ...send, idempotencyKey: "d", metadata: { ["k".repeat(65)]: "v" } }),
          "metadata"
        )
        expectInvalidArgument(
          yield* refused({ ...send, idempotencyKey: "e", trackingId: "é" }),
          "tracking_id"
        )
        expectInvalidArgument(
          yield* refused({ ...send, idempotencyKey: "f", validUntil: { seconds: 1, nanos: 2_000_000_000 } }),
          "valid_until"
        )
        expectInvalidArgument(
          yield* Effect.flip(api.getMessage({ messageId: "not-a-uuid" }, key)),
          "message_id"
        )
        expectInvalidArgument(yield* Effect.flip(api.getHistory({}, key)), "message_id")
        expectInvalidArgument((yield* api.watch({ messageId: "x" }, key)).end, "message_id")
        expectInvalidArgument(
          (yield* api.watch({ messageId: messageIdFor("a", "b"), afterRevision: -2 }, key)).end,
          "after_revision"
        )
        const gw = yield* TestGateway
        // nothing was charged for what was refused
        expect(yield* gw.provide(Effect.flatMap(Clients, (clients) => clients.usage("grpc-invalid")))).toBe(0)
      })
    )

    it.scoped("UNAUTHENTICATED without a key, with an unknown or a revoked one; a bearer key works too", () =>
      Effect.gen(function* () {
        const api = yield* client
        const gw = yield* TestGateway
        const messageId = messageIdFor("grpc-auth", randomUUID())
        const none = yield* Effect.flip(api.sendSms({ ...send, idempotencyKey: "a" }))
        expect(grpc.status[none.code]).toBe("UNAUTHENTICATED")
        expect(none.details).toContain("x-api-key")
        const unknown = yield* Effect.flip(
          api.getHistory({ messageId }, `smsgw_0123456789abcdef.${"x".repeat(43)}`)
        )
        expect(grpc.status[unknown.code]).toBe("UNAUTHENTICATED")
        const watchless = yield* api.watch({ messageId }, "not-a-key")
        expect(grpc.status[watchless.end.code]).toBe("UNAUTHENTICATED")

        const key = yield* keyFor("grpc-auth")
        const sent = yield* api.sendSms({ ...send, idempotencyKey: randomUUID() }, key)
        const bearer = new grpc.Metadata()
        bearer.set("authorization", `Bearer ${key}`)
        const history = yield* eventually(api.getHistoryWith({ messageId: sent.messageId }, bearer))
        expect(history.messageId).toBe(sent.messageId)

        const keyId = key.slice("smsgw_".length, key.indexOf("."))
        expect(yield* gw.provide(Effect.flatMap(Clients, (clients) => clients.revoke(keyId)))).toBe(true)
        const revoked = yield* Effect.flip(api.getHistory({ messageId: sent.messageId }, key))
        expect(grpc.status[revoked.code]).toBe("UNAUTHENTICATED")
        expect(revoked.details).toBe("unknown or revoked API key")
      })
    )

    it.scoped(
      "scopes: an auditor cannot send (PERMISSION_DENIED) but reads all; another client's message is NOT_FOUND like an unknown one",
      () =>
        Effect.gen(function* () {
          const api = yield* client
          const owner = yield* keyFor("grpc-owner")
          const other = yield* keyFor("grpc-other")
          const auditor = yield* keyFor("grpc-auditor", "auditor")
          const denied = yield* Effect.flip(api.sendSms({ ...send, idempotencyKey: randomUUID() }, auditor))
          expect(grpc.status[denied.code]).toBe("PERMISSION_DENIED")
          expect(denied.details).toBe("a auditor key cannot do this (needs client or admin)")

          const sent = yield* api.sendSms({ ...send, idempotencyKey: randomUUID() }, owner)
          const ownWatch = yield* api.watch({ messageId: sent.messageId }, owner)
          expect(ownWatch.updates.at(-1)?.message.status).toBe("MESSAGE_STATUS_DELIVERED")
          const audited = yield* api.watch({ messageId: sent.messageId }, auditor)
          expect(audited.updates.map((u) => u.message.status)).toEqual(["MESSAGE_STATUS_DELIVERED"])
          expect(
            (yield* api.getHistory({ messageId: sent.messageId }, auditor)).events.length
          ).toBeGreaterThan(0)
          const unknownId = messageIdFor("grpc-owner", randomUUID())
          const hidden = (messageId: string) =>
            Effect.gen(function* () {
              const history = yield* Effect.flip(api.getHistory({ messageId }, other))
              expect([grpc.status[history.code], history.details]).toEqual([
                "NOT_FOUND",
                `no message ${messageId}`
              ])
              const status = yield* Effect.flip(api.getMessage({ messageId }, other))
              expect([grpc.status[status.code], status.details]).toEqual([
                "NOT_FOUND",
                `no message ${messageId}`
              ])
              // a watch waits a moment for a message not recorded yet, and answers alike either way
              const watch = yield* api.watch({ messageId }, other)
              expect([grpc.status[watch.end.code], watch.end.details, watch.updates]).toEqual([
                "NOT_FOUND",
                `no message ${messageId}`,
                []
              ])
            })
          yield* Effect.all([hidden(sent.messageId), hidden(unknownId)], { concurrency: 2 })
        })
    )

    it.scoped(
      "GetMessage as_of: the status known then; before the message existed, NOT_FOUND saying when it did",
      () =>
        Effect.gen(function* () {
          const api = yield* client
          const key = yield* keyFor("grpc-asof")
          const sent = yield* api.sendSms({ ...send, idempotencyKey: randomUUID() }, key)
          const watch = yield* api.watch({ messageId: sent.messageId }, key)
          const delivered = watch.updates.at(-1)?.message
          expect(delivered?.status).toBe("MESSAGE_STATUS_DELIVERED")
          // as of the moment the dispatch was recorded (the store's time, not the provider actor's)
          const history = yield* api.getHistory({ messageId: sent.messageId }, key)
          const recorded = history.events.find((e) => e.type === "SmsDispatched")?.recordedAt
          const then = yield* api.getMessage({ messageId: sent.messageId, asOf: recorded }, key)
          expect(then.status).toBe("MESSAGE_STATUS_DISPATCHED")
          expect(then.revision).toBe(1)
          const before = yield* Effect.flip(
            api.getMessage({ messageId: sent.messageId, asOf: { seconds: 1 } }, key)
          )
          expect(grpc.status[before.code]).toBe("NOT_FOUND")
          expect(before.details).toContain(
            "did not exist yet at 1970-01-01T00:00:01.000Z: it was first recorded at"
          )
        })
    )

    it.scoped(
      "RESOURCE_EXHAUSTED over the daily quota, with google.rpc.RetryInfo and retry-after to 00:00 UTC; a retry of a charged message passes",
      () =>
        Effect.gen(function* () {
          const api = yield* client
          const key = yield* keyFor("grpc-quota", "client", 1)
          const idempotencyKey = randomUUID()
          const first = yield* api.sendSms({ ...send, idempotencyKey }, key)
          const over = yield* Effect.flip(api.sendSms({ ...send, idempotencyKey: randomUUID() }, key))
          expect(grpc.status[over.code]).toBe("RESOURCE_EXHAUSTED")
          expect(over.details).toBe("the daily quota of 1 messages is used up; it resets at 00:00 UTC")
          const now = new Date()
          const midnight = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1)
          const untilMidnight = (midnight - now.getTime()) / 1000
          const delay = statusDetails(over)?.retryInfo?.retry_delay.seconds ?? -1
          expect(Math.abs(delay - untilMidnight)).toBeLessThan(120)
          expect(over.metadata.get("retry-after")).toEqual([String(delay)])
          // the same message again is no new charge: the answer a retry after a lost reply needs
          expect(yield* api.sendSms({ ...send, idempotencyKey }, key)).toEqual({ ...first, duplicate: true })
        })
    )

    it.scoped(
      "health: the server and the API SERVING, an unknown service NOT_FOUND; Watch answers at once",
      () =>
        Effect.gen(function* () {
          const api = yield* client
          expect(yield* api.healthCheck("")).toBe("SERVING")
          expect(yield* api.healthCheck("sms.v1.SmsGateway")).toBe("SERVING")
          const unknown = yield* Effect.flip(api.healthCheck("sms.v9.Nothing"))
          expect(grpc.status[unknown.code]).toBe("NOT_FOUND")
          const watched = yield* api.healthWatch("sms.v1.SmsGateway", (received) => received.length === 1)
          expect(watched.received).toEqual([{ status: "SERVING" }])
          const unknownWatch = yield* api.healthWatch("sms.v9.Nothing", (received) => received.length === 1)
          expect(unknownWatch.received).toEqual([{ status: "SERVICE_UNKNOWN" }])
        })
    )
  })
})
