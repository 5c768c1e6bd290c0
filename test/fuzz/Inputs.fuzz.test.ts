/**
 * Properties over hostile input: whatever a producer or a "provider" sends, the gateway answers with a
 * clear, typed refusal naming a field and a reason, never throws, and accepts only what is valid.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import fc from "fast-check"
import { e164Problem } from "../../src/domain/PhoneNumber.js"
import { parseSendSms, SendSms } from "../../src/domain/SendSms.js"
import { parseDeliveryReport, signDeliveryReport } from "../../src/providers/GenericHttp.js"

const validNumber = fc.constantFrom(
  "+447911123456",
  "+14155552671",
  "+33612345678",
  "+4915123456789",
  "+819012345678"
)

const validCommand = fc.record({
  clientId: fc.stringMatching(/^[A-Za-z0-9._-]{1,40}$/),
  idempotencyKey: fc.string({ minLength: 1, maxLength: 100 }).filter((s) => s.trim().length > 0),
  to: validNumber,
  body: fc.string({ unit: "grapheme", minLength: 1, maxLength: 300 }).filter((s) => s.trim().length > 0)
})

/** Any JSON value, or text that is not JSON at all. */
const hostilePayload = fc.oneof(
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.string({ unit: "binary", maxLength: 500 }),
  fc
    .record({
      clientId: fc.anything(),
      idempotencyKey: fc.anything(),
      to: fc.oneof(fc.string(), fc.integer(), validNumber),
      body: fc.oneof(fc.string({ maxLength: 3000 }), fc.constant(null), fc.integer()),
      providers: fc.oneof(fc.constant(undefined), fc.array(fc.string())),
      validUntil: fc.oneof(
        fc.constant(undefined),
        fc.string(),
        // well-formed ISO dates (an invalid Date cannot be written as one; fc.string() covers garbage)
        fc.date({ noInvalidDate: true }).map((d) => d.toISOString())
      )
    })
    .map((v) => JSON.stringify(v))
)

describe("fuzzing SendSms", () => {
  it("every payload is either a valid command or a refusal naming a field and a reason; nothing throws", () => {
    fc.assert(
      fc.property(hostilePayload, (payload) => {
        const parsed = parseSendSms(payload)
        if (Either.isLeft(parsed)) {
          expect(parsed.left.field.length).toBeGreaterThan(0)
          expect(parsed.left.reason.length).toBeGreaterThan(0)
        } else {
          // what passes is valid by every rule
          expect(parsed.right).toBeInstanceOf(SendSms)
          expect(e164Problem(parsed.right.to)).toBeUndefined()
          expect(parsed.right.body.trim().length).toBeGreaterThan(0)
        }
      }),
      { numRuns: 2000 }
    )
  })

  it("every valid command is accepted as it was sent, unicode included", () => {
    fc.assert(
      fc.property(validCommand, (command) => {
        const parsed = parseSendSms(JSON.stringify(command))
        expect(Either.isRight(parsed)).toBe(true)
        if (Either.isRight(parsed)) expect(parsed.right.body).toBe(command.body)
      }),
      { numRuns: 1000 }
    )
  })

  it("huge bodies and malformed numbers are refused on the right field", () => {
    fc.assert(
      fc.property(validCommand, fc.string({ minLength: 1601, maxLength: 5000 }), (command, huge) => {
        const parsed = parseSendSms(
          JSON.stringify({ ...command, body: huge.trim().length > 0 ? huge : `x${huge}` })
        )
        expect(Either.isLeft(parsed) && parsed.left.field).toBe("body")
      }),
      { numRuns: 200 }
    )
    fc.assert(
      fc.property(
        validCommand,
        fc.string({ maxLength: 30 }).filter((s) => e164Problem(s) !== undefined),
        (command, to) => {
          const parsed = parseSendSms(JSON.stringify({ ...command, to }))
          expect(Either.isLeft(parsed) && parsed.left.field).toBe("to")
        }
      ),
      { numRuns: 500 }
    )
  })
})

describe("fuzzing delivery-report webhooks", () => {
  const secret = "fuzz-secret"
  const now = 1_800_000_000_000
  const seconds = Math.floor(now / 1000)

  it("an unsigned or wrongly signed body is refused as BadSignature, whatever it holds", () => {
    fc.assert(
      fc.property(
        fc.string({ unit: "binary", maxLength: 500 }),
        fc.string({ maxLength: 80 }),
        (body, signature) => {
          const parsed = parseDeliveryReport(
            secret,
            {
              headers: { "x-signature": signature, "x-signature-timestamp": String(seconds) },
              body,
              url: "http://h/x"
            },
            now
          )
          expect(Either.isLeft(parsed) && parsed.left.reason).toBe("BadSignature")
        }
      ),
      { numRuns: 1000 }
    )
  })

  it("a correctly signed body is parsed or refused as Malformed, never a throw", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.jsonValue().map((v) => JSON.stringify(v)),
          fc.string({ maxLength: 300 })
        ),
        (body) => {
          const parsed = parseDeliveryReport(
            secret,
            {
              headers: {
                "x-signature": signDeliveryReport(secret, body, seconds),
                "x-signature-timestamp": String(seconds)
              },
              body,
              url: "http://h/x"
            },
            now
          )
          if (Either.isLeft(parsed)) expect(parsed.left.reason).toBe("Malformed")
          else expect(parsed.right.providerMessageId.length).toBeGreaterThan(0)
        }
      ),
      { numRuns: 1000 }
    )
  })
})
