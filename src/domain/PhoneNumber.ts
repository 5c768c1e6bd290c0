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
export const digitsOf = (number: E164): string => number.slice(1)

/** For logs: keeps the country prefix and last two digits, e.g. `+4477******21`. */
export const maskNumber = (number: string): string =>
  number.length <= 6
    ? "*".repeat(number.length)
    : `${number.slice(0, 5)}${"*".repeat(number.length - 7)}${number.slice(-2)}`
