/**
 * Clients and keys: every client with its daily quota and today's use, and its keys (id, scope,
 * created, revoked: never a secret, which the registry does not even keep). Admins issue a key
 * (shown once, on the answer to the form, never again), revoke one, and change a quota, through the
 * API's own paths (`issueKeyAs`, `revokeKeyAs`, `setQuotaAs`), which log who did it.
 */
import { Effect, Option } from "effect"
import { Clients, type KeyView, type Principal, Scope } from "../clients/Clients.js"
import { issueKeyAs, revokeKeyAs, setQuotaAs } from "../http/Handlers.js"
import { type ConsoleRequest, htmlResponse, isAdmin, seeOther } from "./ConsoleRequest.js"
import { type Html, html } from "./Html.js"
import { badge, csrfField, notice, page } from "./Layout.js"

const adminOf = (request: ConsoleRequest): Principal => ({
  keyId: request.session.keyId,
  clientId: request.session.clientId,
  scope: request.session.scope
})

const SCOPES = Scope.literals

const quotaForm = (
  request: ConsoleRequest,
  clientId: string,
  quota: number | undefined
) => html`<form class="action" method="post" action="/console/clients/${encodeURIComponent(clientId)}/quota">
  ${csrfField(request.session)}
  <input name="dailyQuota" value="${quota ?? ""}" size="8" inputmode="numeric" placeholder="unlimited" aria-label="daily quota of ${clientId}">
  <button type="submit" class="secondary">Set quota</button>
</form>`

const revokeForm = (
  request: ConsoleRequest,
  key: KeyView
) => html`<form class="action" method="post" action="/console/clients/keys/${encodeURIComponent(key.keyId)}/revoke">
  ${csrfField(request.session)}<button type="submit" class="danger">Revoke</button>
</form>`

const issueForm = (request: ConsoleRequest) => html`<h2>Issue a key</h2>
<form class="action" method="post" action="/console/clients/keys" id="issue-key">
  ${csrfField(request.session)}
  <label>Client <input name="clientId" required maxlength="64"></label>
  <label>Scope <select name="scope">${SCOPES.map((s) => html`<option value="${s}">${s}</option>`)}</select></label>
  <label>Daily quota (empty: keep / unlimited) <input name="dailyQuota" size="8" inputmode="numeric"></label>
  <button type="submit">Issue key</button>
</form>`

/** The page; `extra` goes on top (the key just issued, or what an action did). */
const render = (request: ConsoleRequest, extra: Html | string = "") =>
  Effect.gen(function* () {
    const clients = yield* Clients
    const keys = yield* clients.list
    const ids = [...new Set(keys.map((k) => k.clientId))].sort()
    const rows = yield* Effect.forEach(
      ids,
      (clientId) =>
        Effect.all({
          record: clients.client(clientId),
          used: clients.usage(clientId)
        }).pipe(
          Effect.map(({ record, used }) => ({
            clientId,
            used,
            quota: Option.getOrUndefined(record)?.dailyQuota
          }))
        ),
      { concurrency: 8 }
    )
    const body = html`${extra}
<table id="clients">
<thead><tr><th>Client</th><th class="num">Used today (UTC)</th><th class="num">Daily quota</th><th>Keys</th></tr></thead>
<tbody>${rows.map(
      ({ clientId, used, quota }) => html`<tr>
  <td>${clientId}</td><td class="num">${used}</td>
  <td class="num">${isAdmin(request) ? quotaForm(request, clientId, quota) : (quota ?? "unlimited")}</td>
  <td><table class="keys"><tbody>${keys
    .filter((k) => k.clientId === clientId)
    .map(
      (
        key
      ) => html`<tr data-key="${key.keyId}"><td class="mono">${key.keyId}</td><td>${key.scope}</td><td class="small">${key.createdAt}</td>
  <td>${key.revokedAt ? html`${badge("revoked")} <span class="small">${key.revokedAt}</span>` : isAdmin(request) ? revokeForm(request, key) : badge("active")}</td></tr>`
    )}</tbody></table></td>
</tr>`
    )}</tbody>
</table>
${isAdmin(request) ? issueForm(request) : ""}`
    return htmlResponse(
      page({ title: "Clients & keys", session: request.session, section: "/console/clients", body })
    )
  })

export const list = (request: ConsoleRequest) => {
  const done = request.query.get("done")
  return render(request, done ? notice("ok", done) : "")
}

/** "" is unlimited; otherwise a whole number of messages a day. */
const quotaOf = (text: string | null): number | null | "invalid" => {
  const trimmed = (text ?? "").trim()
  if (trimmed === "") return null
  const n = Number(trimmed)
  return Number.isSafeInteger(n) && n >= 0 ? n : "invalid"
}

export const issue = (request: ConsoleRequest) =>
  Effect.gen(function* () {
    const clientId = (request.form.get("clientId") ?? "").trim()
    const scope = request.form.get("scope") ?? ""
    const quota = quotaOf(request.form.get("dailyQuota"))
    if (!(SCOPES as ReadonlyArray<string>).includes(scope) || quota === "invalid") {
      return yield* render(
        request,
        notice("error", "a key needs a client, a scope and a whole-number quota (or none)")
      )
    }
    const issued = yield* issueKeyAs(adminOf(request), {
      clientId,
      scope: scope as Scope,
      ...(quota === null ? {} : { dailyQuota: quota })
    }).pipe(Effect.either)
    if (issued._tag === "Left") {
      if (issued.left._tag === "InvalidClient")
        return yield* render(request, notice("error", issued.left.message))
      return yield* Effect.fail(issued.left)
    }
    const { apiKey, key } = issued.right
    // the only time the key is ever shown: the registry keeps its hash
    return yield* render(
      request,
      notice(
        "ok",
        html`Key <code>${key.keyId}</code> issued for ${key.clientId} (${key.scope}). Copy it now, it is not shown again:
<pre id="new-key">${apiKey}</pre>`
      )
    )
  })

export const revoke = (request: ConsoleRequest, keyId: string) =>
  Effect.gen(function* () {
    const found = yield* revokeKeyAs(adminOf(request), keyId)
    return seeOther(
      `/console/clients?done=${encodeURIComponent(found ? `revoked ${keyId}` : `no key ${keyId}`)}`
    )
  })

export const setQuota = (request: ConsoleRequest, clientId: string) =>
  Effect.gen(function* () {
    const quota = quotaOf(request.form.get("dailyQuota"))
    if (quota === "invalid")
      return yield* render(
        request,
        notice("error", "a quota is a whole number of messages a day, or empty for unlimited")
      )
    const changed = yield* setQuotaAs(adminOf(request), clientId, quota).pipe(Effect.either)
    if (changed._tag === "Left") {
      if (changed.left._tag === "InvalidClient")
        return yield* render(request, notice("error", changed.left.message))
      return yield* Effect.fail(changed.left)
    }
    return seeOther(
      `/console/clients?done=${encodeURIComponent(`${clientId}: quota ${quota ?? "unlimited"}`)}`
    )
  })
