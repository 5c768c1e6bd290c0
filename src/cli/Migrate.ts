/**
 * `sms-gateway migrate --from jetstream --to esdb` (or back): copies every stream from one event
 * store to the other with `Migration.migrate`, a progress bar on stderr and the final check.
 * Run it with the gateway stopped; run it again after an interruption: it carries on.
 *
 * A JetStream side uses `--from-url` / `--to-url`, else `NATS_URL`, else the embedded store under
 * `--data-dir` (its own nats-server, as `start` runs it). An EventStoreDB side uses the URL flag,
 * else `ESDB_URL`, else `esdb://127.0.0.1:2113?tls=false`.
 */
import { join } from "node:path"
import { Command, Options } from "@effect/cli"
import { Clock, Console, Context, Effect, Layer, Option } from "effect"
import { EventStore, EventStoreError } from "../eventstore/EventStore.js"
import * as EventStoreDbOnDemand from "../eventstore/EventStoreDbOnDemand.js"
import * as JetStreamEventStore from "../eventstore/JetStreamEventStore.js"
import { migrate, type MigrationProgress } from "../eventstore/Migration.js"
import { Nats } from "../nats/Nats.js"
import { ensureEmbeddedCredentials } from "../nats/NatsAuth.js"
import { startNatsServer } from "../nats/NatsServer.js"

const KINDS = ["jetstream", "esdb"] as const
type Kind = (typeof KINDS)[number]

const BAR_WIDTH = 30
const REDRAW_MS = 100

/** One side's store, open for the scope; `url` is the flag, when given. */
const openStore = (kind: Kind, url: string | undefined, dataDir: string) =>
  Effect.gen(function* () {
    const layer =
      kind === "esdb"
        ? EventStoreDbOnDemand.layerFromUrl(url ?? process.env.ESDB_URL ?? EventStoreDbOnDemand.DEFAULT_URL)
        : JetStreamEventStore.layer.pipe(
            Layer.provide(
              Nats.layer(
                url ??
                  process.env.NATS_URL ??
                  // the store's own generated credentials: the embedded server accepts no one else
                  (yield* startNatsServer({
                    storeDir: join(dataDir, "nats"),
                    auth: yield* ensureEmbeddedCredentials(dataDir)
                  })).url,
                "sms-gateway-migrate"
              )
            )
          )
    return Context.get(yield* Layer.build(layer), EventStore)
  })

const describeSide = (kind: Kind, url: string | undefined): string =>
  `${kind} (${
    url ??
    (kind === "esdb"
      ? (process.env.ESDB_URL ?? EventStoreDbOnDemand.DEFAULT_URL)
      : (process.env.NATS_URL ?? "embedded store"))
  })`

const barOf = ({ total, done, copied }: MigrationProgress): string => {
  const share = total === 0 ? 1 : done / total
  const filled = Math.round(share * BAR_WIDTH)
  return `[${"#".repeat(filled)}${"-".repeat(BAR_WIDTH - filled)}] ${Math.floor(share * 100)
    .toString()
    .padStart(
      3
    )}%  ${done.toLocaleString("en")}/${total.toLocaleString("en")} events  (${copied.toLocaleString("en")} copied)`
}

/** Redraws one line on a terminal (at most every 100 ms); elsewhere prints a line per 10%. */
const progressBar = () => {
  const tty = process.stderr.isTTY === true
  let drawnAt = 0
  let tenths = -1
  return (progress: MigrationProgress): Effect.Effect<void> =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.sync(() => {
        const finished = progress.done >= progress.total
        if (tty) {
          if (!finished && now - drawnAt < REDRAW_MS) return
          drawnAt = now
          process.stderr.write(`\r${barOf(progress)}${finished ? "\n" : ""}`)
        } else {
          const step = progress.total === 0 ? 10 : Math.floor((progress.done / progress.total) * 10)
          if (step === tenths) return
          tenths = step
          process.stderr.write(`${barOf(progress)}\n`)
        }
      })
    )
}

export const migrateCommand = Command.make(
  "migrate",
  {
    from: Options.choice("from", KINDS).pipe(Options.withDescription("the store to copy from")),
    to: Options.choice("to", KINDS).pipe(Options.withDescription("the store to copy into")),
    fromUrl: Options.optional(Options.text("from-url")).pipe(
      Options.withDescription("the source's NATS or esdb:// URL (default: NATS_URL / ESDB_URL)")
    ),
    toUrl: Options.optional(Options.text("to-url")).pipe(
      Options.withDescription("the target's NATS or esdb:// URL (default: NATS_URL / ESDB_URL)")
    ),
    dataDir: Options.text("data-dir").pipe(
      Options.withDefault(process.env.DATA_DIR ?? "./data"),
      Options.withDescription("the embedded JetStream store, for a jetstream side without a URL")
    )
  },
  (args) =>
    Effect.gen(function* () {
      const fromUrl = Option.getOrUndefined(args.fromUrl)
      const toUrl = Option.getOrUndefined(args.toUrl)
      const source = describeSide(args.from, fromUrl)
      const target = describeSide(args.to, toUrl)
      if (source === target) {
        return yield* new EventStoreError({
          reason: "InvalidData",
          message: `--from and --to are the same store: ${source}`
        })
      }
      yield* Console.error(`migrating ${source} -> ${target}`)
      const report = yield* migrate(
        yield* openStore(args.from, fromUrl, args.dataDir),
        yield* openStore(args.to, toUrl, args.dataDir),
        { onProgress: progressBar() }
      )
      yield* Console.log(
        [
          `migrated ${report.streams.toLocaleString("en")} streams, ${report.events.toLocaleString("en")} events: ` +
            `${report.copied.toLocaleString("en")} copied now, ${report.skipped.toLocaleString("en")} already there`,
          "checked: both stores hold the same streams with the same events, ids and order",
          "read models and checkpoints hold positions of the old store: before starting the gateway with",
          `EVENT_STORE=${args.to}, empty the read-model buckets and sms_checkpoints (keep sms_clients), so the`,
          "projections rebuild from the first event (README: Choosing an event store)"
        ].join("\n")
      )
    }).pipe(Effect.scoped)
).pipe(
  Command.withDescription(
    "copy every event stream between JetStream and EventStoreDB (resumable, checked); stop the gateway first"
  )
)
