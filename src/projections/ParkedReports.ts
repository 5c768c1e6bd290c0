/**
 * Delivery reports that never found their dispatch within the retry window are parked in KV
 * (`sms_parked_dlrs`, key = provider index key) instead of being dropped; the parked-reports
 * reactor puts one back on `sms.dlr.<provider>` when the matching dispatch is recorded.
 */
import { Effect } from "effect"
import { Nats, NatsError } from "../nats/Nats.js"
import { Subjects } from "../nats/Topology.js"
import { ReadModels } from "./ReadModels.js"

const request = <A>(what: string, run: () => Promise<A>) =>
  Effect.tryPromise({
    try: run,
    catch: (cause) => new NatsError({ reason: "RequestFailed", message: what, cause })
  })

/** `stored` is the record as it was on `sms.dlr.<provider>` (JSON). */
export const park = (key: string, stored: string) =>
  Effect.flatMap(ReadModels, ({ parkedReports }) =>
    request("cannot park delivery report", () => parkedReports.put(key, stored))
  )

/** Whether any report is parked at all (one request: the bucket's value count). */
export const hasParked = Effect.flatMap(ReadModels, ({ parkedReports }) =>
  request("cannot read parked reports", () => parkedReports.status()).pipe(
    Effect.map((status) => status.values > 0)
  )
)

export const requeueParked = (key: string) =>
  Effect.gen(function* () {
    const { parkedReports } = yield* ReadModels
    const { js } = yield* Nats
    const entry = yield* request("cannot read parked reports", () => parkedReports.get(key))
    if (entry === null || entry.operation !== "PUT") return false
    const provider = key.slice(0, key.indexOf("."))
    // dedupe on the KV revision: a replayed projection batch does not queue the report twice
    yield* request("cannot requeue parked report", () =>
      js.publish(Subjects.dlr(provider), entry.value, { msgID: `parked:${key}:${entry.revision}` })
    )
    yield* request("cannot clear parked report", () => parkedReports.delete(key))
    return true
  })
