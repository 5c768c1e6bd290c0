/**
 * How the gRPC API refuses: one error carrying the status code, and the standard details client
 * libraries read (`google.rpc.Status` in the `grpc-status-details-bin` trailer): a `BadRequest`
 * naming the field for INVALID_ARGUMENT, a `RetryInfo` for RESOURCE_EXHAUSTED, which also gets a
 * `retry-after` trailer (whole seconds) for clients that read no details.
 */
import * as grpc from "@grpc/grpc-js"
import type * as protoLoader from "@grpc/proto-loader"
import { Effect, Schema } from "effect"
import type { InvalidSendSms } from "../domain/SendSms.js"
import type { NotYetRecorded, QuotaUsedUp, StoreUnavailable, UnknownMessage } from "../messages/Errors.js"
import { messageTypeIn } from "./Proto.js"

export class GrpcError extends Schema.TaggedError<GrpcError>()("GrpcError", {
  /** a `grpc.status` */
  code: Schema.Number,
  message: Schema.String,
  /** INVALID_ARGUMENT: the field, in the `.proto`'s terms, and what is wrong with it */
  violation: Schema.optional(Schema.Struct({ field: Schema.String, reason: Schema.String })),
  /** RESOURCE_EXHAUSTED: when to try again */
  retryAfterSeconds: Schema.optional(Schema.Number)
}) {}

export const invalidArgument = (field: string, reason: string) =>
  new GrpcError({
    code: grpc.status.INVALID_ARGUMENT,
    message: `${field}: ${reason}`,
    violation: { field, reason }
  })

export const unauthenticated = (message: string) =>
  new GrpcError({ code: grpc.status.UNAUTHENTICATED, message })

export const permissionDenied = (message: string) =>
  new GrpcError({ code: grpc.status.PERMISSION_DENIED, message })

export const notFound = (message: string) => new GrpcError({ code: grpc.status.NOT_FOUND, message })

export const unavailable = (message: string) => new GrpcError({ code: grpc.status.UNAVAILABLE, message })

/** `validUntil` -> `valid_until`, `metadata.order` -> `metadata.order`: the command's path as the `.proto` names it. */
export const protoField = (field: string) => {
  const [first = field, ...rest] = field.split(".")
  return [first.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`), ...rest].join(".")
}

/** The use cases' refusals (`messages/`) as gRPC statuses; an unavailable store is logged, as on HTTP. */
export const fromUseCase = (
  error: InvalidSendSms | UnknownMessage | NotYetRecorded | QuotaUsedUp | StoreUnavailable
): Effect.Effect<never, GrpcError> => {
  switch (error._tag) {
    case "InvalidSendSms":
      return Effect.fail(invalidArgument(protoField(error.field), error.reason))
    case "UnknownMessage":
    case "NotYetRecorded":
      return Effect.fail(notFound(error.message))
    case "QuotaUsedUp":
      return Effect.fail(
        new GrpcError({
          code: grpc.status.RESOURCE_EXHAUSTED,
          message: error.message,
          retryAfterSeconds: error.retryAfterSeconds
        })
      )
    case "StoreUnavailable":
      return Effect.zipRight(
        Effect.logError(`${error.store} is unavailable`, error.cause),
        Effect.fail(unavailable(error.message))
      )
  }
}

interface RpcStatus {
  readonly code: number
  readonly message: string
  readonly details: ReadonlyArray<{ readonly type_url: string; readonly value: Buffer }>
}

interface RetryInfo {
  readonly retry_delay: { readonly seconds: number; readonly nanos: number }
}

interface BadRequest {
  readonly field_violations: ReadonlyArray<{ readonly field: string; readonly description: string }>
}

export const STATUS_DETAILS_KEY = "grpc-status-details-bin"

/** What a failed call answers: its code, message and trailers, encoded with the `google.rpc` messages of `errorDetails`. */
export const statusEncoder = (errorDetails: protoLoader.PackageDefinition) => {
  const status = messageTypeIn<RpcStatus>(errorDetails, "google.rpc.Status")
  const retryInfo = messageTypeIn<RetryInfo>(errorDetails, "google.rpc.RetryInfo")
  const badRequest = messageTypeIn<BadRequest>(errorDetails, "google.rpc.BadRequest")
  return (error: GrpcError): grpc.ServiceError => {
    const metadata = new grpc.Metadata()
    const details: Array<RpcStatus["details"][number]> = []
    if (error.violation !== undefined) {
      const { field, reason } = error.violation
      details.push({
        type_url: "type.googleapis.com/google.rpc.BadRequest",
        value: badRequest.serialize({ field_violations: [{ field, description: reason }] })
      })
    }
    if (error.retryAfterSeconds !== undefined) {
      const seconds = Math.max(0, Math.ceil(error.retryAfterSeconds))
      details.push({
        type_url: "type.googleapis.com/google.rpc.RetryInfo",
        value: retryInfo.serialize({ retry_delay: { seconds, nanos: 0 } })
      })
      metadata.set("retry-after", String(seconds))
    }
    if (details.length > 0) {
      metadata.set(
        STATUS_DETAILS_KEY,
        status.serialize({ code: error.code, message: error.message, details })
      )
    }
    return Object.assign(new Error(error.message), { code: error.code, details: error.message, metadata })
  }
}
