import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import {
  MAX_SEGMENTS_CEILING,
  maxBodyLength,
  parseSendSms,
  parseSendSmsWithSchema,
  SEND_SMS_BOUNDS,
  SendSms
} from "../../src/domain/SendSms.js"

const valid = {
  clientId: "acme",
  idempotencyKey: "order-42",
  to: "+447911123456",
  body: "Your code is 1234"
}

const parsed = (raw: string | Uint8Array): SendSms =>
  Either.getOrElse(parseSendSms(raw), (invalid) => expect.fail(`expected a command, got ${invalid.message}`))

const refusal = (raw: string | Uint8Array) => {
  const result = parseSendSms(raw)
  if (Either.isRight(result)) return expect.fail(`expected a refusal, got ${JSON.stringify(result.right)}`)
  expect(result.left._tag).toBe("InvalidSendSms")
  return result.left
}

/** the refusal of `valid` with `changes` applied (a field set to undefined is left out) */
const refusalOf = (changes: Record<string, unknown>) => refusal(JSON.stringify({ ...valid, ...changes }))

describe("parseSendSms accepts", () => {
  it("a command with only the required fields", () => {
    const command = parsed(JSON.stringify(valid))
    expect(command).toBeInstanceOf(SendSms)
    expect(command).toMatchObject(valid)
    expect(command.from).toBeUndefined()
    expect(command.providers).toBeUndefined()
    expect(command.validUntil).toBeUndefined()
    expect(command.metadata).toBeUndefined()
    expect(command.trackingId).toBeUndefined()
  })

  it("a command with every optional field, decoding validUntil to a Date", () => {
    const command = parsed(
      JSON.stringify({
        ...valid,
        from: "ACME",
        providers: ["twilio", "sim_2", "eu-west"],
        validUntil: "2030-01-01T00:00:00Z",
        metadata: { orderId: "42", channel: "web" },
        trackingId: "trk-1"
      })
    )
    expect(command.from).toBe("ACME")
    expect(command.providers).toEqual(["twilio", "sim_2", "eu-west"])
    expect(command.validUntil).toEqual(new Date("2030-01-01T00:00:00.000Z"))
    expect(command.metadata).toEqual({ orderId: "42", channel: "web" })
    expect(command.trackingId).toBe("trk-1")
  })

  it("a command with unknown fields, which are dropped", () => {
    const command = parsed(JSON.stringify({ ...valid, priority: "high", nested: { a: 1 } }))
    expect(command).toMatchObject(valid)
    expect(Object.keys(command)).not.toContain("priority")
    expect(Object.keys(command)).not.toContain("nested")
  })

  it("a body of exactly 1600 characters, when the segment limit allows it", () => {
    const command = parseSendSms(JSON.stringify({ ...valid, body: "x".repeat(1600) }), { maxSegments: 11 })
    expect(Either.isRight(command) && command.right.body).toHaveLength(1600)
  })

  it("UTF-8 bytes as well as a string", () => {
    const body = "Привет, €5 😀"
    const command = parsed(new TextEncoder().encode(JSON.stringify({ ...valid, body })))
    expect(command.body).toBe(body)
    expect(command.clientId).toBe("acme")
  })
})

