/**
 * Who calls: the API key in the `x-api-key` metadata (or `authorization: Bearer <key>`), checked
 * against the client registry exactly as the HTTP API checks its header, with the same scopes.
 */
import type * as grpc from "@grpc/grpc-js"
import { Effect, Option } from "effect"
import { Clients, type Principal, type Scope } from "../clients/Clients.js"
import { permissionDenied, unauthenticated, unavailable } from "./Errors.js"

const BEARER = /^Bearer\s+(.+)$/i

const first = (metadata: grpc.Metadata, key: string): string => {
  const [value] = metadata.get(key)
  return value === undefined ? "" : String(value).trim()
}

/** The key a call presents: `x-api-key`, else a bearer `authorization`; "" for none. */
const presentedKey = (metadata: grpc.Metadata): string =>
  first(metadata, "x-api-key") || (BEARER.exec(first(metadata, "authorization"))?.[1]?.trim() ?? "")

export const authenticate = (metadata: grpc.Metadata) =>
  Effect.gen(function* () {
    const presented = presentedKey(metadata)
    if (presented === "")
      return yield* unauthenticated("an API key is required: send it as the x-api-key metadata")
    const principal = yield* (yield* Clients)
      .authenticate(presented)
      .pipe(
        Effect.catchAll((error) =>
          Effect.zipRight(
            Effect.logError("cannot check an API key", error),
            Effect.fail(unavailable("the client registry is unavailable, retry later"))
          )
        )
      )
    if (Option.isNone(principal)) return yield* unauthenticated("unknown or revoked API key")
    return principal.value
  })

/** PERMISSION_DENIED unless the caller's scope is one of `allowed` (the HTTP API's 403). */
export const requireScope = (principal: Principal, ...allowed: ReadonlyArray<Scope>) =>
  allowed.includes(principal.scope)
    ? Effect.succeed(principal)
    : Effect.fail(permissionDenied(`a ${principal.scope} key cannot do this (needs ${allowed.join(" or ")})`))
