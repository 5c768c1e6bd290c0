/**
 * The client registry (KV `sms_clients`): who may call the HTTP API, with which scope, and each
 * client's daily quota.
 *
 * - `clients.<clientId>`: `{clientId, dailyQuota?, createdAt, updatedAt}`; no `dailyQuota` = unlimited
 * - `keys.<keyId>`: `{keyId, clientId, scope, salt, hash, createdAt, revokedAt?}`: one client per key,
 *   a client may hold several keys (rotation). Only the salted hash of a key is stored.
 *
 * Scopes: `client` sends and reads its own messages; `auditor` reads everything; `admin` also manages
 * clients. Lookups are cached per process, and each process watches the registry: a revocation or a
 * quota change drops the cached record in every process as the change is stored, and
 * `CLIENTS_CACHE_TTL_MS` (default 5 s) bounds a record's life should a watch fall behind.
 *
 * The records are documents (`platform/Documents.ts`): KV in a gateway, memory in a unit test.
 *
 * Its size (over 400 lines) is the registry's records, their codecs and their conditional writes: the
 * key and the client documents change together.
 */
import { Kvm, type KV } from "@nats-io/kv"
import { StorageType } from "@nats-io/jetstream"
import { Clock, Context, Data, Effect, Layer, Option, Schema } from "effect"
import { kvDocumentStore } from "../nats/KvDocumentStore.js"
import { Nats, NatsError, natsRequest } from "../nats/Nats.js"
import type { Documents } from "../platform/Documents.js"
import { generateApiKey, hashSecret, parseApiKey, verifySecret } from "./ApiKeys.js"
import * as Quotas from "./Quotas.js"

export const CLIENTS_BUCKET = "sms_clients"

export const Scope = Schema.Literal("client", "auditor", "admin")
export type Scope = typeof Scope.Type

/** Registered client ids: a KV token, so `<clientId>.<yyyy-mm-dd>` stays unambiguous. */
export const ClientId = Schema.String.pipe(
  Schema.pattern(/^[A-Za-z0-9_-]{1,64}$/, {
    message: () => "client ids are 1-64 of letters, digits, '_' and '-'"
  })
)

export const DailyQuota = Schema.Int.pipe(
  Schema.between(0, 1_000_000_000, { message: () => "must be a whole number from 0 to 1000000000" })
)

export const ClientRecord = Schema.Struct({
  clientId: Schema.String,
  dailyQuota: Schema.optional(Schema.Number),
  createdAt: Schema.String,
  updatedAt: Schema.String
})
export type ClientRecord = typeof ClientRecord.Type

export const KeyRecord = Schema.Struct({
  keyId: Schema.String,
  clientId: Schema.String,
  scope: Scope,
  salt: Schema.String,
  hash: Schema.String,
  createdAt: Schema.String,
  revokedAt: Schema.optional(Schema.String)
})
export type KeyRecord = typeof KeyRecord.Type

/** Who is calling: what the HTTP handlers see of an authenticated key. */
export interface Principal {
  readonly keyId: string
  readonly clientId: string
  readonly scope: Scope
}

/** A key as listed: never its hash. */
export interface KeyView {
  readonly keyId: string
  readonly clientId: string
  readonly scope: Scope
  readonly dailyQuota: number | undefined
  readonly createdAt: string
  readonly revokedAt: string | undefined
}

export class InvalidClient extends Data.TaggedError("InvalidClient")<{
  readonly field: string
  readonly reason: string
}> {
  override get message() {
    return `${this.field}: ${this.reason}`
  }
}

export interface IssueKey {
  readonly clientId: string
  readonly scope: Scope
  /** set the client's daily quota; `null` removes it (unlimited); absent keeps what is stored */
  readonly dailyQuota?: number | null
}

