/**
 * EventStoreDB: the contract suite against a real server in a container (testcontainers), and the
 * adapter's own rules that need no server. Where no container runtime exists (no Docker engine),
 * the server suites are registered as skipped and the reason is printed: never a silent pass.
 */
import { describe, expect, it, layer } from "@effect/vitest"
import { Context, Effect, Either, Layer, Schedule } from "effect"
import { EventStoreDBClient, type ResolvedEvent } from "@eventstore/db-client"
import { GenericContainer, getContainerRuntimeClient, Wait } from "testcontainers"
import {
  EventStore,
  EventStoreError,
  ExpectedRevision,
  START,
  type WrongExpectedRevision
} from "../../src/eventstore/EventStore.js"
import * as EventStoreDbEventStore from "../../src/eventstore/EventStoreDbEventStore.js"
import { suite } from "../contracts/EventStoreContract.js"

const IMAGE = "eventstore/eventstore:24.10"
const HTTP_PORT = 2113

/** Why the server suites cannot run here, or undefined when a container runtime answers. */
const noContainerRuntime: string | undefined = await getContainerRuntimeClient().then(
  () => undefined,
  (cause: unknown) => (cause instanceof Error ? cause.message : String(cause))
)

class EsdbUrl extends Context.Tag("test/EsdbUrl")<EsdbUrl, string>() {}

/** An insecure in-memory single node, started once for the suite that uses it, and the store on it. */
const server = Layer.unwrapEffect(
  Effect.map(EsdbUrl, (url) => EventStoreDbEventStore.layerFromUrl(url))
).pipe(
  Layer.provideMerge(
    Layer.scoped(
      EsdbUrl,
      Effect.gen(function* () {
        const container = yield* Effect.acquireRelease(
          Effect.tryPromise(() =>
            new GenericContainer(IMAGE)
              .withEnvironment({
                EVENTSTORE_INSECURE: "true",
                EVENTSTORE_RUN_PROJECTIONS: "All",
                EVENTSTORE_START_STANDARD_PROJECTIONS: "true",
                EVENTSTORE_MEM_DB: "true"
              })
              .withExposedPorts(HTTP_PORT)
              .withWaitStrategy(Wait.forHttp("/health/live", HTTP_PORT).forStatusCode(204))
              .withStartupTimeout(120_000)
              .start()
          ),
          (container) => Effect.promise(() => container.stop())
        )
        return `esdb://${container.getHost()}:${container.getMappedPort(HTTP_PORT)}?tls=false`
      })
    )
  )
)

/** The events of any stream, read with a client of its own (the store only reads the gateway's). */
const readRaw = (url: string, streamName: string) =>
  Effect.acquireUseRelease(
    Effect.sync(() => EventStoreDBClient.connectionString(url)),
    (client) =>
      Effect.tryPromise(async () => {
        const events: Array<ResolvedEvent> = []
        for await (const event of client.readStream(streamName, { resolveLinkTos: true })) events.push(event)
        return events
      }),
    (client) => Effect.promise(() => client.dispose())
  )

const withServer = (name: string, body: () => void): void => {
  if (noContainerRuntime === undefined) {
    describe(name, body)
  } else {
    console.warn(`SKIPPED "${name}": no container runtime for EventStoreDB (${noContainerRuntime})`)
    describe.skip(`${name} [skipped: no container runtime]`, body)
  }
}

