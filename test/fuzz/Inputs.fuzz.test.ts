/**
 * Properties over hostile input: whatever a producer or a "provider" sends, the gateway answers with a
 * clear, typed refusal naming a field and a reason, never throws, and accepts only what is valid.
 */
import { describe, expect, it } from "@effect/vitest"
import { Either, Predicate } from "effect"
import fc from "fast-check"
import { e164Problem } from "../../src/domain/PhoneNumber.js"
import { leanSendSms, parseSendSms, parseSendSmsWithSchema, SendSms } from "../../src/domain/SendSms.js"
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

/** A value of one field: valid, at a boundary, of the wrong type, or absent (`undefined`). */
const fieldValue = (valid: fc.Arbitrary<unknown>, edges: ReadonlyArray<unknown>) =>
  fc.oneof(
    { weight: 12, arbitrary: valid },
    { weight: 2, arbitrary: fc.constantFrom(undefined, null, 0, true, "", " \t", [], {}, ...edges) },
    { weight: 1, arbitrary: fc.jsonValue() }
  )

/**
 * Near-valid commands: each field valid most of the time, else at a boundary or plain wrong. Written as
 * JSON text field by field, so keys such as `__proto__` reach the parser as a producer would send them.
 */
const nearValidPayload = fc
  .record({
    clientId: fieldValue(fc.stringMatching(/^[A-Za-z0-9._-]{1,12}$/), [
      "a:b",
      "a b",
      "a\nb",
      "x".repeat(129),
      "x".repeat(128)
    ]),
    idempotencyKey: fieldValue(fc.string({ minLength: 1, maxLength: 20 }), [
      "x".repeat(256),
      "x".repeat(257),
      "\u00a0",
      "\u2028"
    ]),
    to: fieldValue(validNumber, ["+447700900123", "+999123456789", "+44 7911 123456", "447911123456", "+12"]),
    body: fieldValue(fc.string({ unit: "grapheme", minLength: 1, maxLength: 40 }), [
      "x".repeat(1600),
      "x".repeat(1601),
      "a".repeat(1531),
      "я".repeat(671),
      "\u200b"
    ]),
    from: fieldValue(fc.string({ maxLength: 18 }), ["x".repeat(16), "x".repeat(17)]),
    providers: fieldValue(fc.array(fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,3}$/), { maxLength: 3 }), [
      ["Twilio"],
      ["sim", "a.b"],
      ["x".repeat(32)],
      ["x".repeat(33)],
      [1],
      "sim"
    ]),
    validUntil: fieldValue(
      fc.date({ noInvalidDate: true }).map((date) => date.toISOString()),
      [
        "tomorrow",
        "2025-02-30",
        "2025-13-01",
        "2025",
        "0",
        "Mar 1 2025",
        "2025-03-01T10:00:00Z ",
        1_700_000_000_000
      ]
    ),
    metadata: fieldValue(
      fc.dictionary(fc.string({ maxLength: 5 }), fc.string({ maxLength: 5 }), { maxKeys: 3 }),
      [{ a: 1 }, { a: null }, ["a"], "x"]
    ),
    trackingId: fieldValue(fc.string({ maxLength: 10 }), ["x".repeat(128), "x".repeat(129)]),
    extra: fieldValue(fc.jsonValue(), [])
  })
  .chain((fields) =>
    fc
      .constantFrom<ReadonlyArray<string>>(
        [],
        ['"__proto__":{"clientId":"proto"}'],
        ['"metadata":{"__proto__":"x","a":"b"}']
      )
      .map(
        (raw) =>
          `{${[
            ...Object.entries(fields)
              .filter(([, value]) => value !== undefined)
              .map(([key, value]) => `${JSON.stringify(key)}:${JSON.stringify(value)}`),
            ...raw
          ].join(",")}}`
      )
  )

describe("the lean SendSms parser", () => {
  it("gives the Schema parser's answer for any payload: the same command, or the same field and reason", () => {
    fc.assert(
      fc.property(
        fc.oneof(nearValidPayload, hostilePayload),
        fc.integer({ min: 1, max: 12 }),
        (payload, maxSegments) => {
          const lean = parseSendSms(payload, { maxSegments })
          const schema = parseSendSmsWithSchema(payload, { maxSegments })
          if (Either.isLeft(schema)) {
            expect(Either.isLeft(lean) && { field: lean.left.field, reason: lean.left.reason }).toEqual({
              field: schema.left.field,
              reason: schema.left.reason
            })
          } else {
            expect(Either.isRight(lean) && lean.right).toStrictEqual(schema.right)
          }
        }
      ),
      { numRuns: 5000 }
    )
  })

  it("never hands a valid command to the Schema: the lean checks accept all of them", () => {
    fc.assert(
      fc.property(nearValidPayload, (payload) => {
        const json: unknown = JSON.parse(payload)
        const valid = Either.isRight(parseSendSmsWithSchema(payload, { maxSegments: 1000 }))
        expect(Predicate.isRecord(json) && leanSendSms(json) !== undefined).toBe(valid)
      }),
      { numRuns: 3000 }
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
