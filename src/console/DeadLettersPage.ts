/**
 * Dead letters: every letter still kept (newest first, with the message's status now), and for
 * admins a resubmission to the same or another provider, with who and why, through the CLI's own
 * path (`DeadLetters.resubmit`: `SmsResubmitted` recorded, then the work queued again).
 */
import { Effect, Option, Schema } from "effect"
import { newestDeadLetters, resubmit } from "../dispatch/DeadLetters.js"
import { load } from "../messages/MessageRepository.js"
import { MessageId } from "../domain/Ids.js"
import { Providers } from "../providers/Providers.js"
import { type ConsoleRequest, htmlResponse, isAdmin, seeOther } from "./ConsoleRequest.js"
import { html } from "./Html.js"
import { badge, csrfField, errorPage, notice, page, time } from "./Layout.js"

/** Letters shown at most (the newest): the stream keeps 90 days, the page is for acting on them. */
const SHOWN = 200

export const list = (request: ConsoleRequest) =>
  Effect.gen(function* () {
    const letters = [...(yield* newestDeadLetters(SHOWN))].reverse()
    const providers = (yield* Providers).all.map((p) => p.config.id)
    const statuses = yield* Effect.forEach(
      letters,
      ({ letter }) =>
        load(letter.messageId).pipe(
          Effect.map(({ state }) => state.status),
          Effect.orElseSucceed(() => "unknown")
        ),
      { concurrency: 16 }
    )
    const done = request.query.get("resubmitted")
    const resubmitForm = (
      messageId: string,
      provider: string
    ) => html`<form class="action" method="post" action="/console/dead-letters/${messageId}/resubmit">
  ${csrfField(request.session)}
  <label>to <select name="provider">${providers.map(
    (p) => html`<option value="${p}"${p === provider ? html` selected` : ""}>${p}</option>`
  )}</select></label>
  <label>why <input name="reason" required maxlength="200" placeholder="provider fixed"></label>
  <button type="submit">Resubmit</button>
</form>`
    const body = html`${done ? notice("ok", `resubmitted ${done}`) : ""}
<p class="muted">${letters.length} dead letter${letters.length === 1 ? "" : "s"} (newest first${letters.length === SHOWN ? `, the newest ${SHOWN}` : ""}).</p>
<table id="dead-letters">
<thead><tr><th>Dead at</th><th>Message</th><th>Provider</th><th>Cause</th><th class="num">Attempts</th><th>Now</th><th>Detail</th>${isAdmin(request) ? html`<th>Resubmit</th>` : ""}</tr></thead>
<tbody>${letters.map(
      ({ letter }, i) => html`<tr>
  <td>${time(letter.deadAt.getTime())}</td>
  <td class="mono"><a href="/console/messages/${letter.messageId}">${letter.messageId.slice(0, 13)}…</a></td>
  <td>${letter.provider}</td><td>${letter.cause}</td><td class="num">${letter.attempts}</td>
  <td>${badge(statuses[i] ?? "unknown")}</td><td class="small">${letter.detail ?? ""}</td>
  ${isAdmin(request) ? html`<td>${statuses[i] === "failed" ? resubmitForm(letter.messageId, letter.provider) : html`<span class="muted">—</span>`}</td>` : ""}
</tr>`
    )}</tbody>
</table>`
    return htmlResponse(
      page({ title: "Dead letters", session: request.session, section: "/console/dead-letters", body })
    )
  })

const decodeMessageId = Schema.decodeUnknownOption(MessageId)

/** Resubmits one message, as `sms-gateway dead-letters resubmit <id> --provider --by --reason` does. */
export const resubmitOne = (request: ConsoleRequest, rawId: string) =>
  Effect.gen(function* () {
    const messageId = decodeMessageId(rawId)
    const provider = request.form.get("provider") ?? ""
    const reason = (request.form.get("reason") ?? "").trim().slice(0, 200)
    if (Option.isNone(messageId) || (yield* Providers).get(provider) === undefined || reason === "") {
      return errorPage(
        { title: "Dead letters", session: request.session, section: "/console/dead-letters" },
        400,
        "resubmit needs a message, a configured provider and a reason"
      )
    }
    // who: the signed-in key's client and key id, as the CLI's --by names the operator
    const by = `${request.session.clientId} (console, key ${request.session.keyId})`
    yield* resubmit({ messageId: messageId.value, by, reason, provider })
    yield* Effect.logInfo("dead letter resubmitted").pipe(
      Effect.annotateLogs({
        messageId: messageId.value,
        provider,
        by: request.session.clientId,
        keyId: request.session.keyId
      })
    )
    return seeOther(`/console/dead-letters?resubmitted=${encodeURIComponent(messageId.value)}`)
  })
