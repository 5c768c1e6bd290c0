/**
 * The API's definitions, loaded at run time from the shipped `proto/sms/v1/gateway.proto` with
 * proto-loader: the `.proto` is the one source of truth, with no code generation step to forget. The
 * interfaces below are the request and response shapes as proto-loader presents them (camelCase
 * fields, absent fields `undefined`), written out by hand from the `.proto`: keep them in step.
 */
import { fileURLToPath } from "node:url"
import type * as grpc from "@grpc/grpc-js"
import * as protoLoader from "@grpc/proto-loader"
import { Effect, Schema } from "effect"
import { errorDetails, health } from "./StandardProtos.js"

/** `proto/` at the package's root: two folders up from this module, in `src/grpc/` and `dist/grpc/` alike. */
export const PROTO_DIR = fileURLToPath(new URL("../../proto/", import.meta.url))
export const GATEWAY_PROTO = "sms/v1/gateway.proto"
export const GATEWAY_SERVICE = "sms.v1.SmsGateway"

/**
 * camelCase fields; int64 as numbers (revisions and positions stay far below 2^53); enums by name;
 * absent fields left `undefined`, so "not sent" is never mistaken for an empty value.
 */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: false,
  oneofs: true
}

export class ProtoError extends Schema.TaggedError<ProtoError>()("ProtoError", {
  message: Schema.String,
  cause: Schema.Defect
}) {}

/** A message type of a loaded package, with its codec. */
export type MessageType<T> = protoLoader.MessageTypeDefinition<T, T>

const isService = (
  definition: protoLoader.AnyDefinition | undefined
): definition is protoLoader.ServiceDefinition => definition !== undefined && !("format" in definition)

const isMessageType = (
  definition: protoLoader.AnyDefinition | undefined
): definition is protoLoader.MessageTypeDefinition<object, object> =>
  definition !== undefined && "format" in definition && "serialize" in definition

export const serviceIn = (pkg: protoLoader.PackageDefinition, name: string): grpc.ServiceDefinition => {
  const definition = pkg[name]
  if (!isService(definition)) throw new Error(`${name} is not a service of the loaded protos`)
  // proto-loader's service definitions are grpc-js's: the two packages are made for each other
  return definition as grpc.ServiceDefinition
}

/** A message's codec; `T` is its shape as the caller knows it from the `.proto` (nothing checks it). */
export const messageTypeIn = <T>(pkg: protoLoader.PackageDefinition, name: string): MessageType<T> => {
  const definition = pkg[name]
  if (!isMessageType(definition)) throw new Error(`${name} is not a message of the loaded protos`)
  return definition as unknown as MessageType<T>
}

export interface Protos {
  /** the API, for the server and for clients (tests) */
  readonly gateway: protoLoader.PackageDefinition
  readonly health: protoLoader.PackageDefinition
  readonly errorDetails: protoLoader.PackageDefinition
  /** the API with its field names as written in the `.proto` (snake_case): what reflection shows */
  readonly gatewayAsWritten: protoLoader.PackageDefinition
}

/** Loads every definition the server needs; fails naming the file when the `.proto` is missing or wrong. */
export const loadProtos = Effect.try({
  try: (): Protos => ({
    gateway: protoLoader.loadSync(GATEWAY_PROTO, { ...LOADER_OPTIONS, includeDirs: [PROTO_DIR] }),
    gatewayAsWritten: protoLoader.loadSync(GATEWAY_PROTO, {
      ...LOADER_OPTIONS,
      keepCase: true,
      includeDirs: [PROTO_DIR]
    }),
    health: protoLoader.fromJSON(health, LOADER_OPTIONS),
    errorDetails: protoLoader.fromJSON(errorDetails, { ...LOADER_OPTIONS, keepCase: true })
  }),
  catch: (cause) =>
    new ProtoError({
      message: `cannot load ${GATEWAY_PROTO} from ${PROTO_DIR}: ${cause instanceof Error ? cause.message : String(cause)}`,
      cause
    })
})

// ---------------------------------------------------------------------------------------------
// the messages of sms.v1, as proto-loader presents them (see LOADER_OPTIONS)

export interface Timestamp {
  readonly seconds?: number
  readonly nanos?: number
}

export interface SendSmsRequest {
  readonly idempotencyKey?: string
  readonly to?: string
  readonly body?: string
  readonly from?: string
  readonly providers?: ReadonlyArray<string>
  readonly validUntil?: Timestamp
  readonly metadata?: Readonly<Record<string, string>>
  readonly trackingId?: string
}

export interface SendSmsResponse {
  readonly messageId: string
  readonly duplicate: boolean
  readonly trackingId: string
}

export interface GetMessageRequest {
  readonly messageId?: string
  readonly asOf?: Timestamp
}

export interface WatchMessageRequest {
  readonly messageId?: string
  readonly afterRevision?: number
}

export interface GetHistoryRequest {
  readonly messageId?: string
}

export type MessageStatus =
  | "MESSAGE_STATUS_REQUESTED"
  | "MESSAGE_STATUS_DISPATCHED"
  | "MESSAGE_STATUS_RETRYING"
  | "MESSAGE_STATUS_DELIVERED"
  | "MESSAGE_STATUS_FAILED"
  | "MESSAGE_STATUS_UNKNOWN"

export interface Message {
  readonly messageId: string
  readonly clientId: string
  readonly status: MessageStatus
  readonly to: string
  readonly from?: string
  readonly encoding: string
  readonly segments: number
  readonly provider?: string
  readonly providerMessageId?: string
  readonly attempts: number
  readonly lastError?: string
  readonly failureReason?: string
  readonly requestedAt?: Timestamp
  readonly dispatchedAt?: Timestamp
  readonly retriedAt?: Timestamp
  readonly nextAttemptAt?: Timestamp
  readonly deliveredAt?: Timestamp
  readonly failedAt?: Timestamp
  readonly resubmittedAt?: Timestamp
  readonly unknownAt?: Timestamp
  readonly providerStatus?: string
  readonly providerStatusAt?: Timestamp
  readonly revision: number
  readonly position: number
}

export interface MessageUpdate {
  readonly revision: number
  readonly eventType: string
  readonly recordedAt: Timestamp
  readonly message: Message
  readonly final: boolean
}

/** `google.protobuf.Value`: one of its kinds. */
export type Value =
  | { readonly nullValue: "NULL_VALUE" }
  | { readonly numberValue: number }
  | { readonly stringValue: string }
  | { readonly boolValue: boolean }
  | { readonly structValue: Struct }
  | { readonly listValue: { readonly values: ReadonlyArray<Value> } }

/** `google.protobuf.Struct`: a JSON object. */
export interface Struct {
  readonly fields: Readonly<Record<string, Value>>
}

export interface Event {
  readonly revision: number
  readonly position: number
  readonly type: string
  readonly recordedAt: Timestamp
  readonly eventId: string
  readonly data?: Struct
}

export interface GetHistoryResponse {
  readonly messageId: string
  readonly events: ReadonlyArray<Event>
}

export type ServingStatus = "UNKNOWN" | "SERVING" | "NOT_SERVING" | "SERVICE_UNKNOWN"