withServer("EventStoreDB server", () => {
  suite("esdb", server)

  layer(server, { excludeTestServices: true })((it) => {
    it.effect("positions are the events' log positions; the $ce-sms category sees the streams", () =>
      Effect.gen(function* () {
        const store = yield* EventStore
        const stream = `sms-${crypto.randomUUID()}`
        const events = ["A", "B", "C"].map((type) => ({ id: crypto.randomUUID(), type, data: { type } }))
        const result = yield* store.append(stream, events, ExpectedRevision.NoStream())
        const recorded = yield* store.read(stream)
        expect(recorded.map((e) => e.position)).toEqual(
          [...recorded.map((e) => e.position)].sort((a, b) => a - b)
        )
        expect(new Set(recorded.map((e) => e.position)).size).toBe(3)
        expect(result.position).toBe(recorded[2]?.position)
        // the server's category projection links them into `$ce-sms`, in its own time
        const url = yield* EsdbUrl
        const inCategory = yield* readRaw(url, "$ce-sms").pipe(
          Effect.filterOrFail((linked) => linked.some((e) => e.event?.streamId === stream)),
          Effect.retry(Schedule.spaced("200 millis").pipe(Schedule.upTo("15 seconds")))
        )
        expect(inCategory.filter((e) => e.event?.streamId === stream).map((e) => e.event?.id)).toEqual(
          events.map((e) => e.id)
        )
      })
    )
  })
})

describe("EventStoreDbEventStore without a server", () => {
  it("maps log positions to numbers and back, refusing what could skip events", () => {
    expect(EventStoreDbEventStore.toPosition({ commit: 4242n, prepare: 4242n })).toEqual(Either.right(4242))
    expect(Either.isLeft(EventStoreDbEventStore.toPosition({ commit: 5000n, prepare: 4242n }))).toBe(true)
    const beyond = BigInt(Number.MAX_SAFE_INTEGER) + 1n
    expect(Either.isLeft(EventStoreDbEventStore.toPosition({ commit: beyond, prepare: beyond }))).toBe(true)
    expect(EventStoreDbEventStore.fromPosition(START)).toBe("start")
    expect(EventStoreDbEventStore.fromPosition(4242)).toEqual({ commit: 4242n, prepare: 4242n })
  })

  it("keeps to the gateway's streams", () => {
    expect(EventStoreDbEventStore.isGatewayStream("sms-8a0c")).toBe(true)
    expect(EventStoreDbEventStore.isGatewayStream("phone-447911123456")).toBe(true)
    for (const name of ["sms-", "$ce-sms", "other-1", "smsx-1", ""]) {
      expect(EventStoreDbEventStore.isGatewayStream(name)).toBe(false)
    }
  })

  // Nothing listens on port 1: what must be refused is refused before any call, and an
  // unreachable server is `Unavailable` once the (here short) reconnect schedule is spent.
  const unreachable = Effect.acquireRelease(
    Effect.sync(() => EventStoreDBClient.connectionString("esdb://127.0.0.1:1?tls=false")),
    (client) => Effect.promise(() => client.dispose())
  ).pipe(Effect.map((client) => EventStoreDbEventStore.make(client, { reconnect: Schedule.recurs(1) })))

  it.scopedLive("refuses bad input with InvalidData before calling the server", () =>
    Effect.gen(function* () {
      const store = yield* unreachable
      const valid = { id: crypto.randomUUID(), type: "A", data: {} }
      const refusals: ReadonlyArray<Effect.Effect<unknown, WrongExpectedRevision | EventStoreError>> = [
        store.append("other-1", [valid], ExpectedRevision.NoStream()),
        store.append("sms-1", [], ExpectedRevision.NoStream()),
        store.append("sms-1", [{ ...valid, id: "not-a-uuid" }], ExpectedRevision.NoStream()),
        store.append("sms-1", [{ ...valid, id: valid.id.toUpperCase() }], ExpectedRevision.NoStream()),
        store.append("sms-1", [{ ...valid, data: { big: 1n } }], ExpectedRevision.NoStream()),
        store.read("$ce-sms")
      ]
      for (const refusal of refusals) {
        const error = yield* Effect.flip(refusal)
        expect(error).toBeInstanceOf(EventStoreError)
        expect(error._tag === "EventStoreError" && error.reason).toBe("InvalidData")
      }
    })
  )

  it.scopedLive("reports an unreachable server as Unavailable", () =>
    Effect.gen(function* () {
      const store = yield* unreachable
      const error = yield* Effect.flip(store.read("sms-1"))
      expect(error.reason).toBe("Unavailable")
    })
  )
})
