import { SegmentedMessage } from "sms-segments-calculator"

export type Encoding = "GSM-7" | "UCS-2"

/** Encoding and segment count as a handset will see them (GSM-7 when every character fits). */
export const segmentsOf = (body: string): { readonly encoding: Encoding; readonly segments: number } => {
  const message = new SegmentedMessage(body, "auto")
  return { encoding: message.encodingName === "GSM-7" ? "GSM-7" : "UCS-2", segments: message.segmentsCount }
}
