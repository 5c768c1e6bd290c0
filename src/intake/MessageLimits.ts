/**
 * The limits every way in applies to a `SendSms`, from the environment: `MAX_SEGMENTS` (default 10,
 * at most 30) is the one body limit; the characters a body may hold follow from it (`maxBodyLength`).
 */
import { defaultLimits, MAX_SEGMENTS_CEILING, type SendSmsLimits } from "../domain/SendSms.js"

/**
 * The segment limit a `MAX_SEGMENTS` value sets: anything but a positive integer keeps the default;
 * past the ceiling it stops there (see `MAX_SEGMENTS_CEILING`: counting longer bodies costs too much).
 */
export const segmentLimitFrom = (raw: string | undefined): number => {
  const configured = Number(raw)
  if (raw === undefined || raw.trim() === "" || !Number.isInteger(configured) || configured <= 0)
    return defaultLimits.maxSegments
  return Math.min(configured, MAX_SEGMENTS_CEILING)
}

export const messageLimits: SendSmsLimits = { maxSegments: segmentLimitFrom(process.env.MAX_SEGMENTS) }
