import { describe, expect, it } from "@effect/vitest"
import { Effect, Logger, Redacted } from "effect"
import { maskNumber } from "../../src/domain/PhoneNumber.js"
import { jsonLogger, logfmtLogger, scrub } from "../../src/observability/Logger.js"

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
    })
  )

  it("scrub leaves ids and timestamps alone", () => {
    expect(scrub("seq 1732281600000 id 8a0c-11 at 2026-11-22T10:00:00Z")).toBe(
      "seq 1732281600000 id 8a0c-11 at 2026-11-22T10:00:00Z"
    )
  })
})
