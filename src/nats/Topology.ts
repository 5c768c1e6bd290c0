/** Every subject, stream and KV bucket of the gateway, and their creation (idempotent, any process). */
import { Kvm, type KV } from "@nats-io/kv"
import { DiscardPolicy, RetentionPolicy, StorageType, type StreamConfig } from "@nats-io/jetstream"
import { Effect } from "effect"
import { Nats, NatsError } from "./Nats.js"

export const Subjects = {
  /** producers publish `SendSms` here with JetStream (Nats-Msg-Id = `<clientId>:<idempotencyKey>`) */
  send: "sms.commands.send",
  /** request/reply service answering `{messageId, duplicate}` */
  sendRequest: "sms.requests.send",
  rejects: "sms.rejects",
  work: (provider: string) => `sms.work.${provider}`,
  dlr: (provider: string) => `sms.dlr.${provider}`,
  /** messages given up on (retries exhausted, or redelivered until max deliveries) */
  dead: (provider: string) => `sms.dead.${provider}`,
  /** for other services: `dispatched`, `delivered`, `failed`, `unknown` (seed 003's "SmsSent" event bus) */
  notification: (status: string) => `sms.notifications.${status}`,
  /** one report-deadline check per dispatch (see `ReportDeadline`) */
  deadline: (provider: string) => `sms.deadlines.${provider}`,
  /** the call journal: one record per batch of provider calls, before they start (see `CallJournal`) */
  calls: (provider: string) => `sms.calls.${provider}`
} as const

export const Streams = {
  commands: "SMS_COMMANDS",
  work: "SMS_WORK",
  dlr: "SMS_DLR",
  rejects: "SMS_REJECTS",
  dead: "SMS_DEAD",
  notifications: "SMS_NOTIFICATIONS",
  deadlines: "SMS_DEADLINES",
  calls: "SMS_CALLS"
} as const

export const Buckets = {
  /** message status read model, key = message id */
  messages: "sms_messages",
  /** `<provider>.<provider message id>` -> message id, for delivery reports */
  providerIndex: "sms_provider_ids",
  /** phone numbers' lifecycle read model, key = E.164 digits */
  phones: "sms_phones",
  /** counts of events by type and provider, one document */
  stats: "sms_stats",
  /** delivery reports that never matched a dispatch, key = `<provider>.<provider message id>` */
  parkedReports: "sms_parked_dlrs",
  /** projection checkpoints, key = projection name */
  checkpoints: "sms_checkpoints"
} as const

const DAY_NS = 24 * 60 * 60 * 1e9
const TWO_MINUTES_NS = 2 * 60 * 1e9

const streamConfigs: ReadonlyArray<Partial<StreamConfig> & { name: string; subjects: string[] }> = [
  {
    name: Streams.commands,
    subjects: [Subjects.send],
    retention: RetentionPolicy.Limits,
    max_age: 7 * DAY_NS,
    duplicate_window: TWO_MINUTES_NS
  },
  { name: Streams.work, subjects: ["sms.work.>"], retention: RetentionPolicy.Workqueue },
  { name: Streams.dlr, subjects: ["sms.dlr.>"], retention: RetentionPolicy.Workqueue },
  {
    name: Streams.rejects,
    subjects: [Subjects.rejects],
    retention: RetentionPolicy.Limits,
    max_age: 30 * DAY_NS
  },
  { name: Streams.dead, subjects: ["sms.dead.>"], retention: RetentionPolicy.Limits, max_age: 90 * DAY_NS },
  { name: Streams.calls, subjects: ["sms.calls.>"], retention: RetentionPolicy.Limits, max_age: 30 * DAY_NS },
  // a work queue: a check stays until the worker acks it (report in, or outcome recorded); the wait
  // itself is JetStream's delayed redelivery. The default 2-minute duplicate window drops a check
  // published again for the same dispatch event (its msgID is the event id).
  { name: Streams.deadlines, subjects: ["sms.deadlines.>"], retention: RetentionPolicy.Workqueue },
  {
    name: Streams.notifications,
    subjects: ["sms.notifications.>"],
    retention: RetentionPolicy.Limits,
    max_age: 7 * DAY_NS,
    duplicate_window: TWO_MINUTES_NS
  }
]

export const ensureStreams = Effect.gen(function* () {
  const { jsm, replicas } = yield* Nats
  for (const config of streamConfigs) {
    yield* Effect.tryPromise({
      try: async () => {
        const existing = await jsm.streams.info(config.name).catch(() => undefined)
        if (existing === undefined) {
          await jsm.streams.add({
            storage: StorageType.File,
            discard: DiscardPolicy.Old,
            num_replicas: replicas,
            ...config
          })
        }
      },
      catch: (cause) =>
        new NatsError({ reason: "RequestFailed", message: `cannot create stream ${config.name}`, cause })
    })
  }
})

export const openBucket = (name: string) =>
  Effect.flatMap(Nats, ({ js, replicas }) =>
    Effect.tryPromise({
      // `create` opens the bucket when it exists already
      try: (): Promise<KV> => new Kvm(js).create(name, { history: 1, storage: StorageType.File, replicas }),
      catch: (cause) =>
        new NatsError({ reason: "RequestFailed", message: `cannot open KV bucket ${name}`, cause })
    })
  )
