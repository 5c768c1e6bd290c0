import { SegmentedMessage } from "sms-segments-calculator"

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

/**
 * Encoding and segment count as a handset will see them (GSM-7 when every character fits). Plain
 * GSM text, most traffic, is counted directly: the library's grapheme split cost ~50 µs a message.
 */
export const segmentsOf = (body: string): SegmentCount => {
  const basic = basicGsmCount(body)
  if (basic !== undefined) return basic
  const message = new SegmentedMessage(body, "auto")
  return { encoding: message.encodingName === "GSM-7" ? "GSM-7" : "UCS-2", segments: message.segmentsCount }
}
