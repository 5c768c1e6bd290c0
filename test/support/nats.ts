/** A real nats-server per test file: free loopback port, temporary store, stopped afterwards. */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect, Layer } from "effect"
import { Nats } from "../../src/nats/Nats.js"
import { startNatsServer, type EmbeddedNats } from "../../src/nats/NatsServer.js"

export class TestNatsServer extends Effect.Tag("test/TestNatsServer")<TestNatsServer, EmbeddedNats>() {}

export const NatsServerLive = Layer.scoped(
  TestNatsServer,
  Effect.gen(function* () {
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => mkdtempSync(join(tmpdir(), "sms-gw-nats-"))),
      (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
    )
    return yield* startNatsServer({ storeDir: dir })
  })
)

/** A server and a connection to it. */
export const NatsTest = Layer.unwrapEffect(
  Effect.map(TestNatsServer, (server) => Nats.layer(server.url, "test"))
).pipe(Layer.provideMerge(NatsServerLive))
