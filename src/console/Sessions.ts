/**
 * Console sessions: who signed in, with which key, until when, and the session's CSRF token.
 *
 * The browser holds only a random token (32 bytes) in an HttpOnly cookie; the store keeps the
 * session under the token's SHA-256, so reading the store does not give anyone a session. Sessions
 * live in KV (`sms_console_sessions`, entries expire with the bucket's max age) so that every HTTP
 * process behind a load balancer knows them, and signing out on one ends it on all.
 */
import { createHash, randomBytes } from "node:crypto"
import { StorageType } from "@nats-io/jetstream"
import { type KV, Kvm } from "@nats-io/kv"
import { Clock, Context, Effect, Layer, Option, Schema } from "effect"
import { Nats, NatsError, natsRequest } from "../nats/Nats.js"

export const SESSIONS_BUCKET = "sms_console_sessions"

/** Scopes that may sign in: a `client` key sends messages, it does not operate the gateway. */
export const ConsoleScope = Schema.Literal("admin", "auditor")
export type ConsoleScope = typeof ConsoleScope.Type

export const Session = Schema.Struct({
  keyId: Schema.String,
  clientId: Schema.String,
  scope: ConsoleScope,
  /** the synchronizer token every state-changing form of this session must carry */
  csrf: Schema.String,
  createdAt: Schema.Number,
  expiresAt: Schema.Number
})
export type Session = typeof Session.Type

export interface SignedInAs {
  readonly keyId: string
  readonly clientId: string
  readonly scope: ConsoleScope
}

export interface ConsoleSessionsService {
  /** how long a session lasts from sign-in (not extended by use) */
  readonly lifetimeMs: number
  readonly create: (
    who: SignedInAs
  ) => Effect.Effect<{ readonly token: string; readonly session: Session }, NatsError>
  /** the session of `token`, if it exists and has not expired */
  readonly find: (token: string) => Effect.Effect<Option.Option<Session>, NatsError>
  readonly end: (token: string) => Effect.Effect<void, NatsError>
}

const DEFAULT_LIFETIME_MS = 8 * 60 * 60 * 1000

/** `CONSOLE_SESSION_TTL_MS` (default 8 hours, at least a minute). */
export const sessionLifetimeMs = (env: NodeJS.ProcessEnv = process.env): number => {
  const value = Number(env.CONSOLE_SESSION_TTL_MS)
  return Number.isInteger(value) && value >= 60_000 ? value : DEFAULT_LIFETIME_MS
}

export const newToken = () => randomBytes(32).toString("base64url")

/** The key a session is stored under: the token itself is never stored. */
export const sessionKey = (token: string) => createHash("sha256").update(token).digest("hex")

/** Tokens are 43 base64url characters; anything else is not looked up. */
const isToken = (token: string) => /^[A-Za-z0-9_-]{43}$/.test(token)

const encode = Schema.encodeSync(Schema.parseJson(Session))
const decode = Schema.decodeUnknownOption(Schema.parseJson(Session))

/** The service over a place to put, get and delete sessions by key. */
const make = (
  lifetimeMs: number,
  storage: {
    readonly put: (key: string, value: string) => Effect.Effect<void, NatsError>
    readonly get: (key: string) => Effect.Effect<string | undefined, NatsError>
    readonly remove: (key: string) => Effect.Effect<void, NatsError>
  }
): ConsoleSessionsService => ({
  lifetimeMs,
  create: (who) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const token = newToken()
      const session: Session = {
        keyId: who.keyId,
        clientId: who.clientId,
        scope: who.scope,
        csrf: newToken(),
        createdAt: now,
        expiresAt: now + lifetimeMs
      }
      yield* storage.put(sessionKey(token), encode(session))
      return { token, session }
    }),
  find: (token) =>
    Effect.gen(function* () {
      if (!isToken(token)) return Option.none()
      const stored = yield* storage.get(sessionKey(token))
      const session = stored === undefined ? Option.none() : decode(stored)
      const now = yield* Clock.currentTimeMillis
      return Option.filter(session, (s) => s.expiresAt > now)
    }),
  end: (token) => (isToken(token) ? storage.remove(sessionKey(token)) : Effect.void)
})

export class ConsoleSessions extends Context.Tag("sms-gateway/ConsoleSessions")<
  ConsoleSessions,
  ConsoleSessionsService
>() {
  /** In KV `sms_console_sessions` (created when missing, entries kept for the session lifetime). */
  static layer = Layer.effect(
    ConsoleSessions,
    Effect.gen(function* () {
      const { js, replicas } = yield* Nats
      const lifetimeMs = sessionLifetimeMs()
      const kv: KV = yield* natsRequest(`cannot open KV bucket ${SESSIONS_BUCKET}`, () =>
        new Kvm(js).create(SESSIONS_BUCKET, {
          history: 1,
          storage: StorageType.File,
          replicas,
          ttl: lifetimeMs
        })
      )
      return make(lifetimeMs, {
        put: (key, value) =>
          Effect.asVoid(natsRequest("cannot store a console session", () => kv.put(key, value))),
        get: (key) =>
          Effect.map(
            natsRequest("cannot read a console session", () => kv.get(key)),
            (entry) => (entry === null || entry.operation !== "PUT" ? undefined : entry.string())
          ),
        // a purge leaves no value behind: the session is gone, not only marked deleted
        remove: (key) => Effect.asVoid(natsRequest("cannot end a console session", () => kv.purge(key)))
      })
    })
  )

  /** In this process only: for tests. */
  static layerMemory = Layer.sync(ConsoleSessions, () => {
    const entries = new Map<string, string>()
    return make(sessionLifetimeMs(), {
      put: (key, value) => Effect.sync(() => void entries.set(key, value)),
      get: (key) => Effect.sync(() => entries.get(key)),
      remove: (key) => Effect.sync(() => void entries.delete(key))
    })
  })
}
