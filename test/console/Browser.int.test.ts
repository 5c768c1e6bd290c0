/**
 * The console in a real browser (Debian's Chromium driven by playwright-core) against a whole
 * gateway: sign in, send through the HTTP API, find the message by part of its recipient, open it
 * and see its timeline reach delivered; resubmit a dead letter; issue and revoke a key and see the
 * API refuse it; the overview's figures updated by server-sent events; nothing refused by the
 * Content-Security-Policy.
 *
 * `CONSOLE_SCREENSHOT=docs/console-message.png` keeps the message page's screenshot there (the
 * README's picture); otherwise it goes to a temporary folder.
 */
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { Effect } from "effect"
import { describe, expect, it } from "@effect/vitest"
import { chromium, type Page } from "playwright-core"
import { eventually } from "../support/gateway.js"
import { sendSms, startConsoleGateway } from "./support.js"

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync"
]

const launch = Effect.acquireRelease(
  Effect.promise(() => chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS })),
  (browser) => Effect.promise(() => browser.close())
)

const run = <A>(f: () => Promise<A>) => Effect.tryPromise({ try: f, catch: (cause) => cause })

/** Reloads `page` at `url` until `selector` is on it. */
const reloadUntil = (page: Page, url: string, selector: string) =>
  eventually(
    run(async () => {
      await page.goto(url)
      if ((await page.locator(selector).count()) === 0) throw new Error(`${url}: no ${selector} yet`)
    }),
    "20 seconds"
  )

const screenshotPath = Effect.acquireRelease(
  Effect.sync(() => {
    const kept = process.env.CONSOLE_SCREENSHOT
    if (kept !== undefined && kept !== "") return { path: kept, dir: undefined }
    const dir = mkdtempSync(join(tmpdir(), "console-shot-"))
    return { path: join(dir, "console-message.png"), dir }
  }),
  ({ dir }) => Effect.sync(() => dir !== undefined && rmSync(dir, { recursive: true, force: true }))
)