export interface ClientsService {
  /** the key's principal, or none for an unknown, malformed or revoked key */
  readonly authenticate: (apiKey: string) => Effect.Effect<Option.Option<Principal>, NatsError>
  /** creates the client if needed and a new key for it; the full key is only in this answer */
  readonly issueKey: (
    input: IssueKey
  ) => Effect.Effect<{ readonly apiKey: string; readonly key: KeyView }, NatsError | InvalidClient>
  /**
   * Registers a key made elsewhere (e.g. held in a secret store, see `ClientsFile`): only its hash is
   * stored. Idempotent for the same key; a different key under the same key id is refused.
   */
  readonly importKey: (
    input: IssueKey & { readonly apiKey: string }
  ) => Effect.Effect<KeyView, NatsError | InvalidClient>
  readonly list: Effect.Effect<ReadonlyArray<KeyView>, NatsError>
  /** sets (a number) or removes (`null`/`undefined`: unlimited) a client's daily quota, creating the client */
  readonly setQuota: (
    clientId: string,
    dailyQuota: number | null | undefined
  ) => Effect.Effect<ClientRecord, NatsError | InvalidClient>
  /** whether the key of `keyId` exists and is not revoked (a console session lasts while it is) */
  readonly keyActive: (keyId: string) => Effect.Effect<boolean, NatsError>
  /** false when no such key exists; revoking twice keeps the first time */
  readonly revoke: (keyId: string) => Effect.Effect<boolean, NatsError>
  readonly client: (clientId: string) => Effect.Effect<Option.Option<ClientRecord>, NatsError>
  /** true when no key was ever issued */
  readonly isEmpty: Effect.Effect<boolean, NatsError>
  /** charges a message to its client's daily quota (see `Quotas.charge`); unregistered clients are unlimited */
  readonly charge: (clientId: string, messageId: string) => Effect.Effect<Quotas.Charge, NatsError>
  /** charges a batch of one client's messages with one compare-and-set (see `Quotas.chargeMany`) */
  readonly chargeMany: (
    clientId: string,
    messageIds: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyArray<Quotas.Charge>, NatsError>
  readonly usage: (clientId: string) => Effect.Effect<number, NatsError>
}

const decodeClient = Schema.decodeUnknownOption(Schema.parseJson(ClientRecord))
const encodeClient = Schema.encodeSync(Schema.parseJson(ClientRecord))
const decodeKey = Schema.decodeUnknownOption(Schema.parseJson(KeyRecord))
const encodeKey = Schema.encodeSync(Schema.parseJson(KeyRecord))
const validClientId = Schema.is(ClientId)

const CLIENT_PREFIX = "clients."
const KEY_PREFIX = "keys."
const clientKey = (clientId: string) => `${CLIENT_PREFIX}${clientId}`
const keyKey = (keyId: string) => `${KEY_PREFIX}${keyId}`
/** a key id as `generateApiKey` makes it: anything else names no key */
const isKeyId = (keyId: string) => /^[0-9a-f]{16}$/.test(keyId)

const openBucket = (name: string, ttl?: number) =>
  Effect.flatMap(Nats, ({ js, publish, replicas }) =>
    natsRequest(
      `cannot open KV bucket ${name}`,
      (): Promise<KV> =>
        new Kvm(js).create(name, { history: 1, storage: StorageType.File, replicas, ...(ttl ? { ttl } : {}) })
    ).pipe(Effect.map((kv) => kvDocumentStore(kv, publish)))
  )

const cacheTtlMs = () => {
  const configured = Number(process.env.CLIENTS_CACHE_TTL_MS ?? 5000)
  return Number.isFinite(configured) && configured >= 0 ? configured : 5000
}

interface Cached<A> {
  readonly value: A
  readonly until: number
}

/** The registry's stores: its own documents and the quotas'. */
export interface ClientStores {
  readonly registry: Documents
  readonly quotas: Quotas.QuotaStores
}

/**
 * The registry over `stores`, with its cache; `forget` drops a cached record whose document changed
 * (the layer calls it from the registry's watch).
 */
export const makeClients = (
  stores: ClientStores,
  ttlMs: number
): ClientsService & { readonly forget: (documentKey: string) => void } => {
  const { registry, quotas } = stores
  const clients = new Map<string, Cached<Option.Option<ClientRecord>>>()
  const keys = new Map<string, Cached<KeyRecord>>()

  const readJson = <A>(key: string, decode: (s: string) => Option.Option<A>) =>
    natsRequest(`cannot read ${key}`, () => registry.get(key)).pipe(
      Effect.map((document) =>
        document === undefined
          ? Option.none()
          : Option.map(decode(document.value), (value) => ({ value, revision: document.revision }))
      )
    )

  const cached = <A>(
    map: Map<string, Cached<A>>,
    key: string,
    load: Effect.Effect<Option.Option<A>, NatsError>
  ) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const hit = map.get(key)
      if (hit !== undefined && hit.until > now) return Option.some(hit.value)
      const loaded = yield* load
      if (Option.isSome(loaded) && ttlMs > 0) {
        if (map.size > 10_000) map.clear()
        map.set(key, { value: loaded.value, until: now + ttlMs })
      }
      return loaded
    })

  const client = (clientId: string): Effect.Effect<Option.Option<ClientRecord>, NatsError> =>
    validClientId(clientId)
      ? Effect.map(
          cached(
            clients,
            clientId,
            // an absent client is cached too: the intake asks for every command's client id
            Effect.map(readJson(clientKey(clientId), decodeClient), (found) =>
              Option.some(Option.map(found, ({ value }) => value))
            )
          ),
          Option.flatten
        )
      : Effect.succeed(Option.none())

  const keyRecord = (keyId: string) =>
    cached(
      keys,
      keyId,
      Effect.map(
        readJson(keyKey(keyId), decodeKey),
        Option.map(({ value }) => value)
      )
    )

  const authenticate = (apiKey: string) =>
    Effect.gen(function* () {
      const parsed = parseApiKey(apiKey)
      if (parsed === undefined) return Option.none<Principal>()
      const record = yield* keyRecord(parsed.keyId)
      if (Option.isNone(record)) return Option.none<Principal>()
      const key = record.value
      if (key.revokedAt !== undefined || !verifySecret(parsed.secret, key)) return Option.none<Principal>()
      return Option.some<Principal>({ keyId: key.keyId, clientId: key.clientId, scope: key.scope })
    })

  /** writes the client document, retrying on concurrent changes */
  const upsertClient = (clientId: string, dailyQuota: number | null | undefined, at: string) =>
    Effect.gen(function* () {
      for (let attempt = 0; attempt < 20; attempt++) {
        const existing = yield* readJson(clientKey(clientId), decodeClient)
        const before = Option.getOrUndefined(existing)
        const quota = dailyQuota === undefined ? before?.value.dailyQuota : (dailyQuota ?? undefined)
        const next: ClientRecord = {
          clientId,
          createdAt: before?.value.createdAt ?? at,
          updatedAt: at,
          ...(quota === undefined ? {} : { dailyQuota: quota })
        }
        const written = yield* natsRequest("cannot write client", () =>
          registry.put(clientKey(clientId), encodeClient(next), before?.revision)
        ).pipe(Effect.option)
        if (Option.isSome(written)) {
          clients.delete(clientId)
          return next
        }
      }
      return yield* new NatsError({
        reason: "RequestFailed",
        message: `client ${clientId} keeps conflicting`
      })
    })

  const validate = (input: IssueKey) =>
    Effect.gen(function* () {
      if (!validClientId(input.clientId)) {
        return yield* new InvalidClient({
          field: "clientId",
          reason: "client ids are 1-64 of letters, digits, '_' and '-'"
        })
      }
      if (!Schema.is(Scope)(input.scope)) {
        return yield* new InvalidClient({ field: "scope", reason: "must be client, auditor or admin" })
      }
      if (
        input.dailyQuota !== undefined &&
        input.dailyQuota !== null &&
        !Schema.is(DailyQuota)(input.dailyQuota)
      ) {
        return yield* new InvalidClient({
          field: "dailyQuota",
          reason: "must be a whole number from 0 to 1000000000"
        })
      }
    })

  const issueKey = (input: IssueKey) =>
    Effect.gen(function* () {
      yield* validate(input)
      const at = new Date(yield* Clock.currentTimeMillis).toISOString()
      const stored = yield* upsertClient(input.clientId, input.dailyQuota, at)
      const generated = generateApiKey()
      const record: KeyRecord = {
        keyId: generated.keyId,
        clientId: input.clientId,
        scope: input.scope,
        salt: generated.salt,
        hash: generated.hash,
        createdAt: at
      }
      yield* natsRequest("cannot store key", () =>
        registry.put(keyKey(record.keyId), encodeKey(record), undefined)
      )
      return { apiKey: generated.apiKey, key: viewOf(record, stored) }
    })

  const importKey = (input: IssueKey & { readonly apiKey: string }) =>
    Effect.gen(function* () {
      yield* validate(input)
      const parsed = parseApiKey(input.apiKey)
      if (parsed === undefined) {
        return yield* new InvalidClient({
          field: "apiKey",
          reason: "is not a key made by `sms-gateway clients add`"
        })
      }
      const at = new Date(yield* Clock.currentTimeMillis).toISOString()
      const stored = yield* upsertClient(input.clientId, input.dailyQuota, at)
      const existing = yield* readJson(keyKey(parsed.keyId), decodeKey)
      if (Option.isSome(existing)) {
        const key = existing.value.value
        if (
          !verifySecret(parsed.secret, key) ||
          key.clientId !== input.clientId ||
          key.scope !== input.scope
        ) {
          return yield* new InvalidClient({
            field: "apiKey",
            reason: `key ${parsed.keyId} is registered already with another secret, client or scope`
          })
        }
        return viewOf(key, stored)
      }
      const record: KeyRecord = {
        keyId: parsed.keyId,
        clientId: input.clientId,
        scope: input.scope,
        ...hashSecret(parsed.secret),
        createdAt: at
      }
      yield* natsRequest("cannot store key", () =>
        registry.put(keyKey(record.keyId), encodeKey(record), undefined)
      )
      return viewOf(record, stored)
    })

  const viewOf = (key: KeyRecord, owner: ClientRecord | undefined): KeyView => ({
    keyId: key.keyId,
    clientId: key.clientId,
    scope: key.scope,
    dailyQuota: owner?.dailyQuota,
    createdAt: key.createdAt,
    revokedAt: key.revokedAt
  })

  const keyNames = natsRequest("cannot list clients", () => registry.keys(KEY_PREFIX))

  const list = Effect.gen(function* () {
    const names = yield* keyNames
    const records = yield* Effect.forEach(names, (name) => readJson(name, decodeKey), { concurrency: 16 })
    const views: Array<KeyView> = []
    for (const found of records) {
      if (Option.isNone(found)) continue
      const owner = yield* readJson(clientKey(found.value.value.clientId), decodeClient)
      views.push(viewOf(found.value.value, Option.getOrUndefined(Option.map(owner, ({ value }) => value))))
    }
    return views.sort(
      (a, b) => a.clientId.localeCompare(b.clientId) || a.createdAt.localeCompare(b.createdAt)
    )
  })

  const revoke = (keyId: string) =>
    Effect.gen(function* () {
      if (!isKeyId(keyId)) return false
      for (let attempt = 0; attempt < 20; attempt++) {
        const found = yield* readJson(keyKey(keyId), decodeKey)
        if (Option.isNone(found)) return false
        keys.delete(keyId)
        if (found.value.value.revokedAt !== undefined) return true
        const at = new Date(yield* Clock.currentTimeMillis).toISOString()
        const written = yield* natsRequest("cannot revoke key", () =>
          registry.put(
            keyKey(keyId),
            encodeKey({ ...found.value.value, revokedAt: at }),
            found.value.revision
          )
        ).pipe(Effect.option)
        if (Option.isSome(written)) return true
      }
      return yield* new NatsError({ reason: "RequestFailed", message: `key ${keyId} keeps conflicting` })
    })

  const charge = (clientId: string, messageId: string) =>
    Effect.gen(function* () {
      const owner = yield* client(clientId)
      const limit = Option.getOrUndefined(owner)?.dailyQuota
      if (limit === undefined) return Quotas.Charge.Unlimited()
      const now = yield* Clock.currentTimeMillis
      return yield* Quotas.charge(quotas, { clientId, messageId, limit, now })
    })

  const chargeMany = (clientId: string, messageIds: ReadonlyArray<string>) =>
    Effect.gen(function* () {
      const owner = yield* client(clientId)
      const limit = Option.getOrUndefined(owner)?.dailyQuota
      if (limit === undefined) return messageIds.map(() => Quotas.Charge.Unlimited())
      const now = yield* Clock.currentTimeMillis
      return yield* Quotas.chargeMany(quotas, { clientId, messageIds, limit, now })
    })

  return {
    authenticate,
    issueKey,
    importKey,
    list,
    setQuota: (clientId, dailyQuota) =>
      Effect.gen(function* () {
        yield* validate({ clientId, scope: "client", dailyQuota })
        const at = new Date(yield* Clock.currentTimeMillis).toISOString()
        return yield* upsertClient(clientId, dailyQuota ?? null, at)
      }),
    revoke,
    keyActive: (keyId) =>
      isKeyId(keyId)
        ? Effect.map(keyRecord(keyId), (key) => Option.isSome(key) && key.value.revokedAt === undefined)
        : Effect.succeed(false),
    client,
    isEmpty: Effect.map(keyNames, (names) => names.length === 0),
    charge,
    chargeMany,
    usage: (clientId) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) => Quotas.usage(quotas, clientId, now)),
    forget: (documentKey) => {
      if (documentKey.startsWith(CLIENT_PREFIX)) clients.delete(documentKey.slice(CLIENT_PREFIX.length))
      else if (documentKey.startsWith(KEY_PREFIX)) keys.delete(documentKey.slice(KEY_PREFIX.length))
    }
  }
}

