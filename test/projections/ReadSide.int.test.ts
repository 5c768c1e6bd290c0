/**
 * The read side against a real nats-server and simulators: rebuilds equal live processing, phone
 * numbers deactivated by providers and refused afterwards, late and out-of-order delivery reports,
 * notifications for other services.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import type { MessageId } from "../../src/domain/Ids.js"
import { EventStore } from "../../src/eventstore/EventStore.js"
import { Nats } from "../../src/nats/Nats.js"
import * as Checkpoints from "../../src/projections/Checkpoints.js"
import { getPhoneNumber } from "../../src/projections/PhoneNumbers.js"
import { rebuild } from "../../src/projections/Rebuild.js"
import { reactors, readModels } from "../../src/projections/Registry.js"
import { issueApiKey } from "../support/apiKeys.js"
import { eventually } from "../support/gateway.js"
import {
  awaitFinal,
  providerEntry,
  postSignedReport,
  simulator,
  startGateway
} from "../support/inProcessGateway.js"

type Gateway = Effect.Effect.Success<ReturnType<typeof startGateway>>

/** Every live key and value of a bucket, read from its stream (`kv.keys()` can end early on 2.9). */
const snapshot = (gw: Gateway, bucketName: string) =>
  gw.provide(
    Effect.flatMap(Nats, ({ jsm }) =>
      Effect.promise(async () => {
        const stream = `KV_${bucketName}`
        const info = await jsm.streams.info(stream)
        const all: Record<string, string> = {}
        for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
          const msg = await jsm.streams.getMessage(stream, { seq }).catch(() => null)
          if (msg === null) continue
          const key = msg.subject.slice(`$KV.${bucketName}.`.length)
          const operation = msg.header?.get("KV-Operation")
          if (operation === "DEL" || operation === "PURGE") delete all[key]
          else all[key] = new TextDecoder().decode(msg.data)
        }
        return all
      })
    )
  )

/** Until every projection's checkpoint has reached the last event of the store. */
const awaitProjectionsCaughtUp = (gw: Gateway) =>
  gw.provide(
    eventually(
      Effect.gen(function* () {
        const store = yield* EventStore
        const head = (yield* store.readAll().pipe(Stream.runLast)).pipe((last) =>
          last._tag === "Some" ? last.value.position : 0
        )
        const names = [...(yield* readModels).map((m) => m.projection.name), ...reactors.map((r) => r.name)]
        for (const name of names) {
          const checkpoint = yield* Checkpoints.load(name)
          if (checkpoint.position < head)
            return yield* Effect.fail(`${name} at ${checkpoint.position} < ${head}`)
        }
      }),
      "60 seconds"
    )
  )

const numbers = Array.from({ length: 40 }, (_, i) => `+4479111${String(23400 + i).padStart(5, "0")}`)

