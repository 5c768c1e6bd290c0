/**
 * The HTTP API through its typed client (`HttpApiClient`) on `NodeHttpServer.layerTest`, over the
 * real read models and client registry in a real nats-server and the memory event store.
 */
import { randomUUID } from "node:crypto"
import { HttpApiClient, HttpClient, HttpClientRequest } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import { Clients, type Scope } from "../../src/clients/Clients.js"
import { messageIdFor } from "../../src/domain/Ids.js"
import { SmsRequested } from "../../src/domain/Message.js"
import { PhoneDeactivated } from "../../src/domain/PhoneNumberLifecycle.js"
import { messageStream, phoneStream } from "../../src/domain/StreamName.js"
import { EventStore, ExpectedRevision } from "../../src/eventstore/EventStore.js"
import * as MemoryEventStore from "../../src/eventstore/MemoryEventStore.js"
import { toStored } from "../../src/eventstore/MessageEvents.js"
import { phoneCodec } from "../../src/eventstore/PhoneEvents.js"
import { GatewayApi } from "../../src/http/Api.js"
import { PublicUrl } from "../../src/platform/PublicUrl.js"
import { serveApi } from "../../src/http/Server.js"
import { Nats } from "../../src/nats/Nats.js"
import { ensureStreams } from "../../src/nats/Topology.js"
import { signDeliveryReport } from "../../src/providers/GenericHttp.js"
import { ProvidersFile } from "../../src/providers/ProviderConfig.js"
import { Providers } from "../../src/providers/Providers.js"
import { ReadModels } from "../../src/projections/ReadModels.js"
import { NatsTest } from "../support/nats.js"
import packageJson from "../../package.json" with { type: "json" }

const SECRET = "api-test-secret"
process.env.API_TEST_KEY = "k"
process.env.API_TEST_SECRET = SECRET

const decodeProvidersFileSync = Schema.decodeUnknownSync(ProvidersFile)

const providers = Providers.layer(
  decodeProvidersFileSync({
    providers: [
      {
        id: "sim",
        type: "generic-http",
        baseUrl: "http://127.0.0.1:9",
        apiKeyEnv: "API_TEST_KEY",
        webhookSecretEnv: "API_TEST_SECRET",
        timeoutMs: 1000
      }
    ]
  })
)

const Gateway = serveApi.pipe(
  Layer.provideMerge(NodeHttpServer.layerTest),
  Layer.provideMerge(
    Layer.mergeAll(
      MemoryEventStore.layer,
      providers,
      Layer.succeed(PublicUrl, "http://127.0.0.1"),
      ReadModels.layer,
      Clients.layer,
      Layer.effectDiscard(ensureStreams)
    )
  ),
  Layer.provideMerge(NatsTest)
)

/** A new key of `scope` for `clientId`. */
const keyFor = (clientId: string, scope: Scope = "client") =>
  Effect.flatMap(Clients, (clients) => clients.issueKey({ clientId, scope })).pipe(
    Effect.map(({ apiKey }) => apiKey)
  )

const withKey = (apiKey: string) => HttpClient.mapRequest(HttpClientRequest.setHeader("x-api-key", apiKey))

/** The typed client, sending an auditor's key (or `apiKey`). */
const client = (apiKey?: string) =>
  Effect.gen(function* () {
    const key = apiKey ?? (yield* keyFor("api-auditor", "auditor"))
    return yield* HttpApiClient.make(GatewayApi, { transformClient: withKey(key) })
  })

