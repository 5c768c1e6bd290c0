/**
 * A reactor with its own checkpoint (`outbox-status.<table>`): writes each outbox message's status
 * back to its row (queued, dispatched, retrying, delivered, failed, unknown; with the provider, the
 * provider's message id and the error), so the application reads the outcome in its own table.
 *
 * Idempotent by position: a row is written only with events past its `last_event_position`, so a
 * batch replayed after a crash, or applied by two gateways at once, changes nothing, and a row never
 * goes back to an older status. Run by the outbox role, which holds the database connection.
 */
import { Effect } from "effect"
import { EventStoreError, type RecordedEvent } from "../eventstore/EventStore.js"
import { decodeRecorded } from "../eventstore/MessageEvents.js"
import { outboxStatusWrites } from "../observability/Metrics.js"
import type { Projection } from "../projections/ProjectionRunner.js"
import type { OutboxDatabaseService, OutboxDbError } from "./Database.js"
import { patchesOf, type PositionedEvent, STATUS_EVENTS } from "./StatusPatch.js"

/** The checkpoint's name: a KV key, so only letters, digits, `_`, `-` and `.`. */
export const reactorName = (table: string) => `outbox-status.${table.replace(/[^A-Za-z0-9_.-]/g, "_")}`

export const statusReactor = (
  db: OutboxDatabaseService,
  table: string
): Projection<OutboxDbError | EventStoreError, never> => ({
  name: reactorName(table),
  handles: STATUS_EVENTS as ReadonlySet<string>,
  applyBatch: (recorded: ReadonlyArray<RecordedEvent>) =>
    Effect.gen(function* () {
      const events: Array<PositionedEvent> = []
      for (const record of recorded) {
        const event = decodeRecorded(record)
        if (event instanceof EventStoreError) return yield* event
        events.push({ event, position: record.position })
      }
      const patches = patchesOf(table, events)
      if (patches.length === 0) return
      const written = yield* db.writeStatuses(patches)
      if (written > 0) yield* outboxStatusWrites(table, written)
    })
})