describe("parseSendSms refuses, naming the field", () => {
  it("a payload that is not JSON ($)", () => {
    const invalid = refusal("clientId=acme&to=+447911123456")
    expect(invalid.field).toBe("$")
    expect(invalid.reason).toMatch(/JSON/)
    expect(refusal(new TextEncoder().encode("{")).field).toBe("$")
  })

  it("JSON that is not an object: array, null, number, string ($)", () => {
    for (const raw of ["[]", JSON.stringify([valid]), "null", "42", '"hello"']) {
      const invalid = refusal(raw)
      expect(invalid.field).toBe("$")
      expect(invalid.reason).toBe("must be a JSON object")
    }
  })

  it("a missing clientId", () => {
    const invalid = refusalOf({ clientId: undefined })
    expect(invalid.field).toBe("clientId")
    expect(invalid.reason).toMatch(/missing/)
  })

  it("a clientId that is not a string", () => {
    const invalid = refusalOf({ clientId: 5 })
    expect(invalid.field).toBe("clientId")
    expect(invalid.reason).toMatch(/string/)
  })

  it("a clientId with a newline or a colon (either would make two clients' ids ambiguous)", () => {
    for (const clientId of ["acme\nevil", "acme:evil", "acme evil"]) {
      const invalid = refusalOf({ clientId })
      expect(invalid.field).toBe("clientId")
      expect(invalid.reason).toBe("may hold only letters, digits, '.', '_' and '-'")
    }
  })

  it("an idempotencyKey of whitespace only", () => {
    const invalid = refusalOf({ idempotencyKey: "  \t " })
    expect(invalid.field).toBe("idempotencyKey")
    expect(invalid.reason).toBe("must not be empty")
  })

  it("a `to` that is not strict E.164: spaces, no plus, letters, too short or long", () => {
    for (const to of [
      "+44 7911 123456",
      "447911123456",
      "+44791112345a",
      "+44abc",
      "+12",
      "+123456",
      "+4479111234567890"
    ]) {
      const invalid = refusalOf({ to })
      expect(invalid.field).toBe("to")
      expect(invalid.reason).toMatch(/E\.164/)
    }
  })

  it("a `to` that is well formed but not a valid number (reserved fictional range)", () => {
    for (const to of ["+447700900123", "+999123456789"]) {
      const invalid = refusalOf({ to })
      expect(invalid.field).toBe("to")
      expect(invalid.reason).toBe("is not a valid phone number for any numbering plan")
    }
  })

  it("an empty body", () => {
    for (const body of ["", "   "]) {
      const invalid = refusalOf({ body })
      expect(invalid.field).toBe("body")
      expect(invalid.reason).toBe("must not be empty")
    }
  })

  it("a body longer than the segment limit can hold, before any segment is counted", () => {
    const invalid = refusalOf({ body: "x".repeat(1601) })
    expect(invalid.field).toBe("body")
    expect(invalid.reason).toBe("is longer than 10 segments can hold (1530 GSM-7 characters, 670 UCS-2)")
  })

  it("an empty providers list", () => {
    const invalid = refusalOf({ providers: [] })
    expect(invalid.field).toBe("providers")
    expect(invalid.reason).toBe("must list at least one provider")
  })

  it("a provider id with uppercase letters or dots, pointing at the entry", () => {
    for (const providers of [["Twilio"], ["twilio", "a.b"]]) {
      const invalid = refusalOf({ providers })
      expect(invalid.field).toBe(`providers.${providers.length - 1}`)
      expect(invalid.reason).toMatch(/provider ids are/)
    }
  })

  it("a validUntil that is not a date", () => {
    const invalid = refusalOf({ validUntil: "tomorrow" })
    expect(invalid.field).toBe("validUntil")
    expect(invalid.reason).toMatch(/Date/)
  })

  it("metadata with a non-string value, pointing at the key", () => {
    const invalid = refusalOf({ metadata: { orderId: "42", count: 1 } })
    expect(invalid.field).toBe("metadata.count")
    expect(invalid.reason).toMatch(/string/)
  })

  it("and its message reads `field: reason`", () => {
    expect(refusalOf({ body: "" }).message).toBe("body: must not be empty")
  })
})

describe("parseSendSms segment limit", () => {
  it("refuses a body over the maximum of segments, counting as a handset does (GSM-7 or UCS-2)", () => {
    // 10 GSM-7 segments hold 1,530 characters; 10 UCS-2 segments hold 670
    expect(Either.isRight(parseSendSms(JSON.stringify({ ...valid, body: "a".repeat(1530) })))).toBe(true)
    const gsm = refusalOf({ body: "a".repeat(1531) })
    expect(gsm.field).toBe("body")
    expect(gsm.reason).toBe("is longer than 10 segments can hold (1530 GSM-7 characters, 670 UCS-2)")
    const ucs = refusalOf({ body: "я".repeat(671) })
    expect(ucs.reason).toBe("takes 11 UCS-2 segments; at most 10 are allowed")
    // within 1,530 characters, but "€" takes two septets
    const escaped = refusalOf({ body: "€".repeat(766) })
    expect(escaped.reason).toBe("takes 11 GSM-7 segments; at most 10 are allowed")
  })

  it("is the one body limit: raising it past 1,600 characters lets longer bodies through (issue 14, item 9)", () => {
    const long = JSON.stringify({ ...valid, body: "a".repeat(20 * 153) })
    expect(Either.isRight(parseSendSms(long, { maxSegments: 20 }))).toBe(true)
    expect(Either.isRight(parseSendSmsWithSchema(long, { maxSegments: 20 }))).toBe(true)
    const over = parseSendSms(JSON.stringify({ ...valid, body: "a".repeat(20 * 153 + 1) }), {
      maxSegments: 20
    })
    expect(Either.isLeft(over) && over.left.reason).toBe(
      "is longer than 20 segments can hold (3060 GSM-7 characters, 1340 UCS-2)"
    )
    // one segment holds 160 GSM-7 characters (no concatenation header)
    expect(
      Either.isRight(parseSendSms(JSON.stringify({ ...valid, body: "a".repeat(160) }), { maxSegments: 1 }))
    ).toBe(true)
  })

  it("the characters a number of segments can hold", () => {
    expect(maxBodyLength(1)).toBe(160)
    expect(maxBodyLength(10)).toBe(1530)
    expect(maxBodyLength(MAX_SEGMENTS_CEILING)).toBe(SEND_SMS_BOUNDS.body)
  })

  it("at the highest segment limit the largest command still stores under nats-server's 1 MiB", () => {
    // "€": 3 UTF-8 bytes for one UTF-16 unit, and a GSM-7 character; '"' doubles when escaped
    for (const char of ["€", '"']) {
      const body = char.repeat(SEND_SMS_BOUNDS.body)
      const schema = parseSendSmsWithSchema(JSON.stringify({ ...valid, body }), { maxSegments: 10_000 })
      expect(Either.isRight(schema)).toBe(true)
      expect(new TextEncoder().encode(JSON.stringify({ ...valid, body })).length).toBeLessThan(256 * 1024)
    }
  })

  it("takes the limit as configured", () => {
    const twoSegments = JSON.stringify({ ...valid, body: "a".repeat(161) })
    expect(Either.isRight(parseSendSms(twoSegments, { maxSegments: 2 }))).toBe(true)
    const refused = parseSendSms(twoSegments, { maxSegments: 1 })
    expect(Either.isLeft(refused) && refused.left.reason).toBe(
      "is longer than 1 segment can hold (160 GSM-7 characters, 70 UCS-2)"
    )
    const ucs = parseSendSms(JSON.stringify({ ...valid, body: "я".repeat(71) }), { maxSegments: 1 })
    expect(Either.isLeft(ucs) && ucs.left.reason).toBe("takes 2 UCS-2 segments; at most 1 are allowed")
  })
})