describe("operator console in Chromium", () => {
  it.scopedLive(
    "sign in, find a message by its recipient and follow it to delivered, resubmit a dead letter, revoke a key",
    () =>
      Effect.gen(function* () {
        const { base, keys } = yield* startConsoleGateway
        const browser = yield* launch
        const context = yield* Effect.promise(() =>
          browser.newContext({ viewport: { width: 1280, height: 900 } })
        )
        const page = yield* Effect.promise(() => context.newPage())
        const refused: Array<string> = []
        page.on("console", (message) => {
          if (message.type() === "error" && !message.text().includes("401 (Unauthorized)"))
            refused.push(message.text())
        })
        page.on("pageerror", (error) => refused.push(error.message))

        // without a session: the sign-in form; a client key is turned away, an admin key signs in
        yield* run(() => page.goto(`${base}/console/messages`))
        expect(new URL(page.url()).pathname).toBe("/console/login")
        yield* run(() => page.fill("#apiKey", keys.client))
        yield* run(() => page.click("button[type=submit]"))
        expect(yield* run(() => page.textContent(".notice.error"))).toContain("a client key cannot sign in")
        yield* run(() => page.fill("#apiKey", keys.admin))
        yield* run(() => page.click("button[type=submit]"))
        yield* run(() => page.waitForURL(`${base}/console`))
        expect(yield* run(() => page.textContent("header .who"))).toBe("ops · admin")

        // the overview's figures are replaced by server-sent events (htmx's sse extension)
        const stamp = () => run(() => page.textContent("#figures p.muted.small"))
        const first = yield* stamp()
        yield* eventually(
          Effect.flatMap(stamp(), (now) => (now !== first ? Effect.void : Effect.fail("not updated yet"))),
          "10 seconds"
        )

        // a message through the API, found by part of its number, followed to delivered
        const sent = yield* sendSms(
          base,
          keys.client,
          { to: "+447911123999", body: "seen in a browser" },
          "browser-1"
        )
        expect(sent.status).toBe(202)
        const messageId = String(sent.json.messageId)
        yield* run(() => page.goto(`${base}/console/messages`))
        yield* run(() => page.fill("input[name=to]", "1123999"))
        yield* run(() => page.click("form.filters button[type=submit]"))
        expect(new URL(page.url()).searchParams.get("to")).toBe("1123999")
        const link = `a[href="/console/messages/${messageId}"]`
        yield* reloadUntil(page, page.url(), link)
        yield* run(() => page.click(link))
        yield* reloadUntil(page, `${base}/console/messages/${messageId}`, 'li[data-type="SmsDelivered"]')
        expect(yield* run(() => page.locator("#timeline li").count())).toBeGreaterThanOrEqual(3)
        expect(yield* run(() => page.textContent("#status"))).toContain("delivered")
        // the raw event one click away
        const raw = page.locator('li[data-type="SmsDispatched"] details')
        yield* run(() => raw.locator("summary").click())
        expect(yield* run(() => raw.locator("pre").isVisible())).toBe(true)
        expect(yield* run(() => raw.locator("pre").textContent())).toContain('"provider": "good"')
        const shot = yield* screenshotPath
        yield* run(() => page.screenshot({ path: shot.path, fullPage: true }))

        // a dead letter, resubmitted to the other provider from its row
        const doomed = yield* sendSms(base, keys.admin, {
          to: "+447911888999",
          body: "doomed",
          providers: ["broken"]
        })
        const deadId = String(doomed.json.messageId)
        const form = `form[action="/console/dead-letters/${deadId}/resubmit"]`
        yield* reloadUntil(page, `${base}/console/dead-letters`, form)
        yield* run(() => page.selectOption(`${form} select[name=provider]`, "good"))
        yield* run(() => page.fill(`${form} input[name=reason]`, "broken provider is down"))
        yield* run(() => page.click(`${form} button[type=submit]`))
        expect(yield* run(() => page.textContent(".notice.ok"))).toContain(`resubmitted ${deadId}`)
        yield* reloadUntil(page, `${base}/console/messages/${deadId}`, 'li[data-type="SmsDelivered"]')
        expect(yield* run(() => page.textContent('li[data-type="SmsResubmitted"]'))).toContain(
          "broken provider is down"
        )

        // a key issued (shown once), used, revoked: the API refuses it
        yield* run(() => page.goto(`${base}/console/clients`))
        yield* run(() => page.fill("#issue-key input[name=clientId]", "browser-shop"))
        yield* run(() => page.selectOption("#issue-key select[name=scope]", "client"))
        yield* run(() => page.click("#issue-key button[type=submit]"))
        const apiKey = ((yield* run(() => page.textContent("#new-key"))) ?? "").trim()
        expect((yield* sendSms(base, apiKey, { to: "+447911123457", body: "new key" })).status).toBe(202)
        yield* run(() => page.goto(`${base}/console/clients`))
        const keyRow = page.locator("tr[data-key]").filter({ has: page.locator("form[action$='/revoke']") })
        const keyIds = yield* run(() =>
          keyRow.evaluateAll((rows) => rows.map((r) => r.getAttribute("data-key") ?? ""))
        )
        const keyId = keyIds.find((id) => id !== "" && apiKey.includes(id))
        expect(keyId).toBeDefined()
        yield* run(() => page.click(`tr[data-key="${keyId}"] button.danger`))
        expect(yield* run(() => page.textContent(".notice.ok"))).toContain(`revoked ${keyId}`)
        yield* eventually(
          Effect.flatMap(sendSms(base, apiKey, { to: "+447911123457", body: "revoked" }), (answer) =>
            answer.status === 401 ? Effect.void : Effect.fail(`the API answered ${answer.status}`)
          ),
          "15 seconds"
        )

        // signing out ends it
        yield* run(() => page.click("header form button"))
        yield* run(() => page.waitForURL(`${base}/console/login`))
        yield* run(() => page.goto(`${base}/console`))
        expect(new URL(page.url()).pathname).toBe("/console/login")

        // no script error, nothing the Content-Security-Policy refused, nothing missing (the client key's 401 aside)
        expect(refused).toEqual([])
      }),
    90_000
  )
})
