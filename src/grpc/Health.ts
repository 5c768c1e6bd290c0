/**
 * The standard health service, `grpc.health.v1.Health`, as load balancers, Kubernetes gRPC probes
 * and `grpcurl` ask it:
 *
 * - `""` (the server itself): SERVING while it runs, NOT_SERVING once it is shutting down (what the
 *   HTTP API's `/health` says);
 * - `sms.v1.SmsGateway`: SERVING when the gateway can do its work, as `/ready` decides it (NATS and
 *   the event store answer, the projections keep up), NOT_SERVING otherwise;
 * - any other name: `Check` is NOT_FOUND and `Watch` says SERVICE_UNKNOWN, as the protocol wants.
 *
 * `Watch` answers at once, then on every change: a shutdown at once (NOT_SERVING, then the stream
 * ends), and readiness as re-checked every `RECHECK` (readiness is a question asked, there is nothing
 * to subscribe to).
 */
import { Duration, Effect, Stream, SubscriptionRef } from "effect"
import { checkReadiness, failingChecks } from "../http/Readiness.js"
import { notFound } from "./Errors.js"
import { GATEWAY_SERVICE, type ServingStatus } from "./Proto.js"

const RECHECK = Duration.seconds(5)

interface HealthCheckRequest {
  readonly service?: string
}

interface HealthCheckResponse {
  readonly status: ServingStatus
}

export const makeHealth = Effect.gen(function* () {
  const shuttingDown = yield* SubscriptionRef.make(false)

  const statusOf = (service: string) =>
    Effect.gen(function* () {
      if (service !== "" && service !== GATEWAY_SERVICE) return "SERVICE_UNKNOWN" as const
      if (yield* SubscriptionRef.get(shuttingDown)) return "NOT_SERVING" as const
      if (service === "") return "SERVING" as const
      const checks = yield* checkReadiness
      return failingChecks(checks).length === 0 ? ("SERVING" as const) : ("NOT_SERVING" as const)
    })

  const check = (request: HealthCheckRequest) =>
    Effect.flatMap(statusOf(request.service ?? ""), (status) =>
      status === "SERVICE_UNKNOWN"
        ? Effect.fail(notFound(`no service ${request.service}: ask "" or ${GATEWAY_SERVICE}`))
        : Effect.succeed<HealthCheckResponse>({ status })
    )

  // NOT_SERVING for a shutdown is a watch's last word: it ends there, so the server can wait for it to leave
  const watch = (request: HealthCheckRequest) =>
    Stream.merge(shuttingDown.changes, Stream.tick(RECHECK)).pipe(
      Stream.mapEffect(() => statusOf(request.service ?? "")),
      Stream.changes,
      Stream.map((status): HealthCheckResponse => ({ status })),
      Stream.takeUntilEffect(() => SubscriptionRef.get(shuttingDown))
    )

  return {
    check,
    watch,
    /** every service NOT_SERVING from now on, told to the watchers */
    stop: SubscriptionRef.set(shuttingDown, true)
  }
})
