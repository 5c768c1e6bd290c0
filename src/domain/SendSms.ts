import { Either, ParseResult, Predicate, Schema } from "effect"
import { E164, e164Problem } from "./PhoneNumber.js"
import { dateFrom, nestedDeeperThan, stringRecord } from "./PlainChecks.js"
import { type SegmentCount, segmentsOf } from "./Segments.js"

/**
 * The most segments a body may ever be allowed (`MAX_SEGMENTS` is capped here), and what the
 * Schema's bound on `body` is made of. Not the protocol's 255: counting a body that is not plain GSM
 * text takes the segment library time that grows faster than its length (4,590 characters ~50 ms,
 * 20,000 ~4 s, 39,000 ~30 s), so a producer could stall the intake with one command; 30 keeps the
 * worst case near what 1,600 characters always cost. Few handsets or carriers join more parts anyway.
 */
export const MAX_SEGMENTS_CEILING = 30

/**
 * The most UTF-16 units `segments` segments can hold: GSM-7 holds the most, 160 septets in a single
 * segment and 153 in each concatenated one (the rest is their header), and every character takes at
 * least one septet (UCS-2 holds 70/67). A longer body cannot fit, whatever it holds: it is refused
 * before the segments are counted, so counting never walks more than this.
 */
export const maxBodyLength = (segments: number): number => (segments <= 1 ? 160 : segments * 153)

/** The same for UCS-2, for the refusal's words. */
const maxUcs2Length = (segments: number): number => (segments <= 1 ? 70 : segments * 67)

/**
 * Every field is bounded, so every command that passes can be stored: the largest valid command's
 * `SmsRequested` (a body at `MAX_SEGMENTS_CEILING`) is about 35 KiB, far under nats-server's 1 MiB
 * `max_payload`. (An unbounded `metadata` once let a 1 MiB command be answered 202, then fail to
 * store on every delivery.) The body's real limit is the configured segment limit (`SendSmsLimits`),
 * applied where commands are parsed: `body` here is only the ceiling that limit can reach, because
 * the Schema is built once, at module load.
 */
export const SEND_SMS_BOUNDS = {
  clientId: 128,
  idempotencyKey: 256,
  body: maxBodyLength(MAX_SEGMENTS_CEILING),
  from: 16,
  trackingId: 128,
  providers: 8,
  metadataKeys: 16,
  metadataKey: 64,
  metadataValue: 512
} as const

/** C0 controls and DEL: NUL, ESC and the like would reach the provider (and logs) as they are. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/
/** The same, but a body may keep its line breaks and tabs. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL_IN_BODY = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/
/** Matches nothing: for fields whose own pattern already refuses control characters. */
const NEVER = /(?!)/
/** Printable ASCII: the tracking id is echoed in the `x-tracking-id` response header. */
const HEADER_SAFE = /^[\u0020-\u007e]+$/

const bounded = (name: string, max: number, control: RegExp = CONTROL) =>
  Schema.String.pipe(
    Schema.filter((s) => s.trim().length > 0 || "must not be empty", { identifier: name }),
    Schema.maxLength(max, { message: () => `must be at most ${max} characters` }),
    Schema.filter((s) => !control.test(s) || "must not contain control characters")
  )

/** Why a metadata key is refused, if it is (a record's key schema would drop it silently instead). */
const metadataKeyProblem = (key: string): string | undefined =>
  key.trim().length === 0
    ? "keys must not be empty"
    : key.length > SEND_SMS_BOUNDS.metadataKey
      ? `keys must be at most ${SEND_SMS_BOUNDS.metadataKey} characters`
      : CONTROL.test(key)
        ? "keys must not contain control characters"
        : undefined

export const ProviderId = Schema.String.pipe(
  Schema.pattern(/^[a-z0-9][a-z0-9_-]{0,31}$/, {
    message: () => "provider ids are 1-32 of a-z, 0-9, '_' and '-'"
  }),
  Schema.brand("ProviderId")
)
export type ProviderId = typeof ProviderId.Type

const MetadataValue = Schema.String.pipe(
  Schema.maxLength(SEND_SMS_BOUNDS.metadataValue, {
    message: () => `must be at most ${SEND_SMS_BOUNDS.metadataValue} characters`
  }),
  Schema.filter((s) => !CONTROL.test(s) || "must not contain control characters")
)

