/**
 * The key check (`Authentication` middleware) and the scope rules.
 *
 * | scope     | send | read messages | manage clients |
 * |-----------|------|---------------|----------------|
 * | `client`  | yes, as its client | its own only (others: 404, as if unknown) | no |
 * | `auditor` | no   | all           | no             |
 * | `admin`   | yes, as its client | all | yes        |
 */
import { HttpServerRequest } from "@effect/platform"
import { Effect, Layer, Option, Redacted } from "effect"
import { Clients, type Scope } from "../clients/Clients.js"
import { authFailure } from "../observability/Metrics.js"
import { Authentication, CurrentClient, Forbidden, ServiceUnavailable, Unauthorized } from "./Api.js"

const BEARER = /^Bearer\s+(.+)$/i

const refuse = (message: string) =>
  Effect.zipRight(authFailure(401), Effect.fail(new Unauthorized({ message })))

export const AuthenticationLive = Layer.effect(
  Authentication,
  Effect.gen(function* () {
    const clients = yield* Clients
    return Authentication.of({
      apiKey: (header) =>
        Effect.gen(function* () {
          let presented = Redacted.value(header)
          if (presented === "") {
            const request = yield* HttpServerRequest.HttpServerRequest
            presented = BEARER.exec(request.headers.authorization ?? "")?.[1]?.trim() ?? ""
          }
          if (presented === "")
            return yield* refuse("an API key is required: send it as the X-API-Key header")
          const principal = yield* clients
            .authenticate(presented)
            .pipe(
              Effect.catchAll((error) =>
                Effect.logError("cannot check an API key", error).pipe(
                  Effect.zipRight(
                    Effect.fail(
                      new ServiceUnavailable({ message: "the client registry is unavailable, retry later" })
                    )
                  )
                )
              )
            )
          if (Option.isNone(principal)) return yield* refuse("unknown or revoked API key")
          yield* Effect.annotateCurrentSpan({ clientId: principal.value.clientId })
          return principal.value
        })
    })
  })
)

/** Fails with 403 unless the caller's scope is one of `allowed`. */
export const requireScope = (...allowed: ReadonlyArray<Scope>) =>
  Effect.flatMap(CurrentClient, (principal) =>
    allowed.includes(principal.scope)
      ? Effect.succeed(principal)
      : Effect.zipRight(
          authFailure(403),
          Effect.fail(
            new Forbidden({
              message: `a ${principal.scope} key cannot do this (needs ${allowed.join(" or ")})`,
              scope: principal.scope
            })
          )
        )
  )