describe("HTTP API", () => {
  layer(Gateway, { excludeTestServices: true })("typed client", (it) => {
    it.effect("GET /v1/messages/:id of an unknown id fails with MessageNotFound (404)", () =>
      Effect.gen(function* () {
        const api = yield* client()
        const id = messageIdFor("api", randomUUID())
        const error = yield* api.messages.getMessage({ path: { id }, urlParams: {} }).pipe(Effect.flip)
        expect(error._tag).toBe("MessageNotFound")
      })
    )

    it.effect("GET /v1/messages/:id/events answers the stream in order", () =>
      Effect.gen(function* () {
        const api = yield* client()
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
        yield* store.append(messageStream(id), [toStored(requested, 0)], ExpectedRevision.NoStream())
        const { events } = yield* api.messages.getMessageEvents({ path: { id } })
        expect(events.map((e) => [e.type, e.revision])).toEqual([["SmsRequested", 0]])
        expect(events[0]?.data).toMatchObject({ clientId: "api", requestedAt: "2026-11-22T10:00:00.000Z" })
      })
    )

    it.effect("a malformed id is a 400 naming the path field, in the one error shape", () =>
      Effect.gen(function* () {
        const http = (yield* HttpClient.HttpClient).pipe(withKey(yield* keyFor("api-auditor", "auditor")))
        const response = yield* http.execute(HttpClientRequest.get("/v1/messages/not-a-uuid"))
        expect(response.status).toBe(400)
        const body = (yield* response.json) as Record<string, unknown>
        expect(body).toMatchObject({ _tag: "InvalidRequest", field: "id" })
        expect(Object.keys(body).sort()).toEqual(["_tag", "field", "message", "reason"])
      })
    )

    it.effect("read endpoints need a key: none or a wrong one is a 401", () =>
      Effect.gen(function* () {
        const http = yield* HttpClient.HttpClient
        const path = `/v1/messages/${messageIdFor("api", randomUUID())}`
        const none = yield* http.execute(HttpClientRequest.get(path))
        expect(none.status).toBe(401)
        expect(yield* none.json).toMatchObject({ _tag: "Unauthorized" })
        const wrong = yield* http.execute(
          HttpClientRequest.get(path).pipe(
            HttpClientRequest.setHeader("x-api-key", `smsgw_0123456789abcdef.${"x".repeat(43)}`)
          )
        )
        expect(wrong.status).toBe(401)
        const bearer = yield* http.execute(
          HttpClientRequest.get(path).pipe(
            HttpClientRequest.bearerToken(yield* keyFor("api-auditor", "auditor"))
          )
        )
        expect(bearer.status).toBe(404)
      })
    )

    it.effect("a client key reads only its own messages: another client's is a 404, an auditor's a 200", () =>
      Effect.gen(function* () {
        const store = yield* EventStore
        const id = messageIdFor("owner", randomUUID())
        const requested = new SmsRequested({
          messageId: id,
          clientId: "owner",
          idempotencyKey: "k",
          to: "+447911123456",
          body: "hi",
          encoding: "GSM-7",
          segments: 1,
          requestedAt: new Date("2026-11-22T10:00:00Z")
        })
        yield* store.append(messageStream(id), [toStored(requested, 0)], ExpectedRevision.NoStream())
        const owner = yield* client(yield* keyFor("owner"))
        const other = yield* client(yield* keyFor("other"))
        expect((yield* owner.messages.getMessageEvents({ path: { id } })).events).toHaveLength(1)
        const hidden = yield* other.messages.getMessageEvents({ path: { id } }).pipe(Effect.flip)
        expect(hidden._tag).toBe("MessageNotFound")
        expect((yield* (yield* client()).messages.getMessageEvents({ path: { id } })).events).toHaveLength(1)
      })
    )

    it.effect("only an admin key manages clients (403 otherwise); a revoked key is refused at once", () =>
      Effect.gen(function* () {
        const admin = yield* client(yield* keyFor("api-admin", "admin"))
        const auditor = yield* client()
        const refused = yield* auditor.clients.list().pipe(Effect.flip)
        expect(refused._tag).toBe("Forbidden")
        const issued = yield* admin.clients.add({
          payload: { clientId: "api-new", scope: "client", dailyQuota: 5 }
        })
        expect(issued.key).toMatchObject({ clientId: "api-new", scope: "client", dailyQuota: 5 })
        const { keys } = yield* admin.clients.list()
        expect(keys.map((k) => k.keyId)).toContain(issued.key.keyId)
        expect(JSON.stringify(keys)).not.toContain(issued.apiKey.split(".")[1])
        const fresh = yield* client(issued.apiKey)
        expect(yield* fresh.clients.usage({ path: { clientId: "api-new" } })).toMatchObject({
          used: 0,
          dailyQuota: 5
        })
        yield* admin.clients.revoke({ path: { keyId: issued.key.keyId } })
        const after = yield* fresh.clients.usage({ path: { clientId: "api-new" } }).pipe(Effect.flip)
        expect(after._tag).toBe("Unauthorized")
        const http = (yield* HttpClient.HttpClient).pipe(withKey(yield* keyFor("api-admin", "admin")))
        const bad = yield* http.execute(
          HttpClientRequest.post("/v1/clients").pipe(
            HttpClientRequest.bodyText(
              JSON.stringify({ clientId: "no spaces", scope: "client" }),
              "application/json"
            )
          )
        )
        expect(bad.status).toBe(400)
        expect(yield* bad.json).toMatchObject({ _tag: "InvalidRequest", field: "clientId" })
      })
    )

    it.effect("a malformed body is a 400 naming the field; a body that is not JSON names `$`", () =>
      Effect.gen(function* () {
        const http = (yield* HttpClient.HttpClient).pipe(withKey(yield* keyFor("api-sender")))
        const post = (body: string, headers: Record<string, string> = { "idempotency-key": randomUUID() }) =>
          http.execute(
            HttpClientRequest.post("/v1/messages").pipe(
              HttpClientRequest.setHeaders(headers),
              HttpClientRequest.bodyText(body, "application/json")
            )
          )
        const badNumber = yield* post(JSON.stringify({ to: "07911 123456", body: "hi" }))
        expect(badNumber.status).toBe(400)
        expect(yield* badNumber.json).toMatchObject({ _tag: "InvalidRequest", field: "to" })
        const noBody = yield* post(JSON.stringify({ to: "+447911123456" }))
        expect(yield* noBody.json).toMatchObject({
          _tag: "InvalidRequest",
          field: "body",
          reason: "is missing"
        })
        const notJson = yield* post("{nope")
        expect(notJson.status).toBe(400)
        expect(yield* notJson.json).toMatchObject({ _tag: "InvalidRequest", field: "$" })
        const noKey = yield* post(JSON.stringify({ to: "+447911123456", body: "hi" }), {})
        expect(noKey.status).toBe(400)
        expect(yield* noKey.json).toMatchObject({ _tag: "InvalidRequest", field: "idempotency-key" })
      })
    )

    it.effect("an unknown route is a JSON 404; the OpenAPI document lists the API and its key scheme", () =>
      Effect.gen(function* () {
        const http = yield* HttpClient.HttpClient
        const missing = yield* http.execute(HttpClientRequest.get("/v2/nothing"))
        expect(missing.status).toBe(404)
        expect(yield* missing.json).toMatchObject({ _tag: "RouteNotFound" })
        const spec = (yield* (yield* http.execute(HttpClientRequest.get("/openapi.json"))).json) as {
          paths: Record<string, unknown>
          components: { securitySchemes: Record<string, unknown> }
        }
        expect(Object.keys(spec.paths)).toEqual(
          expect.arrayContaining(["/v1/messages", "/v1/messages/{id}", "/v1/clients", "/ready", "/metrics"])
        )
        expect(JSON.stringify(spec.components.securitySchemes)).toContain("X-API-Key")
        const docs = yield* http.execute(HttpClientRequest.get("/docs"))
        expect(docs.status).toBe(200)
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

    it.effect("issue 14, item 8: a body not sent as JSON is a 415 saying so, not a missing field", () =>
      Effect.gen(function* () {
        const http = (yield* HttpClient.HttpClient).pipe(withKey(yield* keyFor("api-admin", "admin")))
        const json = JSON.stringify({ to: "+447911123456", body: "hi" })
        const post = (path: string, contentType: string) =>
          http.execute(
            HttpClientRequest.post(path).pipe(
              HttpClientRequest.setHeader("idempotency-key", randomUUID()),
              HttpClientRequest.bodyText(json, contentType)
            )
          )
        // curl's `-d` default
        const form = yield* post("/v1/messages", "application/x-www-form-urlencoded")
        expect(form.status).toBe(415)
        const body = (yield* form.json) as Record<string, unknown>
        expect(body).toEqual({
          _tag: "UnsupportedMediaType",
          message:
            "content-type: send the body as application/json (this request said application/x-www-form-urlencoded)"
        })
        expect((yield* post("/v1/messages", "text/plain")).status).toBe(415)
        expect((yield* post("/v1/clients", "application/x-www-form-urlencoded")).status).toBe(415)
        // a charset parameter is still JSON
        const withCharset = yield* post("/v1/messages", "application/json; charset=utf-8")
        expect(withCharset.status).toBe(202)
      })
    )

    it.effect(
      "issue 14, item 10: asOf before the message existed says so; another client's stays a plain 404",
      () =>
        Effect.gen(function* () {
          const store = yield* EventStore
          const id = messageIdFor("api-asof", randomUUID())
          const requested = new SmsRequested({
            messageId: id,
            clientId: "api-asof",
            idempotencyKey: "k",
            to: "+447911123456",
            body: "hi",
            encoding: "GSM-7",
            segments: 1,
            requestedAt: new Date()
          })
          yield* store.append(messageStream(id), [toStored(requested, 0)], ExpectedRevision.NoStream())
          const [recorded] = yield* store.read(messageStream(id))
          const api = yield* client()
          const before = new Date("2026-01-01T00:00:00Z")
          const early = yield* api.messages
            .getMessage({ path: { id }, urlParams: { asOf: before } })
            .pipe(Effect.flip)
          expect(early._tag).toBe("MessageNotFound")
          expect(early.message).toBe(
            `message ${id} did not exist yet at 2026-01-01T00:00:00.000Z: it was first recorded at ${recorded?.recordedAt.toISOString()}`
          )
          expect(early).toMatchObject({ firstRecordedAt: recorded?.recordedAt.toISOString() })
          const later = yield* api.messages.getMessage({
            path: { id },
            urlParams: { asOf: new Date(Date.now() + 60_000) }
          })
          expect(later.status).toBe("requested")
          // a client must not learn that someone else's message exists, nor when
          const stranger = yield* client(yield* keyFor("api-stranger"))
          const hidden = yield* stranger.messages
            .getMessage({ path: { id }, urlParams: { asOf: before } })
            .pipe(Effect.flip)
          expect(hidden.message).toBe(`no message ${id}`)
          expect(hidden).not.toHaveProperty("firstRecordedAt")
        })
    )

    it.effect(
      "issue 14, item 11: reactivate answers the number's history; a never-seen number has no since/reason",
      () =>
        Effect.gen(function* () {
          const store = yield* EventStore
          const number = `+4479111${String(Math.floor(Math.random() * 1e5)).padStart(5, "0")}`
          const deactivated = new PhoneDeactivated({
            number,
            reason: "invalid_number",
            source: { kind: "provider_answer", messageId: "m-1", provider: "sim", code: "invalid_number" },
            deactivatedAt: new Date("2026-11-22T10:00:00Z")
          })
          yield* store.append(
            phoneStream(number),
            phoneCodec.toStoredFrom([deactivated], 0),
            ExpectedRevision.NoStream()
          )
          const http = (yield* HttpClient.HttpClient).pipe(withKey(yield* keyFor("api-admin", "admin")))
          const response = yield* http.execute(
            HttpClientRequest.post(`/v1/phone-numbers/${number.slice(1)}/reactivate`).pipe(
              HttpClientRequest.bodyText(JSON.stringify({ reason: "customer confirmed" }), "application/json")
            )
          )
          expect(response.status).toBe(200)
          const view = (yield* response.json) as {
            status: string
            reason: string
            history: Array<{ event: string; by?: string }>
            position: number
          }
          const recorded = yield* store.read(phoneStream(number))
          expect(view.status).toBe("active")
          expect(view.reason).toBe("customer confirmed")
          expect(view.history.map((h) => h.event)).toEqual(["PhoneDeactivated", "PhoneReactivated"])
          expect(view.history[1]?.by).toBe("api-admin")
          expect(view.position).toBe(recorded[1]?.position)

          const unseen = yield* http.execute(HttpClientRequest.get("/v1/phone-numbers/14155552671"))
          expect(yield* unseen.json).toEqual({
            number: "+14155552671",
            status: "active",
            history: [],
            position: 0
          })
        })
    )

    it.effect(
      "issue 14, item 14: the OpenAPI document has summaries, the package version, no internal schemas",
      () =>
        Effect.gen(function* () {
          const http = yield* HttpClient.HttpClient
          const spec = (yield* (yield* http.execute(HttpClientRequest.get("/openapi.json"))).json) as {
            info: { version: string }
            tags: Array<{ name: string; description?: string }>
            paths: Record<
              string,
              Record<string, { summary?: string; description?: string; responses: object }>
            >
            components: { schemas: Record<string, unknown> }
          }
          expect(spec.info.version).toBe(packageJson.version)
          const operations = Object.entries(spec.paths).flatMap(([path, methods]) =>
            Object.entries(methods).map(([method, op]) => ({ at: `${method} ${path}`, ...op }))
          )
          expect(operations.length).toBe(13)
          for (const op of operations) {
            expect(op.summary, op.at).toMatch(/\S/)
            expect(op.description, op.at).toMatch(/\S/)
          }
          for (const tag of spec.tags) expect(tag.description, tag.name).toMatch(/\S/)
          const text = JSON.stringify(spec)
          for (const internal of ["HttpApiDecodeError", "Issue", "PropertyKey"]) {
            expect(Object.keys(spec.components.schemas)).not.toContain(internal)
            expect(text).not.toContain(`#/components/schemas/${internal}"`)
          }
          const send = spec.paths["/v1/messages"]?.post?.responses as Record<string, unknown>
          expect(Object.keys(send)).toEqual(expect.arrayContaining(["202", "400", "415"]))
        })
    )

    it.effect("GET /health, and GET /ready reports NATS and the store reachable (no key needed)", () =>
      Effect.gen(function* () {
        const api = yield* HttpApiClient.make(GatewayApi)
        expect(yield* api.health.health()).toEqual({ status: "ok" })
        const ready = yield* api.health.ready()
        expect(ready.status).toBe("ready")
        expect(ready.checks.nats.ok).toBe(true)
        expect(ready.checks.eventStore.ok).toBe(true)
      })
    )
  })
})
