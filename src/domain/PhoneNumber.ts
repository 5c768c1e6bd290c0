import { parsePhoneNumberFromString } from "libphonenumber-js/max"
import { Schema } from "effect"

/** Parses `value` as a strict, valid E.164 number (leading `+`, no formatting) or says why not. */
export const e164Problem = (value: string): string | undefined => {
  if (!/^\+[1-9]\d{6,14}$/.test(value)) return "must be E.164: '+' then 7 to 15 digits, no spaces"
  const parsed = parsePhoneNumberFromString(value)
  if (parsed === undefined || !parsed.isValid()) return "is not a valid phone number for any numbering plan"
  return undefined
}

export const E164 = Schema.String.pipe(
  Schema.filter((value) => e164Problem(value) ?? true, { identifier: "E164" }),
  Schema.brand("E164")
)
export type E164 = typeof E164.Type

/** The digits of a number, used in its `phone-<digits>` stream name. */
export const digitsOf = (number: string): string => number.slice(1)

/**
 * For logs: the last two digits and at most the country prefix stay, at least four digits are hidden,
 * e.g. `+4479******56`; anything shorter than an E.164 number is all stars.
 */
export const maskNumber = (number: string): string => {
  if (number.length < 8) return "*".repeat(number.length)
  const prefix = Math.min(5, Math.max(2, number.length - 8))
  return `${number.slice(0, prefix)}${"*".repeat(number.length - prefix - 2)}${number.slice(-2)}`
}