describe("read side", () => {
  it.live(
    "a rebuild from position 0 yields exactly the read models live processing built; a second changes nothing",
    () =>
      Effect.gen(function* () {
        // retries (5xx), permanent failures (invalid numbers answered at once), failed and invalid DLRs
        const sim = yield* simulator({
          errorRate: 0.15,
          invalidPrefixes: ["+447911123401", "+447911123402"],
          dlr: {
            delayMs: { min: 0, max: 20 },
            outcomes: { delivered: 0.85, undelivered: 0.1, invalid: 0.05 }
          }
        })
        const gw = yield* startGateway([
          providerEntry("p", sim.url, { retry: { initialDelayMs: 20, maxRetries: 6, maxDelayMs: 100 } })
        ])
        const ids = yield* Effect.forEach(
          Array.from({ length: 2000 }, (_, i) => i),
          (i) => gw.send({ to: numbers[i % numbers.length] }),
          { concurrency: 50 }
        )
        const final = yield* awaitFinal(gw, ids, "90 seconds")
        yield* awaitProjectionsCaughtUp(gw)
        const failures = final.filter((l) => l.state.status === "failed").length
        const retried = final.filter((l) => l.events.some((e) => e._tag === "SmsRetried")).length
        expect(failures).toBeGreaterThan(0)
        expect(retried).toBeGreaterThan(0)

        const models = yield* gw.provide(readModels)
        const live = yield* Effect.forEach(models, (m) => snapshot(gw, m.bucketName))
        // numbers were deactivated, and some messages were refused for it
        expect(
          Object.values(live[1] ?? {}).some(
            (p) => (JSON.parse(String(p)) as { status: string }).status === "inactive"
          )
        ).toBe(true)

        for (const model of models) yield* gw.provide(rebuild(model))
        const rebuilt = yield* Effect.forEach(models, (m) => snapshot(gw, m.bucketName))
        expect(rebuilt).toEqual(live)

        for (const model of models) yield* gw.provide(rebuild(model))
        expect(yield* Effect.forEach(models, (m) => snapshot(gw, m.bucketName))).toEqual(live)
      }).pipe(Effect.scoped),
    { timeout: 180_000 }
  )

  it.live(
    "an invalid-number DLR deactivates the number; the next message is refused unsent; reactivation lets it through",
    () =>
      Effect.gen(function* () {
        const sim = yield* simulator({ dlr: { delayMs: { min: 0, max: 5 }, outcomes: { invalid: 1 } } })
        const gw = yield* startGateway([providerEntry("p", sim.url)])
        const to = "+447911123499"
        const first = yield* gw.send({ to })
        const [failed] = yield* awaitFinal(gw, [first])
        expect(failed?.events.at(-1)).toMatchObject({ _tag: "SmsFailed", reason: "invalid_number" })

        const inactive = yield* eventually(
          Effect.flatMap(gw.provide(getPhoneNumber(to)), (view) =>
            view._tag === "Some" && view.value.status === "inactive"
              ? Effect.succeed(view.value)
              : Effect.fail(view)
          )
        )
        expect(inactive.history).toMatchObject([
          { event: "PhoneDeactivated", messageId: first, provider: "p" }
        ])

        const refused = yield* gw.send({ to })
        const [refusal] = yield* awaitFinal(gw, [refused])
        expect(refusal?.events.map((e) => e._tag)).toEqual(["SmsRequested", "SmsFailed"])
        expect(refusal?.events[1]).toMatchObject({ reason: "recipient_inactive" })
        expect(sim.submissions()).toHaveLength(1)

        // over HTTP: auditors and admins read it, only an admin reactivates it, and only once
        const admin = yield* issueApiKey(gw.natsUrl, "ops", "admin")
        const client = yield* issueApiKey(gw.natsUrl, "shop", "client")
        const call = (method: string, path: string, key: string, body?: unknown) =>
          Effect.promise(async () => {
            const response = await fetch(`${gw.publicUrl}${path}`, {
              method,
              headers: { "x-api-key": key, "content-type": "application/json" },
              body: body === undefined ? undefined : JSON.stringify(body)
            })
            return { status: response.status, body: (await response.json()) as Record<string, unknown> }
          })
        const digits = to.slice(1)
        const seen = yield* call("GET", `/v1/phone-numbers/${encodeURIComponent(to)}`, admin)
        expect(seen).toMatchObject({
          status: 200,
          body: { number: to, status: "inactive", reason: "invalid_number" }
        })
        expect((yield* call("GET", `/v1/phone-numbers/${digits}`, client)).status).toBe(403)
        expect(
          (yield* call("POST", `/v1/phone-numbers/${digits}/reactivate`, client, { reason: "x" })).status
        ).toBe(403)
        expect((yield* call("GET", "/v1/phone-numbers/12", admin)).body).toMatchObject({
          _tag: "InvalidRequest",
          field: "number"
        })
        const reactivated = yield* call("POST", `/v1/phone-numbers/${digits}/reactivate`, admin, {
          reason: "ported"
        })
        expect(reactivated).toMatchObject({ status: 200, body: { status: "active", reason: "ported" } })
        const twice = yield* call("POST", `/v1/phone-numbers/${digits}/reactivate`, admin, {
          reason: "again"
        })
        expect(twice).toMatchObject({ status: 409, body: { _tag: "PhoneNumberActive" } })
        const history = yield* eventually(
          Effect.flatMap(call("GET", `/v1/phone-numbers/${digits}`, admin), (r) =>
            r.body.status === "active" ? Effect.succeed(r.body) : Effect.fail(r)
          )
        )
        expect(
          (history.history as ReadonlyArray<{ event: string; by?: string }>).map((h) => [h.event, h.by])
        ).toEqual([
          ["PhoneDeactivated", undefined],
          ["PhoneReactivated", "ops"]
        ])

        // the first message as it was known just after its request was recorded, and now
        const recorded = (yield* call("GET", `/v1/messages/${first}/events`, admin)).body
          .events as ReadonlyArray<{
          recordedAt: string
        }>
        const asOf = new Date(Date.parse(recorded[0]?.recordedAt ?? "") + 1).toISOString()
        expect(
          (yield* call("GET", `/v1/messages/${first}?asOf=${encodeURIComponent(asOf)}`, admin)).body.status
        ).toBe("requested")
        expect((yield* call("GET", `/v1/messages/${first}`, admin)).body.status).toBe("failed")

        const again = yield* gw.send({ to })
        const [resent] = yield* awaitFinal(gw, [again])
        expect(resent?.events.some((e) => e._tag === "SmsDispatched")).toBe(true)
        expect(sim.submissions()).toHaveLength(2)
      }).pipe(Effect.scoped),
    { timeout: 60_000 }
  )

  it.live(
    "early, duplicated and shuffled DLRs, and one a day late, all end in the right final status",
    () =>
      Effect.gen(function* () {
        const noisy = yield* simulator({
          dlr: {
            delayMs: { min: 0, max: 50 },
            earlyRate: 0.5,
            duplicateRate: 1,
            outcomes: { delivered: 0.7, undelivered: 0.3 }
          }
        })
        const silent = yield* simulator({ dlr: { enabled: false } })
        const gw = yield* startGateway([
          providerEntry("noisy", noisy.url),
          providerEntry("silent", silent.url)
        ])
        const ids = yield* Effect.forEach(
          Array.from({ length: 60 }),
          () => gw.send({ providers: ["noisy"] }),
          {
            concurrency: 20
          }
        )
        const final = yield* awaitFinal(gw, ids)
        for (const loaded of final) {
          const outcome = loaded.events.find((e) => e._tag === "SmsDelivered" || e._tag === "SmsFailed")
          // exactly one final event despite every report arriving twice
          expect(
            loaded.events.filter((e) => e._tag === "SmsDelivered" || e._tag === "SmsFailed")
          ).toHaveLength(1)
          const ref = loaded.state.status === "none" ? "" : loaded.state.request.messageId
          const submitted = noisy.submissions(ref)[0]
          expect(submitted?.outcome).toBe("accepted")
          expect(outcome?._tag).toBeDefined()
        }
        expect(noisy.stats().dlrEarly).toBeGreaterThan(0)

        // a report a day after the dispatch still lands: nothing about matching expires
        const late = yield* gw.send({ providers: ["silent"] })
        const dispatched = yield* eventually(
          Effect.flatMap(gw.load(late), (l) =>
            l.state.status === "dispatched" ? Effect.succeed(l) : Effect.fail(l)
          )
        )
        const providerMessageId =
          dispatched.state.status === "none" ? "" : (dispatched.state.providerMessageId ?? "")
        const dayLater = new Date(Date.now() + 24 * 3600 * 1000).toISOString()
        const { publicUrl } = gw
        const status = yield* postSignedReport(publicUrl, "silent", {
          messageId: providerMessageId,
          reference: late,
          status: "delivered",
          timestamp: dayLater
        })
        expect(status).toBe(200)
        const [landed] = yield* awaitFinal(gw, [late as MessageId])
        expect(landed?.state.status).toBe("delivered")

        // a provider that does not echo our reference: the report finds its message through the
        // provider-id index the provider actor wrote when it recorded the dispatch
        const unreferenced = yield* gw.send({ providers: ["silent"] })
        const sent = yield* eventually(
          Effect.flatMap(gw.load(unreferenced), (l) =>
            l.state.status === "dispatched" ? Effect.succeed(l) : Effect.fail(l)
          )
        )
        const bareStatus = yield* postSignedReport(publicUrl, "silent", {
          messageId: sent.state.status === "none" ? "" : (sent.state.providerMessageId ?? ""),
          status: "delivered",
          timestamp: new Date().toISOString()
        })
        expect(bareStatus).toBe(200)
        const [found] = yield* awaitFinal(gw, [unreferenced as MessageId])
        expect(found?.state.status).toBe("delivered")
      }).pipe(Effect.scoped),
    { timeout: 60_000 }
  )

  it.live(
    "notifications are published once per status per message",
    () =>
      Effect.gen(function* () {
        const sim = yield* simulator({ dlr: { delayMs: { min: 0, max: 5 }, duplicateRate: 1 } })
        const gw = yield* startGateway([providerEntry("p", sim.url)])
        const ids = yield* Effect.forEach(Array.from({ length: 50 }), () => gw.send(), { concurrency: 20 })
        yield* awaitFinal(gw, ids)
        yield* awaitProjectionsCaughtUp(gw)
        const published = yield* gw.provide(
          Effect.flatMap(Nats, ({ jsm }) =>
            Effect.promise(async () => {
              const info = await jsm.streams.info("SMS_NOTIFICATIONS")
              const all: Array<{ messageId: string; status: string }> = []
              for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
                const msg = await jsm.streams.getMessage("SMS_NOTIFICATIONS", { seq })
                if (msg !== null) all.push(JSON.parse(new TextDecoder().decode(msg.data)))
              }
              return all
            })
          )
        )
        const keys = published.map((n) => `${n.messageId}:${n.status}`)
        expect(new Set(keys).size).toBe(keys.length)
        expect(keys.filter((k) => k.endsWith(":dispatched"))).toHaveLength(50)
        expect(keys.filter((k) => k.endsWith(":delivered"))).toHaveLength(50)
        expect(new Set(published.map((n) => n.messageId))).toEqual(new Set(ids))
      }).pipe(Effect.scoped),
    { timeout: 60_000 }
  )
})
