/**
 * The HTTP API through its typed client (`HttpApiClient`) on `NodeHttpServer.layerTest`, over the
 * real read models in a real nats-server and the memory event store.
 */
import { randomUUID } from "node:crypto"
import { HttpApiClient, HttpClient, HttpClientRequest } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { messageIdFor } from "../../src/domain/Ids.js"
import { SmsRequested } from "../../src/domain/Message.js"
import { messageStream } from "../../src/domain/StreamName.js"
import { EventStore, ExpectedRevision } from "../../src/eventstore/EventStore.js"
import * as MemoryEventStore from "../../src/eventstore/MemoryEventStore.js"
import { toStored } from "../../src/eventstore/MessageEvents.js"
import { GatewayApi } from "../../src/http/Api.js"
import { PublicUrl } from "../../src/http/PublicUrl.js"
import { serveApi } from "../../src/http/Server.js"
import { Nats } from "../../src/nats/Nats.js"
import { ensureStreams } from "../../src/nats/Topology.js"
import { signDeliveryReport } from "../../src/providers/GenericHttp.js"
import { Providers } from "../../src/providers/Providers.js"
import { ReadModels } from "../../src/projections/ReadModels.js"
import { NatsTest } from "../support/nats.js"

const SECRET = "api-test-secret"
process.env.API_TEST_KEY = "k"
process.env.API_TEST_SECRET = SECRET

const providers = Providers.layer({
  providers: [
    {
      id: "sim" as never,
      type: "generic-http",
      baseUrl: "http://127.0.0.1:9",
      apiKeyEnv: "API_TEST_KEY",
      webhookSecretEnv: "API_TEST_SECRET",
      priority: 0,
      concurrency: 1,
      timeoutMs: 1000
    }
  ]
})

const Gateway = serveApi.pipe(
  Layer.provideMerge(NodeHttpServer.layerTest),
  Layer.provideMerge(
    Layer.mergeAll(
      MemoryEventStore.layer,
      providers,
      Layer.succeed(PublicUrl, "http://127.0.0.1"),
      ReadModels.layer,
      Layer.effectDiscard(ensureStreams)
    )
  ),
  Layer.provideMerge(NatsTest)
)

const client = HttpApiClient.make(GatewayApi)

describe("HTTP API", () => {
  layer(Gateway, { excludeTestServices: true })("typed client", (it) => {
    it.effect("GET /v1/messages/:id of an unknown id fails with MessageNotFound (404)", () =>
      Effect.gen(function* () {
        const api = yield* client
        const id = messageIdFor("api", randomUUID())
        const error = yield* api.messages.getMessage({ path: { id } }).pipe(Effect.flip)
        expect(error._tag).toBe("MessageNotFound")
      })
    )

    it.effect("GET /v1/messages/:id/events answers the stream in order", () =>
      Effect.gen(function* () {
        const api = yield* client
        const store = yield* EventStore
        const id = messageIdFor("api", randomUUID())
        const requested = new SmsRequested({
          messageId: id,
          clientId: "api",
          idempotencyKey: "k",
          to: "+447911123456",
          body: "hi",
          encoding: "GSM-7",
          segments: 1,
          requestedAt: new Date("2026-11-22T10:00:00Z")
        })
        yield* store.append(messageStream(id), [toStored(requested)], ExpectedRevision.NoStream())
        const { events } = yield* api.messages.getMessageEvents({ path: { id } })
        expect(events.map((e) => [e.type, e.revision])).toEqual([["SmsRequested", 0]])
        expect(events[0]?.data).toMatchObject({ clientId: "api", requestedAt: "2026-11-22T10:00:00.000Z" })
      })
    )

    it.effect("a malformed id is a 400 naming the path field", () =>
      Effect.gen(function* () {
        const http = yield* HttpClient.HttpClient
        const response = yield* http.execute(HttpClientRequest.get("/v1/messages/not-a-uuid"))
        expect(response.status).toBe(400)
        const body = (yield* response.json) as {
          _tag: string
          issues: ReadonlyArray<{ path: ReadonlyArray<string> }>
        }
        expect(body._tag).toBe("HttpApiDecodeError")
        expect(body.issues[0]?.path).toEqual(["id"])
      })
    )

    it.effect("a signed delivery report is stored (200); a forged one is refused (401) and not stored", () =>
      Effect.gen(function* () {
        const http = yield* HttpClient.HttpClient
        const now = Math.floor(Date.now() / 1000)
        const body = JSON.stringify({
          messageId: "sim-1",
          reference: "r",
          status: "delivered",
          timestamp: "2026-11-22T10:00:00Z"
        })
        const post = (signature: string) =>
          http.execute(
            HttpClientRequest.post("/v1/providers/sim/delivery-reports").pipe(
              HttpClientRequest.setHeaders({
                "x-signature": signature,
                "x-signature-timestamp": String(now)
              }),
              HttpClientRequest.bodyText(body, "application/json")
            )
          )
        const { jsm } = yield* Nats
        const stored = Effect.promise(() => jsm.streams.info("SMS_DLR")).pipe(
          Effect.map((i) => i.state.messages)
        )
        const before = yield* stored
        const accepted = yield* post(signDeliveryReport(SECRET, body, now))
        expect(accepted.status).toBe(200)
        expect(yield* accepted.json).toEqual({ stored: true })
        expect(yield* stored).toBe(before + 1)
        const forged = yield* post(signDeliveryReport("not-the-secret", body, now))
        expect(forged.status).toBe(401)
        expect(((yield* forged.json) as { _tag: string })._tag).toBe("InvalidSignature")
        expect(yield* stored).toBe(before + 1)
      })
    )

    it.effect("GET /health", () =>
      Effect.gen(function* () {
        const api = yield* client
        expect(yield* api.health.health()).toEqual({ status: "ok" })
      })
    )
  })
})
