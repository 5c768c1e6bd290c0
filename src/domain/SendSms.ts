import { Either, ParseResult, Predicate, Schema } from "effect"
import { E164, e164Problem } from "./PhoneNumber.js"
import { dateFrom, stringRecord } from "./PlainChecks.js"
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

/** The contract: the Schema's decoding of a JSON object, its first error as field and reason. */
const decodeWithSchema = (json: object): Either.Either<SendSms, InvalidSendSms> =>
  Either.mapLeft(decodeSendSms(json), (error) => {
    const [issue] = ParseResult.ArrayFormatter.formatErrorSync(error)
    return new InvalidSendSms({
      field: issue && issue.path.length > 0 ? issue.path.join(".") : "$",
      reason: issue?.message ?? "is invalid"
    })
  })

// The lean path: the Schema's checks as plain functions, for commands that pass them all. The
// Schema decoder cost more than the rest of parsing a command; any command it would refuse (or
// that is in any way unusual) still goes to it, so every refusal names the Schema's field and reason.

const CLIENT_ID = /^[A-Za-z0-9._-]+$/
const PROVIDER_ID = /^[a-z0-9][a-z0-9_-]{0,31}$/

/** `bounded(name, max)`: a string, not blank, at most `max` UTF-16 units */
const isBounded = (value: unknown, max: number): value is string =>
  typeof value === "string" && value.length <= max && value.trim().length > 0
const isOptionalBounded = (value: unknown, max: number): value is string | undefined =>
  value === undefined || isBounded(value, max)
const isE164 = (value: unknown): value is E164 =>
  typeof value === "string" && e164Problem(value) === undefined
const isProviderIds = (value: unknown): value is ReadonlyArray<ProviderId> => {
  if (!Array.isArray(value) || value.length === 0) return false
  for (let i = 0; i < value.length; i++) {
    const id: unknown = value[i]
    if (typeof id !== "string" || !PROVIDER_ID.test(id)) return false
  }
  return true
}
/** Commands passing the Schema's checks here are built without running them again. */
const trusted = { disableValidation: true } as const

/**
 * The command the Schema decodes from a parsed JSON object, when it passes every check; `undefined`
 * for anything else (then the Schema decides and names the error). The object comes from
 * `JSON.parse`: own, plain fields only, never a key set to `undefined`.
 */
export const leanSendSms = (json: Readonly<Record<string, unknown>>): SendSms | undefined => {
  const { clientId, idempotencyKey, to, body, from, providers, trackingId } = json
  const validUntil = json.validUntil === undefined ? undefined : dateFrom(json.validUntil)
  const metadata = json.metadata === undefined ? undefined : stringRecord(json.metadata)
  if (
    !isBounded(clientId, 128) ||
    !CLIENT_ID.test(clientId) ||
    !isBounded(idempotencyKey, 256) ||
    !isBounded(body, 1600) ||
    !isOptionalBounded(from, 16) ||
    !(providers === undefined || isProviderIds(providers)) ||
    (validUntil === undefined && json.validUntil !== undefined) ||
    (metadata === undefined && json.metadata !== undefined) ||
    !isOptionalBounded(trackingId, 128) ||
    // last: the costliest check, libphonenumber-js's
    !isE164(to)
  ) {
    return undefined
  }
  return new SendSms(
    {
      clientId,
      idempotencyKey,
      to,
      body,
      ...(from !== undefined && { from }),
      ...(providers !== undefined && { providers }),
      ...(validUntil !== undefined && { validUntil }),
      ...(metadata !== undefined && { metadata }),
      ...(trackingId !== undefined && { trackingId })
    },
    trusted
  )
}

export interface SendSmsLimits {
  /** concatenated segments a body may take (GSM-7 or UCS-2, as a handset counts them) */
  readonly maxSegments: number
}

/** Ten segments: about 1,530 GSM-7 characters or 670 UCS-2 ones. */
export const defaultLimits: SendSmsLimits = { maxSegments: 10 }

const utf8 = new TextDecoder()

const parseWith =
  (decode: (json: Readonly<Record<string, unknown>>) => Either.Either<SendSms, InvalidSendSms>) =>
  (
    raw: string | Uint8Array,
    limits: SendSmsLimits = defaultLimits
  ): Either.Either<SendSms, InvalidSendSms> => {
    const text = typeof raw === "string" ? raw : utf8.decode(raw)
    let json: unknown
    try {
      json = JSON.parse(text)
    } catch {
      return Either.left(new InvalidSendSms({ field: "$", reason: "is not valid JSON" }))
    }
    if (!Predicate.isRecord(json)) {
      return Either.left(new InvalidSendSms({ field: "$", reason: "must be a JSON object" }))
    }
    return Either.flatMap(decode(json), (command) => {
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
  }

/** A command from its JSON: the lean checks for a valid command, the Schema for everything else. */
export const parseSendSms = parseWith((json) => {
  const command = leanSendSms(json)
  return command !== undefined ? Either.right(command) : decodeWithSchema(json)
})

/** The same with the Schema alone: the reference `parseSendSms` is tested against. */
export const parseSendSmsWithSchema = parseWith(decodeWithSchema)
