/**
 * The console's pages and actions over a real socket, against a whole gateway on a real
 * nats-server: who may see what, who may do what, forged forms refused, each page's data.
 */
import { Context, Effect, Layer } from "effect"
import { describe, expect, layer } from "@effect/vitest"
import { eventually } from "../support/gateway.js"
import { CONTENT_SECURITY_POLICY } from "../../src/console/Security.js"
import { maskNumber } from "../../src/domain/PhoneNumber.js"
import { consoleClient, INVALID_PREFIX, sendSms, signedIn, startConsoleGateway } from "./support.js"

class Gateway extends Context.Tag("test/ConsoleGateway")<
  Gateway,
  Effect.Effect.Success<typeof startConsoleGateway>
>() {}

const GatewayLive = Layer.scoped(Gateway, startConsoleGateway)

/** Until the page at `path` (for `client`) contains `text`. */
const pageShowing = (client: ReturnType<typeof consoleClient>, path: string, text: string | RegExp) =>
  eventually(
    Effect.flatMap(client.get(path), (answer) =>
      (typeof text === "string" ? answer.text.includes(text) : text.test(answer.text))
        ? Effect.succeed(answer)
        : Effect.fail(`${path} does not show ${text}`)
    ),
    "20 seconds"
  )

describe("operator console", () => {
  layer(GatewayLive, { excludeTestServices: true, timeout: "90 seconds" })(
    "against a running gateway",
    (it) => {
      it.effect("without a session every console URL leads to sign-in; the sign-in page is protected", () =>
        Effect.gen(function* () {
          const { base } = yield* Gateway
          const anonymous = consoleClient(base)
          for (const path of [
            "/console",
            "/console/messages",
            "/console/messages/abc",
            "/console/clients",
            "/console/messages.csv",
            "/console/overview/stream"
          ]) {
            const answer = yield* anonymous.get(path)
            expect([path, answer.status, answer.location]).toEqual([path, 303, "/console/login"])
          }
          const post = yield* anonymous.post("/console/clients/keys", { clientId: "x", scope: "admin" })
          expect([post.status, post.location]).toEqual([303, "/console/login"])
          const login = yield* anonymous.get("/console/login")
          expect(login.status).toBe(200)
          expect(login.headers.get("content-security-policy")).toBe(CONTENT_SECURITY_POLICY)
          expect(CONTENT_SECURITY_POLICY).not.toContain("unsafe-inline")
          expect(login.headers.get("x-frame-options")).toBe("DENY")
          expect(login.text).not.toMatch(/<script>|<style>| style="/)
          // the assets are served by the gateway itself
          const htmx = yield* anonymous.get("/console/assets/htmx.min.js")
          expect([htmx.status, htmx.headers.get("content-type")]).toEqual([
            200,
            "text/javascript; charset=utf-8"
          ])
        })
      )

      it.effect(
        "a client key cannot sign in, nor an unknown one; admin and auditor keys can, with a strict cookie",
        () =>
          Effect.gen(function* () {
            const { base, keys } = yield* Gateway
            const asClient = consoleClient(base)
            const refused = yield* asClient.signIn(keys.client)
            expect(refused.status).toBe(401)
            expect(refused.text).toContain("a client key cannot sign in")
            expect(asClient.jar.has("sms_console")).toBe(false)
            const unknown = yield* consoleClient(base).signIn("sk_nope_0000")
            expect(unknown.status).toBe(401)

            const admin = consoleClient(base)
            const ok = yield* admin.signIn(keys.admin)
            expect([ok.status, ok.location]).toEqual([303, "/console"])
            const cookie = ok.headers.getSetCookie().find((c) => c.startsWith("sms_console="))
            expect(cookie).toMatch(/HttpOnly/)
            expect(cookie).toMatch(/SameSite=Strict/)
            expect(cookie).toMatch(/Path=\/console/)
            expect(cookie).not.toMatch(/Secure/)
            const overview = yield* admin.get("/console")
            expect(overview.status).toBe(200)
            expect(overview.text).toContain("ops · admin")

            // behind an https proxy the cookie is Secure
            const behindTls = consoleClient(base)
            yield* behindTls.get("/console/login", { "x-forwarded-proto": "https" })
            const secure = yield* behindTls.post(
              "/console/login",
              { apiKey: keys.auditor },
              { "x-forwarded-proto": "https" }
            )
            expect(secure.headers.getSetCookie().find((c) => c.startsWith("sms_console="))).toMatch(/Secure/)
          })
      )

      it.effect("a forged cross-site form is refused: sign-in, and an admin's action", () =>
        Effect.gen(function* () {
          const { base, keys } = yield* Gateway
          // a sign-in posted from another site (no form token, the browser says cross-site)
          const forgedLogin = yield* consoleClient(base).post(
            "/console/login",
            { apiKey: keys.admin },
            { "sec-fetch-site": "cross-site", origin: "https://evil.example" }
          )
          expect(forgedLogin.status).toBe(403)
          const admin = yield* signedIn(base, keys.admin)
          const crossSite = yield* admin.post(
            "/console/clients/keys",
            { clientId: "forged", scope: "admin" },
            { "sec-fetch-site": "cross-site", origin: "https://evil.example" }
          )
          expect(crossSite.status).toBe(403)
          const noToken = yield* admin.post("/console/clients/keys", {
            _csrf: "",
            clientId: "forged",
            scope: "admin"
          })
          expect(noToken.status).toBe(403)
          const wrongOrigin = yield* admin.post(
            "/console/clients/keys",
            { clientId: "forged", scope: "admin" },
            { origin: "http://127.0.0.2:1" }
          )
          expect(wrongOrigin.status).toBe(403)
          const clients = yield* admin.get("/console/clients")
          expect(clients.text).not.toContain("forged")
        })
      )

      it.effect("an auditor sees everything and changes nothing; numbers are masked for it", () =>
        Effect.gen(function* () {
          const { base, keys } = yield* Gateway
          const sent = yield* sendSms(base, keys.admin, { to: "+447911123457", body: "for the auditor" })
          expect(sent.status, JSON.stringify(sent.json)).toBe(202)
          const messageId = String(sent.json.messageId)
          const auditor = yield* signedIn(base, keys.auditor)
          const list = yield* pageShowing(
            auditor,
            `/console/messages?id=${messageId}`,
            messageId.slice(0, 13)
          )
          expect(list.text).not.toContain("+447911123457")
          expect(list.text).toContain(maskNumber("+447911123457"))
          const one = yield* auditor.get(`/console/messages/${messageId}`)
          expect(one.text).not.toContain("+447911123457")
          const csv = yield* auditor.get(`/console/messages.csv?id=${messageId}`)
          expect(csv.text).not.toContain("+447911123457")
          expect(csv.text.split("\r\n")[1]).toContain(maskNumber("+447911123457"))
          const clients = yield* auditor.get("/console/clients")
          expect(clients.text).not.toContain("Issue a key")
          expect(clients.text).not.toContain("Revoke")
          for (const [path, fields] of [
            ["/console/clients/keys", { clientId: "by-auditor", scope: "admin" }],
            ["/console/clients/shop/quota", { dailyQuota: "1" }],
            ["/console/phone-numbers/+447911123457/reactivate", { reason: "x" }],
            [`/console/dead-letters/${messageId}/resubmit`, { provider: "good", reason: "x" }]
          ] as const) {
            const refused = yield* auditor.post(path, fields)
            expect([path, refused.status]).toEqual([path, 403])
          }
          const admin = yield* signedIn(base, keys.admin)
          expect((yield* admin.get("/console/clients")).text).not.toContain("by-auditor")
          const adminView = yield* admin.get(`/console/messages?id=${messageId}`)
          expect(adminView.text).toContain("+447911123457")
        })
      )

      it.effect(
        "messages: found by part of the recipient and by tracking id, timeline to delivered, as-of, CSV",
        () =>
          Effect.gen(function* () {
            const { base, keys } = yield* Gateway
            const sent = yield* sendSms(
              base,
              keys.client,
              { to: "+447911777321", body: "find me" },
              "order-4711"
            )
            expect(sent.status).toBe(202)
            const messageId = String(sent.json.messageId)
            const admin = yield* signedIn(base, keys.admin)
            const byRecipient = yield* pageShowing(
              admin,
              "/console/messages?to=777321&status=delivered",
              messageId.slice(0, 13)
            )
            expect(byRecipient.text).toContain("+447911777321")
            const byTracking = yield* admin.get("/console/messages?id=order-4711")
            expect(byTracking.text).toContain(messageId.slice(0, 13))
            const byClient = yield* admin.get("/console/messages?client=nobody")
            expect(byClient.text).toContain("no message matches")

            const one = yield* pageShowing(
              admin,
              `/console/messages/${messageId}`,
              'data-type="SmsDelivered"'
            )
            expect(one.text).toContain('data-type="SmsRequested"')
            expect(one.text).toContain('data-type="SmsDispatched"')
            expect(one.text).toContain("<details><summary>raw event</summary>")
            expect(one.text).toMatch(/· \+\d/)
            const past = yield* admin.get(`/console/messages/${messageId}?asOf=2020-01-01T00:00:00`)
            expect(past.text).toContain("not yet recorded")
            const now = yield* admin.get(`/console/messages/${messageId}?asOf=2099-01-01T00:00:00`)
            expect(now.text).toMatch(/class="status delivered"/)

            const csv = yield* admin.get("/console/messages.csv?to=777321")
            expect(csv.headers.get("content-type")).toContain("text/csv")
            const [header, row] = csv.text.split("\r\n")
            expect(header).toBe(
              "messageId,requestedAt,status,clientId,recipient,provider,attempts,idempotencyKey,trackingId,dispatchedAt,deliveredAt,failedAt,failureReason,lastError"
            )
            expect(row).toContain(`${messageId},`)
            expect(row).toContain(",delivered,shop,+447911777321,good,1,")

            const unknown = yield* admin.get("/console/messages/not-a-message")
            expect(unknown.status).toBe(404)
            expect((yield* admin.get("/console/messages/%E0%A4%A")).status).toBe(404)
            expect((yield* admin.get("/console/no-such-page")).status).toBe(404)
          })
      )

      it.effect(
        "clients & keys: a key issued is shown once, never listed; revoked, the API refuses it; a quota changes",
        () =>
          Effect.gen(function* () {
            const { base, keys } = yield* Gateway
            const admin = yield* signedIn(base, keys.admin)
            const issued = yield* admin.post("/console/clients/keys", {
              clientId: "newshop",
              scope: "client",
              dailyQuota: "500"
            })
            expect(issued.status).toBe(200)
            const apiKey = /<pre id="new-key">([^<]+)<\/pre>/.exec(issued.text)?.[1] ?? ""
            expect(apiKey).not.toBe("")
            const listed = yield* admin.get("/console/clients")
            expect(listed.text).toContain("newshop")
            expect(listed.text).not.toContain(apiKey)
            expect(listed.text).not.toContain(keys.admin)
            const accepted = yield* sendSms(base, apiKey, { to: "+447911000111", body: "new key" })
            expect(accepted.status).toBe(202)

            const keyId =
              /data-key="([^"]+)"><td class="mono">[^<]+<\/td><td>client<\/td>[\s\S]*?newshop/.exec(
                listed.text
              )?.[1]
            const keyRow = [...listed.text.matchAll(/<tr data-key="([^"]+)">/g)].map((m) => m[1] ?? "")
            const newKeyId = keyRow.find((id) => apiKey.includes(id)) ?? keyId ?? ""
            expect(newKeyId).not.toBe("")
            const revoked = yield* admin.post(`/console/clients/keys/${newKeyId}/revoke`)
            expect([revoked.status, revoked.location]).toContain(303)
            yield* eventually(
              Effect.flatMap(sendSms(base, apiKey, { to: "+447911000111", body: "revoked key" }), (answer) =>
                answer.status === 401 ? Effect.void : Effect.fail(`answered ${answer.status}`)
              ),
              "15 seconds"
            )

            // a session lasts only while its key does
            const second = yield* admin.post("/console/clients/keys", { clientId: "ops2", scope: "admin" })
            const secondKey = /<pre id="new-key">([^<]+)<\/pre>/.exec(second.text)?.[1] ?? ""
            const secondSession = yield* signedIn(base, secondKey)
            expect((yield* secondSession.get("/console")).status).toBe(200)
            const secondId = [
              ...(yield* admin.get("/console/clients")).text.matchAll(/<tr data-key="([^"]+)">/g)
            ]
              .map((m) => m[1] ?? "")
              .find((id) => secondKey.includes(id))
            yield* admin.post(`/console/clients/keys/${secondId}/revoke`)
            yield* eventually(
              Effect.flatMap(secondSession.get("/console"), (answer) =>
                answer.location === "/console/login" ? Effect.void : Effect.fail(`answered ${answer.status}`)
              ),
              "15 seconds"
            )

            const quota = yield* admin.post("/console/clients/newshop/quota", { dailyQuota: "7" })
            expect(quota.status).toBe(303)
            const after = yield* admin.get("/console/clients")
            expect(after.text).toMatch(/name="dailyQuota" value="7"/)
            const bad = yield* admin.post("/console/clients/newshop/quota", { dailyQuota: "lots" })
            expect(bad.text).toContain("a quota is a whole number")
          })
      )

      it.effect("dead letters: listed; an admin resubmits one to another provider, with who and why", () =>
        Effect.gen(function* () {
          const { base, keys } = yield* Gateway
          const sent = yield* sendSms(base, keys.admin, {
            to: "+447911888999",
            body: "doomed",
            providers: ["broken"]
          })
          const messageId = String(sent.json.messageId)
          const admin = yield* signedIn(base, keys.admin)
          const listed = yield* pageShowing(
            admin,
            "/console/dead-letters",
            `/console/dead-letters/${messageId}/resubmit`
          )
          expect(listed.text).toContain("retries_exhausted")
          const auditor = yield* signedIn(base, keys.auditor)
          const auditorView = yield* auditor.get("/console/dead-letters")
          expect(auditorView.text).toContain(messageId.slice(0, 13))
          expect(auditorView.text).not.toContain("/resubmit")

          const missingReason = yield* admin.post(`/console/dead-letters/${messageId}/resubmit`, {
            provider: "good",
            reason: ""
          })
          expect(missingReason.status).toBe(400)
          const done = yield* admin.post(`/console/dead-letters/${messageId}/resubmit`, {
            provider: "good",
            reason: "broken is down"
          })
          expect([done.status, done.location]).toEqual([
            303,
            `/console/dead-letters?resubmitted=${messageId}`
          ])
          const delivered = yield* pageShowing(
            admin,
            `/console/messages/${messageId}`,
            'data-type="SmsDelivered"'
          )
          expect(delivered.text).toContain('data-type="SmsResubmitted"')
          expect(delivered.text).toContain("by ops (console, key ")
          expect(delivered.text).toContain("reason broken is down")
          // a second resubmission of a delivered message is the domain's to refuse
          const again = yield* admin.post(`/console/dead-letters/${messageId}/resubmit`, {
            provider: "good",
            reason: "again"
          })
          expect(again.status).toBe(409)
        })
      )

      it.effect(
        "phone numbers: an invalid number is listed inactive with why and since; an admin reactivates it",
        () =>
          Effect.gen(function* () {
            const { base, keys } = yield* Gateway
            const number = `${INVALID_PREFIX}01`
            const sent = yield* sendSms(base, keys.admin, { to: number, body: "to nowhere" })
            expect(sent.status, JSON.stringify(sent.json)).toBe(202)
            const admin = yield* signedIn(base, keys.admin)
            const list = yield* pageShowing(admin, "/console/phone-numbers", number)
            expect(list.text).toContain("invalid_number")
            const auditor = yield* signedIn(base, keys.auditor)
            expect((yield* auditor.get("/console/phone-numbers")).text).not.toContain(number)
            const one = yield* pageShowing(
              admin,
              `/console/phone-numbers/${encodeURIComponent(number)}`,
              "PhoneDeactivated"
            )
            expect(one.text).toContain("Reactivate")
            const done = yield* admin.post(
              `/console/phone-numbers/${encodeURIComponent(number)}/reactivate`,
              { reason: "ported back" }
            )
            expect(done.status).toBe(303)
            const after = yield* pageShowing(
              admin,
              `/console/phone-numbers/${encodeURIComponent(number)}`,
              "PhoneReactivated"
            )
            expect(after.text).toContain("ported back")
            expect(after.text).toMatch(/class="status active"/)
            yield* pageShowing(admin, "/console/phone-numbers", /0 inactive numbers/)
          })
      )

      it.effect(
        "providers and overview: circuit, backlog, rates and latency; live figures by server-sent events",
        () =>
          Effect.gen(function* () {
            const { base, keys } = yield* Gateway
            yield* sendSms(base, keys.admin, { to: "+447911222333", body: "for the figures" })
            const auditor = yield* signedIn(base, keys.auditor)
            const providers = yield* pageShowing(
              auditor,
              "/console/providers",
              /data-provider="good">[\s\S]*?class="status closed"/
            )
            expect(providers.text).toContain('data-provider="broken"')
            const overview = yield* pageShowing(
              auditor,
              "/console",
              /id="rate-delivered"><div class="value">0\.[0-9]*[1-9]/
            )
            expect(overview.text).toContain('sse-connect="/console/overview/stream"')
            expect(overview.text).toContain("deploy/grafana-dashboard.json")
            expect(overview.text).not.toContain("Rebuild")
            // one event of the stream, read raw
            const event = yield* Effect.promise(async () => {
              const controller = new AbortController()
              const response = await fetch(`${base}/console/overview/stream`, {
                headers: { cookie: [...auditor.jar].map(([k, v]) => `${k}=${v}`).join("; ") },
                signal: controller.signal
              })
              const reader = response.body?.getReader()
              const first = reader === undefined ? undefined : await reader.read()
              controller.abort()
              return {
                type: response.headers.get("content-type"),
                text: new TextDecoder().decode(first?.value)
              }
            })
            expect(event.type).toBe("text/event-stream")
            expect(event.text.startsWith("event: figures\ndata: ")).toBe(true)
            expect(event.text).toContain("to delivery p50 / p99")

            // an admin rebuilds this process's search store: the list is whole again
            const admin = yield* signedIn(base, keys.admin)
            expect((yield* auditor.post("/console/search/rebuild")).status).toBe(403)
            const before = yield* admin.get("/console/messages?to=7911222333")
            const rebuilt = yield* admin.post("/console/search/rebuild")
            expect([rebuilt.status, rebuilt.location]).toEqual([303, "/console?rebuilt=1"])
            const after = yield* pageShowing(admin, "/console/messages?to=7911222333", "+447911222333")
            expect(after.text.match(/<tr>/g)?.length).toBe(before.text.match(/<tr>/g)?.length)
          })
      )

      it.effect("signing out ends the session", () =>
        Effect.gen(function* () {
          const { base, keys } = yield* Gateway
          const admin = yield* signedIn(base, keys.admin)
          const token = admin.jar.get("sms_console") ?? ""
          const out = yield* admin.post("/console/logout")
          expect([out.status, out.location]).toEqual([303, "/console/login"])
          const replayed = consoleClient(base)
          replayed.jar.set("sms_console", token)
          const after = yield* replayed.get("/console")
          expect([after.status, after.location]).toEqual([303, "/console/login"])
        })
      )
    }
  )
})
