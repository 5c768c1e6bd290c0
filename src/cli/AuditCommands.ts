/**
 * The auditor's commands: `replay` the whole history, `calls` lists the call journal, `rebuild` read
 * models from the history.
 */
import { Command, Options } from "@effect/cli"
import { Console, Effect, Option, Stream } from "effect"
import { EventStore, type RecordedEvent, START } from "../eventstore/EventStore.js"
import { connected, natsUrlOption } from "./Connect.js"

/** `--from` is a position (a number) or a time (ISO-8601). */
const parseFrom = (from: Option.Option<string>) =>
  Option.match(from, {
    onNone: () => ({ position: START, after: undefined }),
    onSome: (value) =>
      /^\d+$/.test(value)
        ? { position: Number(value), after: undefined }
        : { position: START, after: new Date(value) }
  })

const toLine = (format: "ndjson" | "table") => (event: RecordedEvent) =>
  format === "ndjson"
    ? JSON.stringify({
        position: event.position,
        stream: event.streamName,
        revision: event.revision,
        type: event.type,
        recordedAt: event.recordedAt.toISOString(),
        eventId: event.id,
        data: event.data
      })
    : [
        String(event.position).padStart(12),
        event.recordedAt.toISOString(),
        event.streamName.padEnd(42),
        String(event.revision).padStart(3),
        event.type
      ].join("  ")

const replay = Command.make(
  "replay",
  {
    natsUrl: natsUrlOption,
    from: Options.optional(Options.text("from")).pipe(
      Options.withDescription("a position, or an ISO-8601 time")
    ),
    until: Options.optional(Options.text("until")).pipe(Options.withDescription("an ISO-8601 time")),
    format: Options.choice("format", ["ndjson", "table"]).pipe(Options.withDefault("ndjson" as const))
  },
  ({ natsUrl, from, until, format }) =>
    Effect.gen(function* () {
      const store = yield* EventStore
      const start = parseFrom(from)
      const end = Option.map(until, (value) => new Date(value))
      const line = toLine(format)
      yield* store.readAll({ from: start.position }).pipe(
        Stream.filter((event) => start.after === undefined || event.recordedAt >= start.after),
        Stream.takeWhile((event) => Option.isNone(end) || event.recordedAt <= end.value),
        Stream.runForEach((event) => Console.log(line(event)))
      )
    }).pipe(Effect.provide(connected(natsUrl)))
).pipe(Command.withDescription("stream every event of the store, in order (an auditor's full history)"))

const progressBar = (done: number, total: number) => {
  const width = 30
  const filled = total === 0 ? width : Math.min(width, Math.round((done / total) * width))
  return `[${"#".repeat(filled)}${".".repeat(width - filled)}]`
}

const rebuildCommand = Command.make(
  "rebuild",
  {
    natsUrl: natsUrlOption,
    projection: Options.optional(Options.text("projection")).pipe(
      Options.withDescription("message-status, phone-numbers or stats (default: all)")
    )
  },
  ({ natsUrl, projection }) =>
    Effect.gen(function* () {
      // loaded here, not at the top: every read model's module is a quarter of a second that
      // `--help` and the other commands should not pay
      const [{ rebuild }, { readModels }] = yield* Effect.promise(() =>
        Promise.all([import("../projections/Rebuild.js"), import("../projections/Registry.js")])
      )
      const store = yield* EventStore
      const models = (yield* readModels).filter((m) =>
        Option.match(projection, { onNone: () => true, onSome: (name) => m.projection.name === name })
      )
      if (models.length === 0)
        return yield* Effect.fail(new Error(`no read model named ${Option.getOrElse(projection, () => "")}`))
      const total = yield* store.readAll().pipe(Stream.runCount)
      for (const model of models) {
        const started = Date.now()
        const result = yield* rebuild(model, ({ events }) =>
          Effect.sync(() =>
            process.stderr.write(
              `\r${model.projection.name.padEnd(16)} ${progressBar(events, total)} ${events}/${total}`
            )
          )
        )
        const seconds = (Date.now() - started) / 1000
        yield* Console.error(
          `\r${result.projection.padEnd(16)} ${progressBar(1, 1)} ${result.events} events in ${seconds.toFixed(1)} s (${Math.round(result.events / Math.max(seconds, 0.001))} events/s)`
        )
      }
    }).pipe(Effect.provide(connected(natsUrl)))
).pipe(Command.withDescription("drop read models and rebuild them from position 0, with progress"))

const calls = Command.make(
  "calls",
  {
    natsUrl: natsUrlOption,
    message: Options.optional(Options.text("message")).pipe(
      Options.withDescription("only this message id's calls")
    )
  },
  ({ natsUrl, message }) =>
    Effect.gen(function* () {
      const { readCallJournal } = yield* Effect.promise(() => import("../dispatch/CallJournal.js"))
      for (const record of yield* readCallJournal)
        for (const call of record.calls)
          if (Option.isNone(message) || message.value === call.messageId)
            yield* Console.log(
              JSON.stringify({
                messageId: call.messageId,
                attempt: call.attempt,
                provider: record.provider,
                at: record.at.toISOString(),
                storedAt: record.storedAt?.toISOString()
              })
            )
    }).pipe(Effect.provide(connected(natsUrl)))
).pipe(
  Command.withDescription(
    "every provider call the call journal holds, one JSON line each (recorded before the call)"
  )
)

export { calls, replay, rebuildCommand }
