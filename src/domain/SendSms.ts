import { Either, ParseResult, Schema } from "effect"
import { E164 } from "./PhoneNumber.js"
import { segmentsOf } from "./Segments.js"

const bounded = (name: string, max: number) =>
  Schema.String.pipe(
    Schema.filter((s) => s.trim().length > 0 || "must not be empty", { identifier: name }),
    Schema.maxLength(max, { message: () => `must be at most ${max} characters` })
  )

export const ProviderId = Schema.String.pipe(
  Schema.pattern(/^[a-z0-9][a-z0-9_-]{0,31}$/, {
    message: () => "provider ids are 1-32 of a-z, 0-9, '_' and '-'"
  }),
  Schema.brand("ProviderId")
)
export type ProviderId = typeof ProviderId.Type

/** The producers' contract on `sms.commands.send` (JSON). Unknown fields are ignored. */
export class SendSms extends Schema.Class<SendSms>("SendSms")({
  clientId: bounded("ClientId", 128).pipe(
    Schema.pattern(/^[A-Za-z0-9._-]+$/, { message: () => "may hold only letters, digits, '.', '_' and '-'" })
  ),
  idempotencyKey: bounded("IdempotencyKey", 256),
  to: E164,
  body: bounded("Body", 1600),
  from: Schema.optional(bounded("Sender", 16)),
  providers: Schema.optional(
    Schema.Array(ProviderId).pipe(Schema.minItems(1, { message: () => "must list at least one provider" }))
  ),
  validUntil: Schema.optional(Schema.Date),
  metadata: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String })),
  trackingId: Schema.optional(bounded("TrackingId", 128))
}) {}

/** Why a command was refused, naming the offending field (`$` for the whole payload). */
export class InvalidSendSms extends Schema.TaggedError<InvalidSendSms>()("InvalidSendSms", {
  field: Schema.String,
  reason: Schema.String
}) {
  override get message() {
    return `${this.field}: ${this.reason}`
  }
}

const decodeSendSms = Schema.decodeUnknownEither(SendSms, { errors: "first", onExcessProperty: "ignore" })

export interface SendSmsLimits {
  /** concatenated segments a body may take (GSM-7 or UCS-2, as a handset counts them) */
  readonly maxSegments: number
}

/** Ten segments: about 1,530 GSM-7 characters or 670 UCS-2 ones. */
export const defaultLimits: SendSmsLimits = { maxSegments: 10 }

export const parseSendSms = (
  raw: string | Uint8Array,
  limits: SendSmsLimits = defaultLimits
): Either.Either<SendSms, InvalidSendSms> => {
  const text = typeof raw === "string" ? raw : new TextDecoder().decode(raw)
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    return Either.left(new InvalidSendSms({ field: "$", reason: "is not valid JSON" }))
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    return Either.left(new InvalidSendSms({ field: "$", reason: "must be a JSON object" }))
  }
  return decodeSendSms(json).pipe(
    Either.mapLeft((error) => {
      const [issue] = ParseResult.ArrayFormatter.formatErrorSync(error)
      return new InvalidSendSms({
        field: issue && issue.path.length > 0 ? issue.path.join(".") : "$",
        reason: issue?.message ?? "is invalid"
      })
    }),
    Either.flatMap((command) => {
      const { encoding, segments } = segmentsOf(command.body)
      return segments <= limits.maxSegments
        ? Either.right(command)
        : Either.left(
            new InvalidSendSms({
              field: "body",
              reason: `takes ${segments} ${encoding} segments; at most ${limits.maxSegments} are allowed`
            })
          )
    })
  )
}
