/**
 * A phone number's lifecycle, in its own stream `phone-<digits>`: deactivated when a provider says
 * the number is invalid (so it stops being sent to, and the refusal can be proved later),
 * reactivated by an operator. Pure, like the message decider.
 *
 * Storage contracts: never rename a tag or reshape a field.
 */
import { Either, Schema } from "effect"

export const DeactivationSource = Schema.Struct({
  /** where the provider said so: its answer to a submission, or a delivery report */
  kind: Schema.Literal("provider_answer", "delivery_report"),
  messageId: Schema.String,
  provider: Schema.optional(Schema.String),
  code: Schema.optional(Schema.String)
})

export class PhoneDeactivated extends Schema.TaggedClass<PhoneDeactivated>()("PhoneDeactivated", {
  number: Schema.String,
  reason: Schema.String,
  source: DeactivationSource,
  deactivatedAt: Schema.Date
}) {}

export class PhoneReactivated extends Schema.TaggedClass<PhoneReactivated>()("PhoneReactivated", {
  number: Schema.String,
  by: Schema.String,
  reason: Schema.String,
  reactivatedAt: Schema.Date
}) {}

export const PhoneEvent = Schema.Union(PhoneDeactivated, PhoneReactivated)
export type PhoneEvent = typeof PhoneEvent.Type
export const phoneEventTypes: ReadonlyArray<PhoneEvent["_tag"]> = ["PhoneDeactivated", "PhoneReactivated"]

export type PhoneState =
  | { readonly status: "active"; readonly since?: Date }
  | { readonly status: "inactive"; readonly since: Date; readonly because: PhoneDeactivated }

export const initialPhoneState: PhoneState = { status: "active" }

export const evolvePhone = (state: PhoneState, event: PhoneEvent): PhoneState => {
  switch (event._tag) {
    case "PhoneDeactivated":
      return state.status === "inactive"
        ? state
        : { status: "inactive", since: event.deactivatedAt, because: event }
    case "PhoneReactivated":
      return state.status === "active" ? state : { status: "active", since: event.reactivatedAt }
  }
}

export interface Deactivate {
  readonly _tag: "Deactivate"
  readonly number: string
  readonly reason: string
  readonly source: typeof DeactivationSource.Type
  readonly at: Date
}

export interface Reactivate {
  readonly _tag: "Reactivate"
  readonly number: string
  readonly by: string
  readonly reason: string
  readonly at: Date
}

export type PhoneCommand = Deactivate | Reactivate

export class PhoneAlreadyActive extends Schema.TaggedError<PhoneAlreadyActive>()("PhoneAlreadyActive", {
  number: Schema.String
}) {
  override get message() {
    return `${this.number} is active`
  }
}

const trusted = { disableValidation: true } as const

/** Deactivating an inactive number records nothing: the first reason stands. */
export const decidePhone = (
  command: PhoneCommand,
  state: PhoneState
): Either.Either<ReadonlyArray<PhoneEvent>, PhoneAlreadyActive> => {
  switch (command._tag) {
    case "Deactivate":
      return Either.right(
        state.status === "inactive"
          ? []
          : [
              new PhoneDeactivated(
                {
                  number: command.number,
                  reason: command.reason,
                  source: command.source,
                  deactivatedAt: command.at
                },
                trusted
              )
            ]
      )
    case "Reactivate":
      return state.status === "active"
        ? Either.left(new PhoneAlreadyActive({ number: command.number }))
        : Either.right([
            new PhoneReactivated(
              { number: command.number, by: command.by, reason: command.reason, reactivatedAt: command.at },
              trusted
            )
          ])
  }
}
