/** The KV buckets that hold read models and checkpoints, opened once per process. */
import type { KV } from "@nats-io/kv"
import { Context, Effect, Layer } from "effect"
import { Buckets, openBucket } from "../nats/Topology.js"

export interface ReadModelsService {
  readonly messages: KV
  readonly providerIndex: KV
  readonly phones: KV
  readonly stats: KV
  readonly parkedReports: KV
  readonly checkpoints: KV
}

export class ReadModels extends Context.Tag("sms-gateway/ReadModels")<ReadModels, ReadModelsService>() {
  static layer = Layer.effect(
    ReadModels,
    Effect.all({
      messages: openBucket(Buckets.messages),
      providerIndex: openBucket(Buckets.providerIndex),
      phones: openBucket(Buckets.phones),
      stats: openBucket(Buckets.stats),
      parkedReports: openBucket(Buckets.parkedReports),
      checkpoints: openBucket(Buckets.checkpoints)
    })
  )
}
