/**
 * Phone numbers: the inactive ones (from the search store, newest deactivation first), why and since
 * when; one number's history (the phone numbers read model, as `GET /v1/phone-numbers/:number`);
 * and for admins a reactivation through the API's own path (`reactivatePhoneNumber`).
 */
import { Effect, Option } from "effect"
import { e164Problem } from "../domain/PhoneNumber.js"
import { reactivatePhoneNumber } from "../http/Handlers.js"
import { getPhoneNumber, neverDeactivated } from "../projections/PhoneNumbers.js"
import { type ConsoleRequest, htmlResponse, isAdmin, seeOther } from "./ConsoleRequest.js"
import { html } from "./Html.js"
import { badge, csrfField, errorPage, notice, page, seesNumbers, shownNumber, time } from "./Layout.js"
import { type PhoneRow, SearchStore } from "./SearchStore.js"

const SHOWN = 500

/** The number a path or form names, as E.164 (`+` optional), or undefined. */
const numberOf = (raw: string) => {
  const number = raw.startsWith("+") ? raw : `+${raw}`
  return e164Problem(number) === undefined ? number : undefined
}

export const list = (request: ConsoleRequest) =>
  Effect.gen(function* () {
    const store = yield* SearchStore
    const inactive = store.rows<PhoneRow>({
      sql: `SELECT * FROM phones INDEXED BY phones_inactive WHERE status = 'inactive' ORDER BY since DESC LIMIT ${SHOWN}`,
      params: []
    })
    const done = request.query.get("reactivated")
    // a masked number cannot be typed back: auditors open a number from the list
    const lookup = seesNumbers(request.session)
      ? html`<form class="filters" method="get" action="/console/phone-numbers/lookup">
  <label>Number (E.164) <input name="number" placeholder="+447911123456" required></label>
  <button type="submit">Show its history</button>
</form>`
      : ""
    const body = html`${done ? notice("ok", `reactivated ${shownNumber(request.session, done)}`) : ""}
${lookup}
<p class="muted">${inactive.length} inactive number${inactive.length === 1 ? "" : "s"}${inactive.length === SHOWN ? ` (the newest ${SHOWN})` : ""}.</p>
<table id="phone-numbers">
<thead><tr><th>Number</th><th>Since</th><th>Why</th></tr></thead>
<tbody>${inactive.map(
      (phone) => html`<tr>
  <td class="mono"><a href="/console/phone-numbers/${encodeURIComponent(phone.number)}">${shownNumber(request.session, phone.number)}</a></td>
  <td>${time(phone.since)}</td><td>${phone.reason}</td>
</tr>`
    )}</tbody>
</table>`
    return htmlResponse(
      page({ title: "Phone numbers", session: request.session, section: "/console/phone-numbers", body })
    )
  })

export const lookup = (request: ConsoleRequest) =>
  Effect.succeed(seeOther(`/console/phone-numbers/${encodeURIComponent(request.query.get("number") ?? "")}`))

export const one = (request: ConsoleRequest, raw: string) =>
  Effect.gen(function* () {
    const number = numberOf(raw)
    if (number === undefined) {
      return errorPage(
        { title: "Phone number", session: request.session, section: "/console/phone-numbers" },
        400,
        "not an E.164 number"
      )
    }
    const view = Option.getOrElse(yield* getPhoneNumber(number), () => neverDeactivated(number))
    const shown = shownNumber(request.session, number)
    const body = html`<dl class="facts" id="phone">
  <dt>Number</dt><dd class="mono">${shown}</dd>
  <dt>Status</dt><dd>${badge(view.status)}</dd>
  ${view.since ? html`<dt>Since</dt><dd>${view.since}</dd>` : ""}
  ${view.reason ? html`<dt>Why</dt><dd>${view.reason}</dd>` : ""}
</dl>
${
  view.status === "inactive" && isAdmin(request)
    ? html`<form class="action" method="post" action="/console/phone-numbers/${encodeURIComponent(number)}/reactivate">
  ${csrfField(request.session)}
  <label>why <input name="reason" required maxlength="200" placeholder="customer confirmed the number"></label>
  <button type="submit">Reactivate</button>
</form>`
    : ""
}
<h2>History</h2>
<table><thead><tr><th>At</th><th>Event</th><th>Why</th><th>Provider</th><th>By</th></tr></thead>
<tbody>${view.history.map(
      (entry) =>
        html`<tr><td>${entry.at}</td><td>${entry.event}</td><td>${entry.reason}</td><td>${entry.provider ?? ""}</td><td>${entry.by ?? (entry.messageId ? html`<a href="/console/messages/${entry.messageId}">message</a>` : "")}</td></tr>`
    )}</tbody></table>`
    return htmlResponse(
      page({ title: "Phone number", session: request.session, section: "/console/phone-numbers", body })
    )
  })

export const reactivate = (request: ConsoleRequest, raw: string) =>
  Effect.gen(function* () {
    const number = numberOf(raw)
    const reason = (request.form.get("reason") ?? "").trim().slice(0, 200)
    if (number === undefined || reason === "") {
      return errorPage(
        { title: "Phone number", session: request.session, section: "/console/phone-numbers" },
        400,
        "reactivation needs a number and a reason"
      )
    }
    yield* reactivatePhoneNumber({ number, by: request.session.clientId, reason })
    return seeOther(`/console/phone-numbers?reactivated=${encodeURIComponent(number)}`)
  })
