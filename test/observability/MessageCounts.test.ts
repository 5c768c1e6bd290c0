/** `sms_messages_total` counts a report that contradicts a final status apart, never as a second outcome. */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { messagesTotal, recordMessageEvents } from "../../src/observability/Metrics.js"
import { seriesValue } from "../support/prometheus.js"

const count = (status: string, provider: string) => seriesValue(messagesTotal, { status, provider })

describe("sms_messages_total", () => {
  it.effect("a marked contradiction is `contradicted`; the delivery before it stays the only outcome", () =>
    Effect.gen(function* () {
      const provider = "contradiction-test"
      yield* recordMessageEvents([
        { _tag: "SmsDelivered", provider },
        { _tag: "SmsFailed", provider, contradicts: "delivered" }
      ])
      expect(yield* count("delivered", provider)).toBe(1)
      expect(yield* count("failed", provider)).toBe(0)
      expect(yield* count("contradicted", provider)).toBe(1)
    })
  )
})
