/** The limits every way in applies to a `SendSms`, from the environment (`MAX_SEGMENTS`, default 10). */
import { defaultLimits, type SendSmsLimits } from "../domain/SendSms.js"

const configured = Number(process.env.MAX_SEGMENTS)

export const messageLimits: SendSmsLimits = {
  maxSegments: Number.isInteger(configured) && configured > 0 ? configured : defaultLimits.maxSegments
}
