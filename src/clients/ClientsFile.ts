/**
 * Clients configured by file (`CLIENTS_FILE`, or `sms-gateway clients apply <file>`):
 *
 * ```json
 * { "clients": [
 *   { "clientId": "shop", "scope": "client", "dailyQuota": 10000, "apiKeyEnv": "SHOP_API_KEY" },
 *   { "clientId": "audit", "scope": "auditor", "apiKeyEnv": "AUDIT_API_KEY" } ] }
 * ```
 *
 * Like the providers file, no secret is in the file: `apiKeyEnv` names the environment variable that
 * holds the key (made once with `sms-gateway clients add`, or `clients new-key`, and kept in a secret
 * store); only its hash reaches the registry. Entries without `apiKeyEnv` only set the client's quota.
 * Applying is idempotent, so every gateway process may apply the same file at start.
 */
import { readFileSync } from "node:fs"
import { Data, Effect, ParseResult, Schema } from "effect"
import { ClientId, Clients, DailyQuota, Scope } from "./Clients.js"

export const ClientsFileEntry = Schema.Struct({
  clientId: ClientId,
  scope: Scope,
  dailyQuota: Schema.optional(Schema.NullOr(DailyQuota)),
  apiKeyEnv: Schema.optional(Schema.String)
})

export const ClientsFile = Schema.Struct({ clients: Schema.Array(ClientsFileEntry) })
export type ClientsFile = typeof ClientsFile.Type

export class ClientsFileError extends Data.TaggedError("ClientsFileError")<{ readonly message: string }> {}

export const loadClientsFile = (path: string) =>
  Effect.try({
    try: () => JSON.parse(readFileSync(path, "utf8")) as unknown,
    catch: (cause) => new ClientsFileError({ message: `cannot read ${path}: ${String(cause)}` })
  }).pipe(
    Effect.flatMap((json) =>
      Schema.decodeUnknown(ClientsFile, { errors: "all" })(json).pipe(
        Effect.mapError(
          (error) =>
            new ClientsFileError({
              message: `${path} is not a valid clients file:\n${ParseResult.ArrayFormatter.formatErrorSync(
                error
              )
                .map((issue) => `  ${issue.path.join(".") || "$"}: ${issue.message}`)
                .join("\n")}`
            })
        )
      )
    )
  )

/** Writes every entry to the registry; answers what was applied, one line per entry. */
export const applyClientsFile = (file: ClientsFile) =>
  Effect.gen(function* () {
    const clients = yield* Clients
    const applied: Array<string> = []
    for (const entry of file.clients) {
      // declarative: an entry without `dailyQuota` makes the client unlimited
      const input = { clientId: entry.clientId, scope: entry.scope, dailyQuota: entry.dailyQuota ?? null }
      if (entry.apiKeyEnv === undefined) {
        // a quota only: issue no key, but the client record must exist
        yield* clients.setQuota(entry.clientId, input.dailyQuota)
        applied.push(`${entry.clientId}: quota ${entry.dailyQuota ?? "unlimited"}`)
        continue
      }
      const apiKey = process.env[entry.apiKeyEnv]
      if (apiKey === undefined || apiKey === "") {
        return yield* new ClientsFileError({
          message: `client ${entry.clientId}: environment variable ${entry.apiKeyEnv} is not set`
        })
      }
      const key = yield* clients.importKey({ ...input, apiKey })
      applied.push(
        `${entry.clientId}: ${entry.scope} key ${key.keyId}, quota ${key.dailyQuota ?? "unlimited"}`
      )
    }
    return applied
  })