describe("every field of a SendSms is bounded (issue 12: a valid command can always be stored)", () => {
  it("a 1 MiB metadata value, too many metadata keys, a bad key: refused naming metadata", () => {
    expect(refusalOf({ metadata: { note: "x".repeat(1_048_000) } }).field).toBe("metadata.note")
    const many = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"]))
    expect(refusalOf({ metadata: many })).toMatchObject({
      field: "metadata",
      reason: "must hold at most 16 keys"
    })
    expect(refusalOf({ metadata: { "": "v" } })).toMatchObject({
      field: "metadata",
      reason: "keys must not be empty"
    })
    expect(refusalOf({ metadata: { ["k".repeat(65)]: "v" } }).field).toBe("metadata")
    expect(refusalOf({ metadata: { "a\u0000b": "v" } }).reason).toBe(
      "keys must not contain control characters"
    )
  })

  it("10,000 providers: refused naming providers", () => {
    const providers = Array.from({ length: 10_000 }, () => "sim")
    expect(refusalOf({ providers })).toMatchObject({
      field: "providers",
      reason: "must list at most 8 providers"
    })
    expect(
      parsed(JSON.stringify({ ...valid, providers: Array.from({ length: 8 }, () => "sim") })).providers
    ).toHaveLength(8)
  })

  it("NUL, ESC and other control characters in from, idempotencyKey and trackingId are refused", () => {
    for (const bad of ["a\u0000b", "a\u001bb", "a\nb", "a\u007fb"]) {
      expect(refusalOf({ from: bad })).toMatchObject({
        field: "from",
        reason: "must not contain control characters"
      })
      expect(refusalOf({ idempotencyKey: bad })).toMatchObject({ field: "idempotencyKey" })
      expect(refusalOf({ trackingId: bad })).toMatchObject({ field: "trackingId" })
    }
  })

  it("a body keeps its line breaks and tabs, but not NUL or ESC", () => {
    expect(parsed(JSON.stringify({ ...valid, body: "line 1\r\nline 2\tend" })).body).toBe(
      "line 1\r\nline 2\tend"
    )
    expect(refusalOf({ body: "a\u0000b" })).toMatchObject({
      field: "body",
      reason: "must not contain control characters"
    })
    expect(refusalOf({ body: "a\u001b[31mb" }).field).toBe("body")
  })

  it("a trackingId that is not a header value (non-ASCII) is refused: it is echoed as x-tracking-id", () => {
    expect(refusalOf({ trackingId: "Bestellung-€42" }).field).toBe("trackingId")
    expect(parsed(JSON.stringify({ ...valid, trackingId: "Bestellung-42 (EUR)" })).trackingId).toBe(
      "Bestellung-42 (EUR)"
    )
  })

  it("deeply nested JSON is refused as a whole, without overflowing the stack", () => {
    const deep = `${"[".repeat(100_000)}${"]".repeat(100_000)}`
    const refused = refusal(`{"to":"+447911123456","body":"x","metadata":${deep}}`)
    expect(refused).toMatchObject({ field: "$", reason: "is nested more than 8 levels deep" })
  })
})
