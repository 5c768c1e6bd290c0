/** What keeps the console's pages safe without a browser: escaping, forgery checks, CSV cells, masking. */
import { describe, expect, it } from "@effect/vitest"
import { crossSiteReason, forgeryReason, tokensMatch } from "../../src/console/Csrf.js"
import { html, join, trusted } from "../../src/console/Html.js"
import { maskedText, seesNumbers, shownNumber } from "../../src/console/Layout.js"
import { csvField } from "../../src/console/MessagesPage.js"
import { isHttps } from "../../src/console/Security.js"
import { sseEvent } from "../../src/console/OverviewPage.js"
import type { Session } from "../../src/console/Sessions.js"

const session = (scope: "admin" | "auditor"): Session => ({
  keyId: "k1",
  clientId: "ops",
  scope,
  csrf: "token-of-the-session",
  createdAt: 0,
  expiresAt: 1
})

describe("Html", () => {
  it("escapes every value it is given, except markup it made itself", () => {
    const name = `<script>alert("x")</script>' \``
    expect(html`<p title="${name}">${name}</p>`.text).toBe(
      '<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39; &#96;">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39; &#96;</p>'
    )
    expect(html`<ul>${["a&b", html`<li>${"<i>"}</li>`]}</ul>`.text).toBe("<ul>a&amp;b<li>&lt;i&gt;</li></ul>")
    expect(html`${false}${null}${undefined}${0}${trusted("<br>")}`.text).toBe("0<br>")
    expect(join([html`<a>`, html`<b>`], trusted(", ")).text).toBe("<a>, <b>")
  })
})

describe("Csrf", () => {
  const here = { host: "console.example:8080" }
  it("matches tokens in constant time, never an empty one", () => {
    expect(tokensMatch("abc", "abc")).toBe(true)
    expect(tokensMatch("abc", "abd")).toBe(false)
    expect(tokensMatch("abc", "abcd")).toBe(false)
    expect(tokensMatch("", "")).toBe(false)
    expect(tokensMatch("abc", undefined)).toBe(false)
  })

  it("believes the browser when it says another site sent the request", () => {
    expect(crossSiteReason({ ...here, "sec-fetch-site": "same-origin" })).toBeUndefined()
    expect(crossSiteReason({ ...here, "sec-fetch-site": "cross-site" })).toBe("Sec-Fetch-Site is cross-site")
    expect(crossSiteReason({ ...here, "sec-fetch-site": "same-site" })).toBe("Sec-Fetch-Site is same-site")
    expect(crossSiteReason({ ...here, origin: "http://console.example:8080" })).toBeUndefined()
    expect(crossSiteReason({ ...here, origin: "https://evil.example" })).toBe(
      "Origin https://evil.example is not this console"
    )
    expect(crossSiteReason({ ...here, origin: "null" })).toBe("Origin null is not a URL")
    // behind a proxy, the host the browser used
    expect(
      crossSiteReason({
        host: "10.0.0.5:8080",
        "x-forwarded-host": "ops.example",
        origin: "https://ops.example"
      })
    ).toBeUndefined()
  })

  it("refuses a form without the session's token, in the form or the htmx header", () => {
    const headers = { ...here, "sec-fetch-site": "same-origin" }
    expect(forgeryReason("t0ken", headers, { _csrf: "t0ken" })).toBeUndefined()
    expect(forgeryReason("t0ken", { ...headers, "x-csrf-token": "t0ken" }, {})).toBeUndefined()
    expect(forgeryReason("t0ken", headers, {})).toBe("the form's CSRF token is missing or wrong")
    expect(forgeryReason("t0ken", headers, { _csrf: "other" })).toBe(
      "the form's CSRF token is missing or wrong"
    )
    expect(forgeryReason("t0ken", { ...here, "sec-fetch-site": "cross-site" }, { _csrf: "t0ken" })).toBe(
      "Sec-Fetch-Site is cross-site"
    )
  })
})

describe("what the pages show", () => {
  it("masks numbers for auditors unless the deployment says otherwise", () => {
    expect(shownNumber(session("admin"), "+447911123456")).toBe("+447911123456")
    expect(shownNumber(session("auditor"), "+447911123456")).toBe("+4479******56")
    expect(maskedText(session("auditor"), '{"to":"+447911123456"}', ["+447911123456"])).toBe(
      '{"to":"+4479******56"}'
    )
    expect(seesNumbers(session("auditor"), { CONSOLE_AUDITORS_SEE_NUMBERS: "true" })).toBe(true)
  })

  it("writes CSV cells a spreadsheet will not run, and keeps E.164 numbers as they are", () => {
    expect(csvField("+447911123456")).toBe("+447911123456")
    expect(csvField("=HYPERLINK(1)")).toBe("'=HYPERLINK(1)")
    expect(csvField("+SUM(A1)")).toBe("'+SUM(A1)")
    expect(csvField("-1+2")).toBe("'-1+2")
    expect(csvField('a "b", c')).toBe('"a ""b"", c"')
    expect(csvField(null)).toBe("")
    expect(csvField(3)).toBe("3")
  })

  it("sends a fragment as one server-sent event, every line a data line", () => {
    expect(sseEvent("figures", html`<p>a</p>\n<p>${"<b>"}</p>`)).toBe(
      "event: figures\ndata: <p>a</p>\ndata: <p>&lt;b&gt;</p>\n\n"
    )
  })

  it("makes cookies Secure behind https", () => {
    expect(isHttps({ "x-forwarded-proto": "https" }, {})).toBe(true)
    expect(isHttps({ "x-forwarded-proto": "http" }, {})).toBe(false)
    expect(isHttps({}, { CONSOLE_SECURE_COOKIES: "true" })).toBe(true)
  })
})
