import { createHash } from "node:crypto"
import { describe, expect, it } from "@effect/vitest"
import { Either, Schema } from "effect"
import * as fc from "fast-check"
import { v5 as packageUuidV5 } from "uuid"
import {
  eventIdFor,
  isMessageId,
  MESSAGE_ID_NAMESPACE,
  MessageId,
  messageIdFor
} from "../../src/domain/Ids.js"
import { digitsOf, E164, maskNumber } from "../../src/domain/PhoneNumber.js"
import { segmentsOf } from "../../src/domain/Segments.js"
import { parseSendSms } from "../../src/domain/SendSms.js"
import { messageStream, phoneStream, streamName } from "../../src/domain/StreamName.js"

/** RFC 4122 version 5, written out here so the test does not trust the `uuid` package. */
const uuidV5 = (name: string, namespace: string): string => {
  const hash = createHash("sha1")
    .update(Buffer.from(namespace.replaceAll("-", ""), "hex"))
    .update(name, "utf8")
    .digest()
  const bytes = hash.subarray(0, 16)
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x50
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80
  const hex = bytes.toString("hex")
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

const versionOf = (uuid: string) => uuid.charAt(14)
const variantOf = (uuid: string) => uuid.charAt(19)

describe("messageIdFor", () => {
  it("is pinned: the namespace is part of the producers' contract", () => {
    expect(MESSAGE_ID_NAMESPACE).toBe("6f1d2c3e-5b8a-4e7f-9c0d-1a2b3c4d5e6f")
    expect(messageIdFor("acme", "order-42")).toBe("d4788ed6-486b-550b-8cda-83561e9eaa48")
  })

  it("isMessageId agrees with the MessageId schema, on ids and on anything else", () => {
    const schemaSays = Schema.is(MessageId)
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uuid(),
          fc.string(),
          fc.uuid().map((id) => id.toUpperCase()),
          fc.uuid().map((id) => ` ${id}`),
          fc.anything()
        ),
        (value) => {
          expect(isMessageId(value)).toBe(schemaSays(value))
        }
      ),
      { numRuns: 2000 }
    )
  })

  it("equals the uuid package's v5 for any text (the producers' library of choice)", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme" }), fc.string({ unit: "grapheme" }), (client, key) => {
        expect(messageIdFor(client, key)).toBe(packageUuidV5(`${client}\n${key}`, MESSAGE_ID_NAMESPACE))
        expect(messageIdFor(client, key)).toBe(uuidV5(`${client}\n${key}`, MESSAGE_ID_NAMESPACE))
      }),
      { numRuns: 2000 }
    )
  })

  it("is uuidv5(clientId + newline + key, namespace), as a producer would compute it", () => {
    for (const [client, key] of [
      ["acme", "order-42"],
      ["globex", "2025-03-01/äöü/😀"],
      ["c", "multi\nline key"]
    ] as const) {
      expect(messageIdFor(client, key)).toBe(uuidV5(`${client}\n${key}`, MESSAGE_ID_NAMESPACE))
    }
  })

  it("is deterministic and a valid MessageId", () => {
    const id = messageIdFor("acme", "order-42")
    expect(messageIdFor("acme", "order-42")).toBe(id)
    expect(Schema.is(MessageId)(id)).toBe(true)
  })

  it("is a version 5, RFC 4122 variant UUID", () => {
    for (const id of [messageIdFor("acme", "order-42"), messageIdFor("x", "y"), messageIdFor("", "")]) {
      expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
      expect(versionOf(id)).toBe("5")
      expect(["8", "9", "a", "b"]).toContain(variantOf(id))
    }
  })

  it("differs per client and per key", () => {
    const ids = new Set([
      messageIdFor("acme", "order-42"),
      messageIdFor("acme", "order-43"),
      messageIdFor("globex", "order-42"),
      messageIdFor("ACME", "order-42")
    ])
    expect(ids.size).toBe(4)
  })

  it("separates client and key: moving the boundary gives another id", () => {
    expect(messageIdFor("ab", "c")).not.toBe(messageIdFor("a", "bc"))
    expect(messageIdFor("a", "")).not.toBe(messageIdFor("", "a"))
    expect(messageIdFor("a", "b\nc")).not.toBe(messageIdFor("a", "b"))
  })

  it("could only be confused by a newline in the client id or key, which SendSms refuses", () => {
    // "a" + "\n" + "b\nc" is the same name as "a\nb" + "\n" + "c": the separator is unambiguous
    // only because a client id is one line
    expect(messageIdFor("a\nb", "c")).toBe(messageIdFor("a", "b\nc"))
    const command = JSON.stringify({ clientId: "a\nb", idempotencyKey: "c", to: "+447911123456", body: "x" })
    const refused = parseSendSms(command)
    expect(Either.isLeft(refused) && refused.left.field).toBe("clientId")
    const alsoRefused = JSON.stringify({
      clientId: "a",
      idempotencyKey: "b\nc",
      to: "+447911123456",
      body: "x"
    })
    const refusedKey = parseSendSms(alsoRefused)
    expect(Either.isLeft(refusedKey) && refusedKey.left.field).toBe("idempotencyKey")
  })
})

