/**
 * Who may use the console: sign-in with an API key of scope `admin` or `auditor` (checked by the
 * same registry as the API), and the session that follows, which lasts only while its key does: a
 * revoked key ends its sessions within the registry's cache time (`CLIENTS_CACHE_TTL_MS`, 5 s).
 */
import { type KV, Kvm } from "@nats-io/kv"
import { Clock, Context, Data, Effect, Layer, Option, Schema } from "effect"
import { parseApiKey } from "../clients/ApiKeys.js"
import { CLIENTS_BUCKET, Clients, KeyRecord } from "../clients/Clients.js"
import { Nats, NatsError, natsRequest } from "../nats/Nats.js"
import { ConsoleSessions, type Session } from "./Sessions.js"

export class SignInRefused extends Data.TaggedError("SignInRefused")<{
  readonly reason: "unknown_key" | "client_scope"
  readonly message: string
}> {}

export interface ConsoleAuthService {
  readonly signIn: (
    apiKey: string
  ) => Effect.Effect<{ readonly token: string; readonly session: Session }, SignInRefused | NatsError>
  /** the signed-in session of `token`: unknown, expired, or whose key was revoked, is none */
  readonly current: (token: string) => Effect.Effect<Option.Option<Session>, NatsError>
  readonly signOut: (token: string) => Effect.Effect<void, NatsError>
}

const decodeKey = Schema.decodeUnknownOption(Schema.parseJson(KeyRecord))

const cacheTtlMs = () => {
  const configured = Number(process.env.CLIENTS_CACHE_TTL_MS ?? 5000)
  return Number.isFinite(configured) && configured >= 0 ? configured : 5000
}

export class ConsoleAuth extends Context.Tag("sms-gateway/ConsoleAuth")<ConsoleAuth, ConsoleAuthService>() {
  static layer = Layer.effect(
    ConsoleAuth,
    Effect.gen(function* () {
      const clients = yield* Clients
      const sessions = yield* ConsoleSessions
      const { js } = yield* Nats
      // the registry's bucket, read by key id: a session knows its key's id, never its secret
      const registry: KV = yield* natsRequest(`cannot open KV bucket ${CLIENTS_BUCKET}`, () =>
        new Kvm(js).open(CLIENTS_BUCKET)
      )
      const ttlMs = cacheTtlMs()
      const checked = new Map<string, { readonly active: boolean; readonly until: number }>()
      const keyActive = (keyId: string) =>
        Effect.gen(function* () {
          const now = yield* Clock.currentTimeMillis
          const hit = checked.get(keyId)
          if (hit !== undefined && hit.until > now) return hit.active
          const entry = yield* natsRequest("cannot read a key", () => registry.get(`keys.${keyId}`))
          const record =
            entry === null || entry.operation !== "PUT" ? Option.none() : decodeKey(entry.string())
          const active = Option.isSome(record) && record.value.revokedAt === undefined
          if (checked.size > 1000) checked.clear()
          checked.set(keyId, { active, until: now + ttlMs })
          return active
        })

      return ConsoleAuth.of({
        signIn: (apiKey) =>
          Effect.gen(function* () {
            const principal = yield* clients.authenticate(apiKey.trim())
            // the key id is public (it names the key in listings); the secret is never logged
            const keyId = parseApiKey(apiKey)?.keyId
            if (Option.isNone(principal)) {
              yield* Effect.logWarning("console sign-in refused").pipe(
                Effect.annotateLogs({ reason: "unknown or revoked key", ...(keyId ? { keyId } : {}) })
              )
              return yield* new SignInRefused({
                reason: "unknown_key",
                message: "unknown or revoked API key"
              })
            }
            const { scope, clientId } = principal.value
            if (scope === "client") {
              yield* Effect.logWarning("console sign-in refused").pipe(
                Effect.annotateLogs({ reason: "client key", clientId, keyId: principal.value.keyId })
              )
              return yield* new SignInRefused({
                reason: "client_scope",
                message: "a client key cannot sign in to the console: use an admin or auditor key"
              })
            }
            const signedIn = yield* sessions.create({ keyId: principal.value.keyId, clientId, scope })
            checked.set(principal.value.keyId, {
              active: true,
              until: (yield* Clock.currentTimeMillis) + ttlMs
            })
            yield* Effect.logInfo("console sign-in").pipe(
              Effect.annotateLogs({ clientId, keyId: principal.value.keyId, scope })
            )
            return signedIn
          }),
        current: (token) =>
          Effect.gen(function* () {
            const session = yield* sessions.find(token)
            if (Option.isNone(session)) return session
            return (yield* keyActive(session.value.keyId)) ? session : Option.none()
          }),
        signOut: (token) => sessions.end(token)
      })
    })
  )
}
