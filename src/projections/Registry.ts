/**
 * Every projection the projector role runs. Read models can be dropped and rebuilt from position 0;
 * reactors (they act: deactivate numbers, publish notifications, start report deadlines) only ever
 * move forward.
 */
import type { KV } from "@nats-io/kv"
import { Effect } from "effect"
import type { EventStore } from "../eventstore/EventStore.js"
import type { Nats } from "../nats/Nats.js"
import { Buckets } from "../nats/Topology.js"
import * as DeadlineScheduler from "./DeadlineScheduler.js"
import * as MessageStatus from "./MessageStatus.js"
import * as Notifications from "./Notifications.js"
import * as PhoneDeactivation from "./PhoneDeactivation.js"
import * as ParkedReportsReactor from "./ParkedReportsReactor.js"
import * as PhoneNumbers from "./PhoneNumbers.js"
import type { Projection } from "./ProjectionRunner.js"
import { ReadModels } from "./ReadModels.js"
import * as Stats from "./Stats.js"

/** What projections may need to run. */
export type AnyProjection = Projection<unknown, EventStore | Nats | ReadModels>

export interface ReadModel {
  readonly projection: AnyProjection
  readonly bucket: KV
  /** the bucket's name: a rebuild empties its stream (`KV_<name>`) first */
  readonly bucketName: string
}

export const readModels = Effect.gen(function* () {
  const buckets = yield* ReadModels
  return [
    { projection: yield* MessageStatus.projection, bucket: buckets.messages, bucketName: Buckets.messages },
    { projection: yield* PhoneNumbers.projection, bucket: buckets.phones, bucketName: Buckets.phones },
    { projection: yield* Stats.projection, bucket: buckets.stats, bucketName: Buckets.stats }
  ] satisfies ReadonlyArray<ReadModel>
})

export const reactors: ReadonlyArray<AnyProjection> = [
  PhoneDeactivation.projection,
  Notifications.projection,
  ParkedReportsReactor.projection,
  DeadlineScheduler.projection
]
