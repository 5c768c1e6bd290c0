/**
 * Who may use the console: sign-in with an API key of scope `admin` or `auditor` (checked by the
 * same registry as the API), and the session that follows, which lasts only while its key does: a
 * revoked key ends its sessions as the registry hears of it (its watch; see `clients/Clients.ts`).
 */
import { Context, Data, Effect, Layer, Option } from "effect"
import { parseApiKey } from "../clients/ApiKeys.js"
import { Clients } from "../clients/Clients.js"
import type { NatsError } from "../nats/Nats.js"
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

export class ConsoleAuth extends Context.Tag("sms-gateway/ConsoleAuth")<ConsoleAuth, ConsoleAuthService>() {
  static layer = Layer.effect(
    ConsoleAuth,
    Effect.gen(function* () {
      const clients = yield* Clients
      const sessions = yield* ConsoleSessions
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
            yield* Effect.logInfo("console sign-in").pipe(
              Effect.annotateLogs({ clientId, keyId: principal.value.keyId, scope })
            )
            return signedIn
          }),
        current: (token) =>
          Effect.gen(function* () {
            const session = yield* sessions.find(token)
            if (Option.isNone(session)) return session
            return (yield* clients.keyActive(session.value.keyId)) ? session : Option.none()
          }),
        signOut: (token) => sessions.end(token)
      })
    })
  )
}
