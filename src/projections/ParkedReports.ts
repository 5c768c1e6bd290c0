/**
 * Delivery reports that never found their dispatch within the retry window are parked in KV
 * (`sms_parked_dlrs`, key = provider index key) instead of being dropped; the parked-reports
 * reactor puts one back on `sms.dlr.<provider>` when the matching dispatch is recorded.
 *
 * The bucket is bounded (`ReadModels.openParkedReports`): a parked report expires after the max age,
 * and once the bucket holds its maximum of reports or bytes, JetStream refuses new ones (KV buckets
 * discard new): `park` answers `"full"` for those.
 */
import { JetStreamApiError } from "@nats-io/jetstream"
import { Effect } from "effect"
import { Nats, NatsError, natsRequest } from "../nats/Nats.js"
import { Subjects } from "../nats/Topology.js"
import { parkedReportDropped, reportParked } from "../observability/Metrics.js"
import { parkedReportsStream, ReadModels } from "./ReadModels.js"

/**
 * How nats-server answers a put into a stream at its `max_msgs` or `max_bytes` with discard new
 * (checked against 2.9.10): a 503 with err_code 10077 ("stream store failed"), described as
 * "maximum messages exceeded" or "maximum bytes exceeded". The same code covers other store
 * failures, which are not "full" and stay errors (the report comes back later).
 */
const STREAM_STORE_FAILED = 10077
const isFull = (cause: unknown) =>
  cause instanceof JetStreamApiError &&
  cause.code === STREAM_STORE_FAILED &&
  /maximum (messages|bytes) exceeded/.test(cause.message)

/** Sequence not found: a message deleted by sequence is gone already. */
const SEQUENCE_NOT_FOUND = 10043

export type ParkOutcome = "parked" | "full"

/**
 * `stored` is the record as it was on `sms.dlr.<provider>` (JSON). Answers `"full"`, rather than
 * failing, when the bucket is at its bound: that is a verdict on the report, not a failure to retry.
 * (A report whose key is parked already replaces it even then: it takes no room.)
 */
export const park = (provider: string, key: string, stored: string) =>
  Effect.flatMap(ReadModels, ({ parkedReports }) =>
    Effect.tryPromise({ try: () => parkedReports.put(key, stored), catch: (cause) => cause }).pipe(
      Effect.matchEffect({
        onSuccess: () => Effect.as(reportParked(provider), "parked" as ParkOutcome),
        onFailure: (cause) =>
          isFull(cause)
            ? Effect.as(parkedReportDropped(provider, "full"), "full" as ParkOutcome)
            : Effect.fail(
                new NatsError({ reason: "RequestFailed", message: "cannot park delivery report", cause })
              )
      })
    )
  )

/** Whether any report is parked at all (one request: the bucket's value count). */
export const hasParked = Effect.flatMap(ReadModels, ({ parkedReports }) =>
  natsRequest("cannot read parked reports", () => parkedReports.status()).pipe(
    Effect.map((status) => status.values > 0)
  )
)

export const requeueParked = (key: string) =>
  Effect.gen(function* () {
    const { parkedReports } = yield* ReadModels
    const { publish, jsm } = yield* Nats
    const entry = yield* natsRequest("cannot read parked reports", () => parkedReports.get(key))
    if (entry === null || entry.operation !== "PUT") return false
    const provider = key.slice(0, key.indexOf("."))
    // dedupe on the KV revision: a replayed projection batch does not queue the report twice
    yield* natsRequest("cannot requeue parked report", () =>
      publish(Subjects.dlr(provider), entry.value, { msgID: `parked:${key}:${entry.revision}` })
    )
    // Cleared by deleting that revision's message, not with a KV delete: a delete marker would stay
    // in the bucket until the max age, taking a place of the bounded bucket and counting as a parked
    // report (`hasParked`, `sms_parked_reports`). By revision, a report parked again under the same
    // key meanwhile stays parked; one cleared already (a replay) is "not found", which is done.
    yield* Effect.tryPromise({
      try: () => jsm.streams.deleteMessage(parkedReportsStream, entry.revision, false),
      catch: (cause) => cause
    }).pipe(
      Effect.catchAll((cause) =>
        cause instanceof JetStreamApiError && cause.code === SEQUENCE_NOT_FOUND
          ? Effect.void
          : Effect.fail(
              new NatsError({ reason: "RequestFailed", message: "cannot clear parked report", cause })
            )
      )
    )
    return true
  })