export class Clients extends Context.Tag("sms-gateway/Clients")<Clients, ClientsService>() {
  /**
   * The registry over `stores`, watching it for the layer's life so that every cached record
   * changed elsewhere is dropped at once.
   */
  static fromStores = (stores: ClientStores, ttlMs = cacheTtlMs()) =>
    Layer.scoped(
      Clients,
      Effect.gen(function* () {
        const service = makeClients(stores, ttlMs)
        yield* Effect.acquireRelease(
          natsRequest("cannot watch the client registry", () =>
            stores.registry.watch((key) => service.forget(key))
          ),
          (stop) => Effect.sync(stop)
        )
        return service
      })
    )

  /** Opens (creating if needed) `sms_clients`, `sms_quotas` and `sms_quota_charges`. */
  static layer = Layer.unwrapEffect(
    Effect.gen(function* () {
      const registry = yield* openBucket(CLIENTS_BUCKET)
      const counters = yield* openBucket(Quotas.QuotaBuckets.counters, Quotas.QUOTA_RETENTION_MS)
      const charges = yield* openBucket(Quotas.QuotaBuckets.charges, Quotas.QUOTA_RETENTION_MS)
      return Clients.fromStores({ registry, quotas: { counters, charges } })
    })
  )
}

/** Whether the caller may see data of `clientId`: its own, or every client's for auditors and admins. */
export const canRead = (principal: Principal, clientId: string) =>
  principal.scope !== "client" || principal.clientId === clientId
