import * as fc from "fast-check"
import { SegmentedMessage } from "sms-segments-calculator"
import { describe, expect, it } from "vitest"
import { basicGsmCount, segmentsOf, simpleCount } from "../../src/domain/Segments.js"

const library = (body: string) => {
  const message = new SegmentedMessage(body, "auto")
  return { encoding: message.encodingName === "GSM-7" ? "GSM-7" : "UCS-2", segments: message.segmentsCount }
}

const gsmBasic = Array.from(
  "@£$¥èéùìòÇ\nØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
// what must leave the direct count: extension table, carriage return, non-GSM letters, emoji
const others = ["€", "^", "{", "}", "[", "]", "~", "|", "\\", "\f", "\r", "ç", "ï", "Ж", "中", "😀", "\u0301"]

describe("segmentsOf", () => {
  it("counts plain GSM-7 text exactly as the library does, at every length around the boundaries", () => {
    for (const length of [0, 1, 153, 159, 160, 161, 306, 307, 459, 460, 1530, 1531]) {
      const body = "a".repeat(length)
      expect(segmentsOf(body)).toEqual(library(body))
    }
    const all = gsmBasic.join("")
    expect(segmentsOf(all)).toEqual({ encoding: "GSM-7", segments: 1 })
    expect(library(all)).toEqual({ encoding: "GSM-7", segments: 1 })
  })

  it("counts any basic-set body directly, and the same as the library", () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...gsmBasic), { maxLength: 700 }), (chars) => {
        const body = chars.join("")
        const direct = basicGsmCount(body)
        expect(direct).toBeDefined()
        expect(direct).toEqual(library(body))
      }),
      { numRuns: 300 }
    )
    expect(basicGsmCount("price: 5€")).toBeUndefined()
    expect(basicGsmCount("line\r\nbreak")).toBeUndefined()
  })

  it("agrees with the library on any mix of basic, extension and non-GSM characters", () => {
    const char = fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom(...gsmBasic) },
      { weight: 1, arbitrary: fc.constantFrom(...others) }
    )
    fc.assert(
      fc.property(fc.array(char, { maxLength: 700 }), (chars) => {
        const body = chars.join("")
        expect(segmentsOf(body)).toEqual(library(body))
      }),
      { numRuns: 400 }
    )
  })

  // letters of other scripts, one grapheme each, beside what joins graphemes (marks, joiners, emoji,
  // Hangul, Thai and Devanagari signs), so the direct count meets every path of the library's
  const singles = [...Array.from("ЖжЯяЁёΩωλπ中文日本語ابتثשלוםàÇ€^{}[]~|\\\f\r\nçïß"), "😀", "🎉", "𝄞"]
  const joiners = [
    "\u0301",
    "\u200D",
    "👍🏽",
    "👩\u200D💻",
    "🇩🇪",
    "가",
    "\u1100\u1161",
    "ก\u0E33",
    "क\u094D\u0937",
    "\uFE0F",
    "e\u0301"
  ]

  it("counts text of single-unit graphemes (Cyrillic, Greek, CJK, Arabic letters, GSM extension) as the library does", () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.constantFrom(...singles), fc.constantFrom(...gsmBasic)), { maxLength: 1400 }),
        (chars) => {
          const body = chars.join("")
          const direct = simpleCount(body)
          expect(direct).toBeDefined()
          expect(direct).toEqual(library(body))
        }
      ),
      { numRuns: 300 }
    )
    for (const length of [69, 70, 71, 134, 135, 201, 202, 670, 671]) {
      const body = "Ж".repeat(length)
      expect(simpleCount(body)).toEqual(library(body))
    }
  })

  it("leaves anything that may join graphemes to the library, and agrees with it on every mix", () => {
    for (const joiner of joiners) expect(simpleCount(`abc${joiner}`)).toBeUndefined()
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            { weight: 6, arbitrary: fc.constantFrom(...singles) },
            { weight: 3, arbitrary: fc.constantFrom(...gsmBasic) },
            { weight: 1, arbitrary: fc.constantFrom(...joiners) }
          ),
          { maxLength: 400 }
        ),
        (chars) => {
          const body = chars.join("")
          expect(segmentsOf(body)).toEqual(library(body))
        }
      ),
      { numRuns: 200 }
    )
  })
})