describe("eventIdFor", () => {
  const id = messageIdFor("acme", "order-42")

  it("is deterministic and a version 5 UUID", () => {
    const eventId = eventIdFor(id, "SmsDispatched", 2)
    expect(eventIdFor(id, "SmsDispatched", 2)).toBe(eventId)
    expect(versionOf(eventId)).toBe("5")
  })

  it("differs for any differing part, and does not share the message id namespace", () => {
    const ids = new Set([
      eventIdFor(id, "SmsDispatched", 1),
      eventIdFor(id, "SmsDispatched", 2),
      eventIdFor(id, "SmsRetried", 1),
      eventIdFor(messageIdFor("acme", "order-43"), "SmsDispatched", 1)
    ])
    expect(ids.size).toBe(4)
    expect(eventIdFor("acme", "order-42")).not.toBe(messageIdFor("acme", "order-42"))
  })

  it("treats a number and its decimal string alike", () => {
    expect(eventIdFor(id, "SmsRetried", 3)).toBe(eventIdFor(id, "SmsRetried", "3"))
  })
})

describe("stream names", () => {
  const number = Schema.decodeSync(E164)("+447911123456")

  it("names a message stream sms-<id>", () => {
    const id = messageIdFor("acme", "order-42")
    expect(messageStream(id)).toBe("sms-d4788ed6-486b-550b-8cda-83561e9eaa48")
  })

  it("names a phone stream phone-<digits>, without the plus", () => {
    expect(digitsOf(number)).toBe("447911123456")
    expect(phoneStream(number)).toBe("phone-447911123456")
  })

  it("joins category and id with a dash", () => {
    expect(streamName("sms", "a-b")).toBe("sms-a-b")
  })
})

describe("maskNumber", () => {
  const digits = "4479111234567890"

  it("never contains the full number and keeps the last two digits, for every E.164 length", () => {
    for (let length = 7; length <= 15; length++) {
      const number = `+${digits.slice(0, length)}`
      const masked = maskNumber(number)
      expect(masked).not.toContain(number)
      expect(masked).not.toContain(number.slice(1))
      expect(masked.slice(-2)).toBe(number.slice(-2))
      expect(masked).toHaveLength(number.length)
      expect(masked).toContain("*")
    }
  })

  it("keeps the country prefix, e.g. +4477******21", () => {
    expect(maskNumber("+447700900021")).toBe("+4477******21")
  })

  it("masks a very short string entirely", () => {
    expect(maskNumber("+12")).toBe("***")
    expect(maskNumber("123456")).toBe("******")
    expect(maskNumber("")).toBe("")
  })
})

describe("segmentsOf", () => {
  it("counts GSM-7 text: 1 segment up to 160 characters, 2 at 161", () => {
    expect(segmentsOf("a".repeat(160))).toEqual({ encoding: "GSM-7", segments: 1 })
    expect(segmentsOf("a".repeat(161))).toEqual({ encoding: "GSM-7", segments: 2 })
    expect(segmentsOf("Hello, your code is 1234.")).toEqual({ encoding: "GSM-7", segments: 1 })
  })

  it("keeps GSM-7 for extension characters like €, which take two septets", () => {
    expect(segmentsOf("Total: 5€")).toEqual({ encoding: "GSM-7", segments: 1 })
    expect(segmentsOf("€".repeat(80))).toEqual({ encoding: "GSM-7", segments: 1 })
    expect(segmentsOf("€".repeat(81))).toEqual({ encoding: "GSM-7", segments: 2 })
  })

  it("switches to UCS-2 for Cyrillic: 1 segment up to 70 characters, 2 at 71", () => {
    expect(segmentsOf("я".repeat(70))).toEqual({ encoding: "UCS-2", segments: 1 })
    expect(segmentsOf("я".repeat(71))).toEqual({ encoding: "UCS-2", segments: 2 })
  })

  it("switches to UCS-2 for an emoji, even in otherwise GSM-7 text", () => {
    expect(segmentsOf("On my way 😀")).toEqual({ encoding: "UCS-2", segments: 1 })
    expect(segmentsOf(`${"a".repeat(69)}😀`)).toEqual({ encoding: "UCS-2", segments: 2 })
  })
})
