/**
 * Why a message use case (send, read) was refused, whatever the transport answering it: the HTTP API
 * maps these to its status codes (`Handlers.ts`), the gRPC API to its own (`grpc/Errors.ts`).
 */
import { Schema } from "effect"

/** No such message, or another client's: answered alike, so a client learns nothing of others' ids. */
export class UnknownMessage extends Schema.TaggedError<UnknownMessage>()("UnknownMessage", {
  messageId: Schema.String
}) {
  override get message() {
    return `no message ${this.messageId}`
  }
}

/**
 * Asked as of a time before the message was first recorded: it exists, but did not yet then (an
 * auditor's likeliest slip, a wrong date). Only ever told to a caller who may read the message.
 */
export class NotYetRecorded extends Schema.TaggedError<NotYetRecorded>()("NotYetRecorded", {
  messageId: Schema.String,
  asOf: Schema.String,
  firstRecordedAt: Schema.String
}) {
  override get message() {
    return `message ${this.messageId} did not exist yet at ${this.asOf}: it was first recorded at ${this.firstRecordedAt}`
  }
}

/** The client's daily quota is used up: nothing was stored, and it resets at 00:00 UTC. */
export class QuotaUsedUp extends Schema.TaggedError<QuotaUsedUp>()("QuotaUsedUp", {
  clientId: Schema.String,
  limit: Schema.Number,
  /** seconds to the next UTC midnight */
  retryAfterSeconds: Schema.Number
}) {
  override get message() {
    return `the daily quota of ${this.limit} messages is used up; it resets at 00:00 UTC`
  }
}

/** A store the use case needs did not answer (NATS, the event store): the caller may retry. */
export class StoreUnavailable extends Schema.TaggedError<StoreUnavailable>()("StoreUnavailable", {
  /** which, in words: "the quota store", "the event store" */
  store: Schema.String,
  cause: Schema.Defect
}) {
  override get message() {
    return `${this.store} is unavailable, retry later`
  }
}

/** Turns any failure of a store into `StoreUnavailable` naming it. */
export const unavailable =
  (store: string) =>
  (cause: unknown): StoreUnavailable =>
    new StoreUnavailable({ store, cause })
