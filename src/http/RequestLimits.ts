/**
 * How large a request body may be, on every route. The largest valid `SendSms` is about 20 KiB
 * (every field is bounded) and a delivery report a few hundred bytes: anything past this is refused
 * with 413 before it is read whole (from its content-length, else while reading).
 */
export const MAX_REQUEST_BYTES = 64 * 1024

export const payloadTooLarge = {
  _tag: "PayloadTooLarge",
  message: `the request body is larger than ${MAX_REQUEST_BYTES} bytes`
} as const

/** Whether a request announces a body past the limit (a chunked one is caught while reading). */
export const announcesTooLarge = (contentLength: string | undefined): boolean =>
  contentLength !== undefined && Number(contentLength) > MAX_REQUEST_BYTES
