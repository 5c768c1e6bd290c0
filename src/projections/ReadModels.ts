/** The KV buckets that hold read models and checkpoints, opened once per process. */
import { Kvm, type KV } from "@nats-io/kv"
import { JetStreamApiCodes, JetStreamApiError, StorageType } from "@nats-io/jetstream"
import { Context, Effect, Layer } from "effect"
import { Nats, NatsError } from "../nats/Nats.js"
import { Buckets, openBucket } from "../nats/Topology.js"

export interface ReadModelsService {
  readonly messages: KV
  readonly providerIndex: KV
  readonly phones: KV
  readonly stats: KV
  readonly parkedReports: KV
  readonly checkpoints: KV
}

/**
 * Bounds of the parked-reports bucket. A signed report for a message that does not exist is parked
 * (it may be early), so without bounds a provider, or whoever holds a leaked webhook secret, could
 * fill the disk with them.
 */
export interface ParkedReportLimits {
  /** how long a parked report waits for its dispatch (the bucket's max age) */
  readonly maxAgeMs: number
  /** reports held at most; a report parked beyond this is dropped (the bucket discards new) */
  readonly maxReports: number
  /** bytes held at most, the same way: reports carry the provider's raw body, up to 1 MiB each */
  readonly maxBytes: number
}

export const defaultParkedReportLimits: ParkedReportLimits = {
  // 7 days: a report is parked when the record of its dispatch is late (it was retried for ~8
  // minutes first), i.e. when our recording side (event store, provider index) was down or behind.
  // A week covers such an outage over a long weekend with room to spare; a report still unclaimed
  // after that answers a message this gateway never sent, and is worth nothing but disk.
  maxAgeMs: 7 * 24 * 60 * 60 * 1000,
  // parked reports are rare (a report unmatched after ~8 minutes of retries): 100,000 is far above
  // any honest backlog, and a flood stops there
  maxReports: 100_000,
  // a bound for large reports: 256 MiB is 100,000 reports of about 2.6 KiB
  maxBytes: 256 * 1024 * 1024
}

const positiveInteger = (text: string | undefined, fallback: number) => {
  const value = Number(text)
  return text !== undefined && text !== "" && Number.isInteger(value) && value > 0 ? value : fallback
}

/**
 * The bounds from the environment (`PARKED_REPORT_TTL_MS`, `PARKED_REPORTS_MAX`,
 * `PARKED_REPORTS_MAX_BYTES`), each its default when missing or not a positive integer: no expiry is
 * not a setting, it is the defect these bounds close.
 */
export const parkedReportLimits = (env: NodeJS.ProcessEnv = process.env): ParkedReportLimits => ({
  maxAgeMs: positiveInteger(env.PARKED_REPORT_TTL_MS, defaultParkedReportLimits.maxAgeMs),
  maxReports: positiveInteger(env.PARKED_REPORTS_MAX, defaultParkedReportLimits.maxReports),
  maxBytes: positiveInteger(env.PARKED_REPORTS_MAX_BYTES, defaultParkedReportLimits.maxBytes)
})

const NANOS_PER_MS = 1_000_000

/** The stream behind the parked-reports bucket. */
export const parkedReportsStream = `KV_${Buckets.parkedReports}`

/**
 * Opens (or creates) the parked-reports bucket with its bounds. `Kvm.create` leaves an existing
 * bucket's stream as it is, so a bucket made before these bounds (or with other settings) is updated
 * here: every gateway process applies the configured bounds on start. `applyToExisting: false` (for
 * tools such as the CLI, whose environment is not the gateway's) bounds only a bucket it creates.
 */
export const openParkedReports = (
  limits: ParkedReportLimits,
  options: { readonly applyToExisting?: boolean } = {}
) =>
  Effect.flatMap(Nats, ({ js, jsm, replicas }) =>
    Effect.tryPromise({
      try: async (): Promise<KV> => {
        const existing =
          options.applyToExisting === false
            ? await jsm.streams.info(parkedReportsStream).catch((error: unknown) => {
                if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound) {
                  return undefined
                }
                throw error
              })
            : undefined
        const kv = await new Kvm(js).create(Buckets.parkedReports, {
          history: 1,
          storage: StorageType.File,
          replicas,
          ttl: limits.maxAgeMs,
          max_bytes: limits.maxBytes
        })
        if (existing !== undefined) return kv
        const { config } = await jsm.streams.info(parkedReportsStream)
        const maxAge = limits.maxAgeMs * NANOS_PER_MS
        if (
          config.max_age !== maxAge ||
          config.max_msgs !== limits.maxReports ||
          config.max_bytes !== limits.maxBytes
        ) {
          await jsm.streams.update(parkedReportsStream, {
            max_age: maxAge,
            max_msgs: limits.maxReports,
            max_bytes: limits.maxBytes,
            // the server refuses a duplicate window longer than the max age (KV puts use none)
            duplicate_window: Math.min(config.duplicate_window, maxAge)
          })
        }
        return kv
      },
      catch: (cause) =>
        new NatsError({
          reason: "RequestFailed",
          message: `cannot open KV bucket ${Buckets.parkedReports}`,
          cause
        })
    })
  )

const open = (parked: ParkedReportLimits, applyToExisting = true) =>
  Effect.all({
    messages: openBucket(Buckets.messages),
    providerIndex: openBucket(Buckets.providerIndex),
    phones: openBucket(Buckets.phones),
    stats: openBucket(Buckets.stats),
    parkedReports: openParkedReports(parked, { applyToExisting }),
    checkpoints: openBucket(Buckets.checkpoints)
  })

export class ReadModels extends Context.Tag("sms-gateway/ReadModels")<ReadModels, ReadModelsService>() {
  /** the parked-reports bounds from the environment, read when the layer is built */
  static layer = Layer.effect(
    ReadModels,
    Effect.suspend(() => open(parkedReportLimits()))
  )

  /** with explicit parked-reports bounds (tests) */
  static layerWith = (parked: ParkedReportLimits) => Layer.effect(ReadModels, open(parked))

  /**
   * For tools run beside a gateway (the CLI): the parked-reports bucket keeps the bounds the gateway
   * gave it; the environment's apply only to a bucket made here.
   */
  static layerAsDeployed = Layer.effect(
    ReadModels,
    Effect.suspend(() => open(parkedReportLimits(), false))
  )
}
