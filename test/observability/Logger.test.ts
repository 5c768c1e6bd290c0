import { describe, expect, it } from "@effect/vitest"
import { Effect, Logger, LogLevel, Redacted } from "effect"
import type { MessageId } from "../../src/domain/Ids.js"
import { SmsDelivered, SmsFailed, SmsRequested, SmsRetried } from "../../src/domain/Message.js"
import { maskNumber } from "../../src/domain/PhoneNumber.js"
import {
  infoEnabled,
  jsonLogger,
  logfmtLogger,
  logMessageEvents,
  scrub
} from "../../src/observability/Logger.js"

const capture = (make: (write: (line: string) => void) => Logger.Logger<unknown, void>) => {
  const lines: Array<string> = []
  return {
    lines,
    layer: Logger.replace(
      Logger.defaultLogger,
      make((line) => lines.push(line))
    )
  }
}

describe("JSON logs", () => {
  it.effect("one JSON object per line, annotations as fields, numbers masked, secrets out", () =>
    Effect.gen(function* () {
      const { lines, layer } = capture(jsonLogger)
      const key = `smsgw_0123456789abcdef.${"s".repeat(43)}`
      yield* Effect.logInfo("sending to +447911123456 with", { to: "+447911123456" }).pipe(
        Effect.annotateLogs({
          messageId: "m-1",
          trackingId: "t-1",
          to: "+447911123456",
          apiKey: key,
          header: `X-API-Key: ${key}`,
          password: Redacted.make("hunter2"),
          stream: "phone-447911123456"
        }),
        Effect.provide(layer)
      )
      expect(lines).toHaveLength(1)
      const entry = JSON.parse(lines[0] ?? "") as Record<string, unknown>
      expect(entry).toMatchObject({
        level: "INFO",
        messageId: "m-1",
        trackingId: "t-1",
        to: maskNumber("+447911123456"),
        apiKey: "<redacted>",
        password: "<redacted>",
        header: "X-API-Key: smsgw_0123456789abcdef.***",
        stream: `phone-${maskNumber("+447911123456").slice(1)}`
      })
      expect(entry.timestamp).toMatch(/^\d{4}-\d\d-\d\dT/)
      // issue 14: the fiber id named nothing an operator can look up
      expect(entry).not.toHaveProperty("fiber")
      expect(lines[0]).not.toContain("7911123456")
      expect(lines[0]).not.toContain("s".repeat(43))
      expect(lines[0]).not.toContain("hunter2")
    })
  )

  it.effect("causes are rendered and masked too; logfmt has the same fields", () =>
    Effect.gen(function* () {
      const json = capture(jsonLogger)
      yield* Effect.logError("failed", new Error("provider refused +447911123456")).pipe(
        Effect.provide(json.layer)
      )
      expect(json.lines[0]).toContain(maskNumber("+447911123456"))
      expect(json.lines[0]).not.toContain("7911123456")
      const logfmt = capture(logfmtLogger)
      yield* Effect.logWarning("hello").pipe(
        Effect.annotateLogs({ messageId: "m-2" }),
        Effect.provide(logfmt.layer)
      )
      expect(logfmt.lines[0]).toMatch(/level=WARN message=hello .*messageId=m-2/)
      expect(logfmt.lines[0]).not.toContain("fiber=")
    })
  )

  it("scrub leaves ids and timestamps alone", () => {
    expect(scrub("seq 1732281600000 id 8a0c-11 at 2026-11-22T10:00:00Z")).toBe(
      "seq 1732281600000 id 8a0c-11 at 2026-11-22T10:00:00Z"
    )
  })

  describe("a message's lines (issue 14)", () => {
    const id = "2f1c0000-0000-5000-8000-000000000001" as MessageId
    const at = new Date("2026-11-22T10:00:00.000Z")
    const request = new SmsRequested({
      messageId: id,
      clientId: "shop",
      idempotencyKey: "k",
      to: "+447911123456",
      body: "hi",
      encoding: "GSM-7",
      segments: 1,
      requestedAt: at
    })

    it.effect("one line per event, masked, the message id standing in for a missing tracking id", () =>
      Effect.gen(function* () {
        const { lines, layer } = capture(jsonLogger)
        yield* logMessageEvents([
          {
            request,
            events: [
              new SmsRetried({
                messageId: id,
                provider: "a",
                attempt: 1,
                reason: "http_5xx",
                // a provider's text may quote the number without its "+"
                detail: "503 for 447911123456",
                nextAttemptAt: at,
                nextProvider: "b"
              }),
              new SmsDelivered({
                messageId: id,
                provider: "b",
                providerMessageId: "p-1",
                deliveredAt: at,
                rawStatus: "delivered"
              }),
              new SmsFailed({
                messageId: id,
                reason: "invalid_number",
                permanent: true,
                provider: "b",
                failedAt: at,
                contradicts: "delivered"
              })
            ]
          }
        ]).pipe(Effect.provide(layer))
        const entries = lines.map((line) => JSON.parse(line) as Record<string, unknown>)
        expect(entries.map((e) => e.message)).toEqual([
          "message retrying",
          "message delivered",
          "contradicting report"
        ])
        expect(entries[0]).toMatchObject({
          level: "INFO",
          messageId: id,
          trackingId: id,
          to: maskNumber("+447911123456"),
          provider: "a",
          reason: "http_5xx",
          nextProvider: "b",
          nextAttemptAt: at.toISOString()
        })
        expect(entries[2]).toMatchObject({ reported: "failed", final: "delivered", reason: "invalid_number" })
        expect(lines.join("\n")).not.toContain("7911123456")
      })
    )

    it.effect("a refusal reads 'message refused'; the caller's tracking id wins", () =>
      Effect.gen(function* () {
        const { lines, layer } = capture(jsonLogger)
        const refusal = new SmsFailed({ messageId: id, reason: "no_provider", permanent: true, failedAt: at })
        yield* logMessageEvents([
          { request, events: [request, refusal], refused: true, trackingId: "t-9" }
        ]).pipe(Effect.provide(layer))
        const entries = lines.map((line) => JSON.parse(line) as Record<string, unknown>)
        expect(entries.map((e) => [e.message, e.trackingId])).toEqual([
          ["message requested", "t-9"],
          ["message refused", "t-9"]
        ])
      })
    )

    it.effect("infoEnabled follows the minimum level (the bench runs at Warning)", () =>
      Effect.gen(function* () {
        expect(yield* infoEnabled).toBe(true)
        expect(yield* Logger.withMinimumLogLevel(infoEnabled, LogLevel.Warning)).toBe(false)
        expect(yield* Logger.withMinimumLogLevel(infoEnabled, LogLevel.Debug)).toBe(true)
      })
    )
  })
})
