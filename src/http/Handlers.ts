/** Handlers of the HTTP API groups defined in `Api.ts`. */
import { HttpApiBuilder, HttpServerRequest } from "@effect/platform"
import { Effect, Either, Option } from "effect"
import { storeDeliveryReport } from "../actors/DeliveryReports.js"
import type { MessageId } from "../domain/Ids.js"
import { messageStream } from "../domain/StreamName.js"
import { EventStore } from "../eventstore/EventStore.js"
import { getStatus } from "../projections/MessageStatus.js"
import { Providers } from "../providers/Providers.js"
import {
  GatewayApi,
  InvalidSignature,
  MalformedDeliveryReport,
  MessageNotFound,
  ServiceUnavailable,
  UnknownProvider
} from "./Api.js"
import { PublicUrl } from "./PublicUrl.js"

const unavailable = (what: string) => () =>
  new ServiceUnavailable({ message: `${what} is unavailable, retry later` })
const notFound = (id: MessageId) => new MessageNotFound({ messageId: id, message: `no message ${id}` })

export const MessagesLive = HttpApiBuilder.group(GatewayApi, "messages", (handlers) =>
  handlers
    .handle("getMessage", ({ path }) =>
      getStatus(path.id).pipe(
        Effect.mapError(unavailable("the status store")),
        Effect.flatMap(Option.match({ onNone: () => Effect.fail(notFound(path.id)), onSome: Effect.succeed }))
      )
    )
    .handle("getMessageEvents", ({ path }) =>
      Effect.gen(function* () {
        const store = yield* EventStore
        const events = yield* store
          .read(messageStream(path.id))
          .pipe(Effect.mapError(unavailable("the event store")))
        if (events.length === 0) return yield* notFound(path.id)
        return {
          messageId: path.id,
          events: events.map((e) => ({
            position: e.position,
            revision: e.revision,
            type: e.type,
            recordedAt: e.recordedAt.toISOString(),
            eventId: e.id,
            data: e.data
          }))
        }
      })
    )
)

export const DeliveryReportsLive = HttpApiBuilder.group(GatewayApi, "deliveryReports", (handlers) =>
  handlers.handle("receiveDeliveryReport", ({ path }) =>
    Effect.gen(function* () {
      const provider = (yield* Providers).get(path.provider)
      if (provider === undefined) {
        return yield* new UnknownProvider({
          provider: path.provider,
          message: `no provider ${path.provider}`
        })
      }
      const request = yield* HttpServerRequest.HttpServerRequest
      const body = yield* request.text.pipe(
        Effect.mapError(() => new MalformedDeliveryReport({ message: "cannot read the request body" }))
      )
      const publicUrl = yield* PublicUrl
      const parsed = provider.adapter.parseDeliveryReport({
        headers: request.headers,
        body,
        url: `${publicUrl}${request.url}`
      })
      if (Either.isLeft(parsed)) {
        yield* Effect.logWarning("delivery report refused").pipe(
          Effect.annotateLogs({ provider: path.provider, reason: parsed.left.reason })
        )
        return yield* parsed.left.reason === "BadSignature"
          ? new InvalidSignature({ message: parsed.left.message })
          : new MalformedDeliveryReport({ message: parsed.left.message })
      }
      // answer 200 only once JetStream holds the report: the provider retries otherwise
      yield* storeDeliveryReport(path.provider, parsed.right, body).pipe(
        Effect.mapError(unavailable("the delivery report queue"))
      )
      return { stored: true }
    })
  )
)

export const HealthLive = HttpApiBuilder.group(GatewayApi, "health", (handlers) =>
  handlers.handle("health", () => Effect.succeed({ status: "ok" as const }))
)