/** The producers' contract on `sms.commands.send` (JSON). Unknown fields are ignored. */
export class SendSms extends Schema.Class<SendSms>("SendSms")({
  // its pattern already leaves no room for control characters
  clientId: bounded("ClientId", SEND_SMS_BOUNDS.clientId, NEVER).pipe(
    Schema.pattern(/^[A-Za-z0-9._-]+$/, { message: () => "may hold only letters, digits, '.', '_' and '-'" })
  ),
  idempotencyKey: bounded("IdempotencyKey", SEND_SMS_BOUNDS.idempotencyKey),
  to: E164,
  body: bounded("Body", SEND_SMS_BOUNDS.body, CONTROL_IN_BODY),
  from: Schema.optional(bounded("Sender", SEND_SMS_BOUNDS.from)),
  providers: Schema.optional(
    Schema.Array(ProviderId).pipe(
      Schema.minItems(1, { message: () => "must list at least one provider" }),
      Schema.maxItems(SEND_SMS_BOUNDS.providers, {
        message: () => `must list at most ${SEND_SMS_BOUNDS.providers} providers`
      })
    )
  ),
  validUntil: Schema.optional(Schema.Date),
  metadata: Schema.optional(
    Schema.Record({ key: Schema.String, value: MetadataValue }).pipe(
      Schema.filter((record) => {
        const keys = Object.keys(record)
        if (keys.length > SEND_SMS_BOUNDS.metadataKeys) {
          return `must hold at most ${SEND_SMS_BOUNDS.metadataKeys} keys`
        }
        for (const key of keys) {
          const problem = metadataKeyProblem(key)
          if (problem !== undefined) return problem
        }
        return true
      })
    )
  ),
  trackingId: Schema.optional(
    bounded("TrackingId", SEND_SMS_BOUNDS.trackingId).pipe(
      Schema.filter(
        (s) =>
          HEADER_SAFE.test(s) || "may hold only printable ASCII (it is echoed as the x-tracking-id header)"
      )
    )
  )
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

/** `bounded(name, max)`: a string, not blank, at most `max` UTF-16 units, no control characters */
const isBounded = (value: unknown, max: number, control: RegExp = CONTROL): value is string =>
  typeof value === "string" && value.length <= max && value.trim().length > 0 && !control.test(value)
const isOptionalBounded = (value: unknown, max: number): value is string | undefined =>
  value === undefined || isBounded(value, max)
const isMetadata = (record: Readonly<Record<string, string>>): boolean => {
  const keys = Object.keys(record)
  if (keys.length > SEND_SMS_BOUNDS.metadataKeys) return false
  for (const key of keys) {
    const value = record[key] ?? ""
    if (metadataKeyProblem(key) !== undefined) return false
    if (value.length > SEND_SMS_BOUNDS.metadataValue || CONTROL.test(value)) return false
  }
  return true
}
const isE164 = (value: unknown): value is E164 =>
  typeof value === "string" && e164Problem(value) === undefined
const isProviderIds = (value: unknown): value is ReadonlyArray<ProviderId> => {
  if (!Array.isArray(value) || value.length === 0 || value.length > SEND_SMS_BOUNDS.providers) return false
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
    !isBounded(clientId, SEND_SMS_BOUNDS.clientId, NEVER) ||
    !CLIENT_ID.test(clientId) ||
    !isBounded(idempotencyKey, SEND_SMS_BOUNDS.idempotencyKey) ||
    !isBounded(body, SEND_SMS_BOUNDS.body, CONTROL_IN_BODY) ||
    !isOptionalBounded(from, SEND_SMS_BOUNDS.from) ||
    !(providers === undefined || isProviderIds(providers)) ||
    (validUntil === undefined && json.validUntil !== undefined) ||
    (metadata === undefined && json.metadata !== undefined) ||
    (metadata !== undefined && !isMetadata(metadata)) ||
    !isOptionalBounded(trackingId, SEND_SMS_BOUNDS.trackingId) ||
    (trackingId !== undefined && !HEADER_SAFE.test(trackingId)) ||
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
  /**
   * concatenated segments a body may take (GSM-7 or UCS-2, as a handset counts them): the one body
   * limit, the characters follow from it (`maxBodyLength`); at most `MAX_SEGMENTS_CEILING`
   */
  readonly maxSegments: number
}

/** Ten segments: at most 1,530 GSM-7 characters or 670 UCS-2 ones. */
export const defaultLimits: SendSmsLimits = { maxSegments: 10 }

const utf8 = new TextDecoder()

/** Nesting allowed in a command's JSON: its own shape needs 2 (an object holding `metadata`). */
export const MAX_DEPTH = 8

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
    // a command is at most three levels deep (metadata values); far deeper input would overflow
    // the stack of whatever walks it next (JSON.stringify did: an answer-less 500)
    if (nestedDeeperThan(json, MAX_DEPTH)) {
      return Either.left(
        new InvalidSendSms({ field: "$", reason: `is nested more than ${MAX_DEPTH} levels deep` })
      )
    }
    return Either.flatMap(decode(json), (command) => {
      // after the Schema, so every other refusal reads as it did; both parsers share this
      if (command.body.length > maxBodyLength(limits.maxSegments)) {
        return Either.left(
          new InvalidSendSms({
            field: "body",
            reason: `is longer than ${limits.maxSegments} segment${limits.maxSegments === 1 ? "" : "s"} can hold (${maxBodyLength(limits.maxSegments)} GSM-7 characters, ${maxUcs2Length(limits.maxSegments)} UCS-2)`
          })
        )
      }
      const { encoding, segments } = segmentsOfCommand(command)
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

/** Counts already made, by command: the parser's check and the intake's event ask for the same one. */
const counted = new WeakMap<SendSms, SegmentCount>()

/** A command's encoding and segments, counted once (the parse counts it; the intake reads it back). */
export const segmentsOfCommand = (command: SendSms): SegmentCount => {
  const known = counted.get(command)
  if (known !== undefined) return known
  const count = segmentsOf(command.body)
  counted.set(command, count)
  return count
}

/** A command from its JSON: the lean checks for a valid command, the Schema for everything else. */
export const parseSendSms = parseWith((json) => {
  const command = leanSendSms(json)
  return command !== undefined ? Either.right(command) : decodeWithSchema(json)
})

/** The same with the Schema alone: the reference `parseSendSms` is tested against. */
export const parseSendSmsWithSchema = parseWith(decodeWithSchema)
