import { SegmentedMessage } from "sms-segments-calculator"
import UnicodeToGsmModule from "sms-segments-calculator/dist/libs/UnicodeToGSM.js"

export type Encoding = "GSM-7" | "UCS-2"

export interface SegmentCount {
  readonly encoding: Encoding
  readonly segments: number
}

/**
 * The GSM 03.38 basic character set: one septet each. Carriage return is left out on purpose: the
 * library counts "\r\n" as one grapheme, so a body holding one takes the library's path.
 */
const GSM_BASIC = new Set(
  Array.from(
    "@£$¥èéùìòÇ\nØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà",
    (char) => char.charCodeAt(0)
  )
)

/**
 * The count of a body in the basic set only, else `undefined`. A single segment holds 160 septets;
 * a concatenated one 153 (the rest is its header).
 */
export const basicGsmCount = (body: string): SegmentCount | undefined => {
  for (let i = 0; i < body.length; i++) if (!GSM_BASIC.has(body.charCodeAt(i))) return undefined
  return { encoding: "GSM-7", segments: body.length <= 160 ? 1 : Math.ceil(body.length / 153) }
}

/** The library's own table of what GSM-7 can carry (basic and extension), by UTF-16 code unit. */
const unicodeToGsm: Readonly<Record<number, ReadonlyArray<number> | undefined>> =
  (UnicodeToGsmModule as unknown as { default?: Record<number, Array<number>> }).default ??
  (UnicodeToGsmModule as unknown as Record<number, Array<number>>)

/**
 * Characters that can join a neighbour into one grapheme (marks, joiners, Hangul jamo and syllables,
 * prepended Arabic signs, the few letters that are spacing marks, regional indicators, skin-tone
 * modifiers, tags, lone surrogates): a body without any of them is one grapheme per code point, as
 * the library would split it (an emoji on its own is one), and is counted directly.
 */
const MAY_JOIN =
  // biome-ignore lint/suspicious/noMisleadingCharacterClass: it matches single code points on purpose (any one joiner)
  /[\p{M}\u200C\u200D\u0600-\u0605\u06DD\u070F\u0890\u0891\u08E2\u0D4E\u0E33\u0EB3\u1100-\u11FF\u302E\u302F\uA960-\uA97F\uAC00-\uD7FF\uD800-\uDFFF\u{1F1E6}-\u{1F1FF}\u{1F3FB}-\u{1F3FF}\u{E0000}-\u{E0FFF}\uFF9E\uFF9F]/u

/** Bits in one SMS (140 octets), and those a concatenation header takes from each segment. */
const SEGMENT_BITS = 1120
const HEADER_BITS = 48

/**
 * The library's segmentation for a body of single-unit graphemes, without its grapheme split (which
 * took ~10 ms for 700 Cyrillic characters, twice per command): characters fill a segment; when one
 * does not fit, a new segment starts with a header, and the first segment, which gets its header only
 * then, hands over the characters the header displaces.
 */
export const simpleCount = (body: string): SegmentCount | undefined => {
  if (MAY_JOIN.test(body)) return undefined
  let gsm = true
  for (let i = 0; i < body.length && gsm; i++) if (unicodeToGsm[body.charCodeAt(i)] === undefined) gsm = false
  // a code point outside the BMP (a surrogate pair, never GSM) is one grapheme of two UCS-2 units
  const bitsOf = (i: number) =>
    gsm ? 7 * (unicodeToGsm[body.charCodeAt(i)]?.length ?? 1) : isHigh(i) ? 32 : 16
  const isHigh = (i: number) => {
    const unit = body.charCodeAt(i)
    return unit >= 0xd800 && unit <= 0xdbff
  }
  const first: Array<number> = []
  let firstBits = 0
  let segments = 1
  let currentBits = 0
  for (let i = 0; i < body.length; i += isHigh(i) ? 2 : 1) {
    const bits = bitsOf(i)
    if (segments === 1) {
      if (SEGMENT_BITS - firstBits >= bits) {
        first.push(bits)
        firstBits += bits
        continue
      }
      // the second segment: the first takes its header and hands over what no longer fits
      segments = 2
      currentBits = HEADER_BITS
      firstBits += HEADER_BITS
      while (firstBits > SEGMENT_BITS) {
        const moved = first.pop() ?? 0
        firstBits -= moved
        currentBits += moved
      }
    } else if (SEGMENT_BITS - currentBits < bits) {
      segments++
      currentBits = HEADER_BITS
    }
    currentBits += bits
  }
  return { encoding: gsm ? "GSM-7" : "UCS-2", segments }
}

/**
 * Encoding and segment count as a handset will see them (GSM-7 when every character fits). Plain
 * GSM text, most traffic, is counted directly: the library's grapheme split cost ~50 µs a message;
 * so is any text of single-unit graphemes (Cyrillic, Greek, CJK, the GSM extension table). Only text
 * with combining marks, joiners, emoji and the like goes through the library.
 */
export const segmentsOf = (body: string): SegmentCount => {
  const basic = basicGsmCount(body) ?? simpleCount(body)
  if (basic !== undefined) return basic
  const message = new SegmentedMessage(body, "auto")
  return { encoding: message.encodingName === "GSM-7" ? "GSM-7" : "UCS-2", segments: message.segmentsCount }
}
