/**
 * The messages list (filters in the URL, keyset paging, CSV export of the filtered list) and one
 * message: its status (now, or as of an earlier moment: the API's as-of read) and the timeline of
 * every event with the time between steps and the raw data one click away.
 */
import { HttpServerResponse } from "@effect/platform"
import { Effect, Option, Schema, Stream } from "effect"
import type { Principal } from "../clients/Clients.js"
import { MessageId } from "../domain/Ids.js"
import type { RecordedEvent } from "../eventstore/EventStore.js"
import { readHistory, readStatus } from "../messages/ReadMessage.js"
import type { MessageStatusView } from "../projections/MessageStatus.js"
import { type ConsoleRequest, htmlResponse, paramsOf } from "./ConsoleRequest.js"
import { type Html, html } from "./Html.js"
import { badge, duration, errorPage, maskedText, notice, page, shownNumber, time } from "./Layout.js"
import { search } from "./MessageSearch.js"
import {
  filterFromParams,
  filterToParams,
  type MessageFilter,
  pageFromParams,
  parseTime,
  queryString,
  toLocalField
} from "./SearchQuery.js"
import {
  MESSAGE_STATUSES,
  type MessageRow,
  SearchStore,
  type SearchStoreService,
  SLOTS_PER_MS
} from "./SearchStore.js"

const principalOf = (request: ConsoleRequest): Principal => ({
  keyId: request.session.keyId,
  clientId: request.session.clientId,
  scope: request.session.scope
})

const filterForm = (
  filter: MessageFilter
) => html`<form class="filters" method="get" action="/console/messages">
  <label>Status <select name="status"><option value="">any</option>${MESSAGE_STATUSES.map(
    (s) => html`<option value="${s}"${filter.status === s ? html` selected` : ""}>${s}</option>`
  )}</select></label>
  <label>Client <input name="client" value="${filter.client ?? ""}" size="12"></label>
  <label>Provider <input name="provider" value="${filter.provider ?? ""}" size="10"></label>
  <label>Recipient (any part) <input name="to" value="${filter.to ?? ""}" size="14" inputmode="numeric"></label>
  <label>From (UTC) <input type="datetime-local" name="from" value="${filter.from === undefined ? "" : toLocalField(filter.from)}"></label>
  <label>Until (UTC) <input type="datetime-local" name="until" value="${filter.until === undefined ? "" : toLocalField(filter.until)}"></label>
  <label>Message id / idempotency key / tracking id <input name="id" value="${filter.id ?? ""}" size="30"></label>
  <button type="submit">Filter</button>
  <a href="/console/messages">clear</a>
</form>`

const row = (request: ConsoleRequest, m: MessageRow) => html`<tr>
  <td class="mono"><a href="/console/messages/${m.messageId}">${m.messageId.slice(0, 13)}…</a></td>
  <td>${time(m.requestedAt)}</td>
  <td>${badge(m.status)}</td>
  <td>${m.clientId}</td>
  <td class="mono">${shownNumber(request.session, m.recipient)}</td>
  <td>${m.provider ?? ""}</td>
  <td class="num">${m.attempts}</td>
  <td class="small">${m.failureReason ?? m.lastError ?? ""}</td>
</tr>`

export const list = (request: ConsoleRequest) =>
  Effect.gen(function* () {
    const store = yield* SearchStore
    const params = paramsOf(request.query)
    const filter = filterFromParams(params)
    const found = search(store, filter, pageFromParams(params))
    const base = filterToParams(filter)
    const link = (cursor: readonly [string, string]) => `/console/messages${queryString([...base, cursor])}`
    const body = html`${filterForm(filter)}
<div class="pager">
  ${found.newer !== undefined ? html`<a href="${link(["after", String(found.newer)])}" rel="prev">← newer</a>` : ""}
  ${found.older !== undefined ? html`<a href="${link(["before", String(found.older)])}" rel="next">older →</a>` : ""}
  <a href="/console/messages.csv${queryString(base)}">export CSV</a>
  ${found.searchedTo !== undefined ? html`<span class="muted small">searched back to ${time(Math.floor(found.searchedTo / SLOTS_PER_MS))}; older pages go on from there</span>` : ""}
</div>
<table id="messages">
<thead><tr><th>Message</th><th>Requested</th><th>Status</th><th>Client</th><th>Recipient</th><th>Provider</th><th class="num">Attempts</th><th>Last error</th></tr></thead>
<tbody>${found.rows.length === 0 ? html`<tr><td colspan="8" class="muted">no message matches</td></tr>` : found.rows.map((m) => row(request, m))}</tbody>
</table>`
    return htmlResponse(
      page({ title: "Messages", session: request.session, section: "/console/messages", body })
    )
  })

const CSV_COLUMNS = [
  "messageId",
  "requestedAt",
  "status",
  "clientId",
  "recipient",
  "provider",
  "attempts",
  "idempotencyKey",
  "trackingId",
  "dispatchedAt",
  "deliveredAt",
  "failedAt",
  "failureReason",
  "lastError"
] as const

/**
 * RFC 4180, and a text a spreadsheet would run as a formula (leading `=`, `@`, tab, CR, or `+`/`-`
 * before anything but digits) quoted away with a `'`. An E.164 number stays as it is.
 */
export const csvField = (value: string | number | null): string => {
  if (value === null) return ""
  const formula = (text: string) => /^[=@\t\r]/.test(text) || (/^[+-]/.test(text) && !/^[+-]\d+$/.test(text))
  const text = typeof value === "number" ? String(value) : formula(value) ? `'${value}` : value
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString())

export const csvLine = (request: ConsoleRequest, m: MessageRow) =>
  `${[
    m.messageId,
    iso(m.requestedAt),
    m.status,
    m.clientId,
    shownNumber(request.session, m.recipient),
    m.provider,
    m.attempts,
    m.idempotencyKey,
    m.trackingId,
    iso(m.dispatchedAt),
    iso(m.deliveredAt),
    iso(m.failedAt),
    m.failureReason,
    m.lastError
  ]
    .map(csvField)
    .join(",")}\r\n`

/** Rows per page of an export: each page is one short synchronous read, the response streams between them. */
const EXPORT_PAGE = 2_000
/** An export stops here (said in its last line): a bigger one belongs to the event store, not a browser. */
export const EXPORT_MAX_ROWS = 1_000_000

/** The pages of `filter`, oldest cursor after cursor, as one stream of CSV text. */
const exportPages = (store: SearchStoreService, request: ConsoleRequest, filter: MessageFilter) =>
  Stream.unfold<{ readonly before?: number; readonly sent: number } | undefined, string>(
    { sent: 0 },
    (cursor) => {
      if (cursor === undefined) return Option.none()
      const found = search(store, filter, {
        ...(cursor.before !== undefined ? { before: cursor.before } : {}),
        limit: EXPORT_PAGE
      })
      const sent = cursor.sent + found.rows.length
      const text = found.rows.map((m) => csvLine(request, m)).join("")
      if (found.older === undefined) return Option.some([text, undefined])
      if (sent >= EXPORT_MAX_ROWS)
        return Option.some([`${text}# stopped at ${EXPORT_MAX_ROWS} rows: narrow the filter\r\n`, undefined])
      return Option.some([text, { before: found.older, sent }])
    }
  )

/** The filter as a log may hold it: part of a number is told only by its length. */
const loggedFilter = (filter: MessageFilter) =>
  filterToParams(filter)
    .map(([key, value]) => (key === "to" ? `to=<${value.length} digits>` : `${key}=${value}`))
    .join("&")

export const exportCsv = (request: ConsoleRequest) =>
  Effect.gen(function* () {
    const store = yield* SearchStore
    const filter = filterFromParams(paramsOf(request.query))
    const encoder = new TextEncoder()
    const body = Stream.concat(
      Stream.make(`${CSV_COLUMNS.join(",")}\r\n`),
      exportPages(store, request, filter)
    ).pipe(
      Stream.filter((text) => text !== ""),
      Stream.map((text) => encoder.encode(text))
    )
    yield* Effect.logInfo("console messages export").pipe(
      Effect.annotateLogs({ by: request.session.clientId, filter: loggedFilter(filter) })
    )
    return HttpServerResponse.stream(body, {
      contentType: "text/csv; charset=utf-8",
      headers: { "content-disposition": 'attachment; filename="messages.csv"' }
    })
  })

const decodeMessageId = Schema.decodeUnknownOption(MessageId)

/** What a step of the timeline says, from its event's data (the raw data is beside it). */
const summaryOf = (event: RecordedEvent): string => {
  const data = (typeof event.data === "object" && event.data !== null ? event.data : {}) as Record<
    string,
    unknown
  >
  const parts: Array<string> = []
  const add = (label: string, key: string) => {
    const value = data[key]
    if (value !== undefined && value !== null && value !== "") parts.push(`${label} ${String(value)}`)
  }
  add("client", "clientId")
  add("to", "to")
  add("segments", "segments")
  add("tracking id", "trackingId")
  add("provider", "provider")
  add("attempt", "attempt")
  add("reason", "reason")
  add("error", "error")
  add("code", "code")
  add("status", "status")
  add("next provider", "nextProvider")
  add("next attempt at", "nextAttemptAt")
  add("by", "by")
  add("provider id", "providerMessageId")
  return parts.join(" · ")
}

const stepClass = (type: string) =>
  type === "SmsDelivered"
    ? "delivered"
    : type === "SmsFailed"
      ? "failed"
      : type === "SmsRetried"
        ? "retrying"
        : type === "SmsStatusUnknown"
          ? "unknown"
          : ""

export const timeline = (
  request: ConsoleRequest,
  events: ReadonlyArray<RecordedEvent>,
  numbers: ReadonlyArray<string>
) =>
  html`<ol class="timeline" id="timeline">${events.map((event, i) => {
    const previous = events[i - 1]
    const since =
      previous === undefined ? undefined : event.recordedAt.getTime() - previous.recordedAt.getTime()
    return html`<li class="${stepClass(event.type)}" data-type="${event.type}">
  <div><span class="step">${event.type}</span> <span class="when">${time(event.recordedAt.getTime())}${
    since === undefined ? "" : html` · +${duration(since)}`
  }</span></div>
  <div class="small">${maskedText(request.session, summaryOf(event), numbers)}</div>
  <details><summary>raw event</summary><pre>${maskedText(
    request.session,
    JSON.stringify(
      {
        type: event.type,
        position: event.position,
        revision: event.revision,
        eventId: event.id,
        data: event.data
      },
      null,
      2
    ),
    numbers
  )}</pre></details>
</li>`
  })}</ol>`

const facts = (request: ConsoleRequest, view: MessageStatusView) => html`<dl class="facts" id="status">
  <dt>Status</dt><dd>${badge(view.status)}</dd>
  <dt>Client</dt><dd>${view.clientId}</dd>
  <dt>Recipient</dt><dd class="mono">${shownNumber(request.session, view.to)}</dd>
  <dt>Provider</dt><dd>${view.provider ?? "—"}</dd>
  <dt>Attempts</dt><dd>${view.attempts}</dd>
  <dt>Segments</dt><dd>${view.segments} (${view.encoding})</dd>
  <dt>Requested</dt><dd>${view.requestedAt}</dd>
  ${view.dispatchedAt ? html`<dt>Dispatched</dt><dd>${view.dispatchedAt}</dd>` : ""}
  ${view.deliveredAt ? html`<dt>Delivered</dt><dd>${view.deliveredAt}</dd>` : ""}
  ${view.failedAt ? html`<dt>Failed</dt><dd>${view.failedAt} (${view.failureReason ?? ""})</dd>` : ""}
  ${view.lastError ? html`<dt>Last error</dt><dd>${view.lastError}</dd>` : ""}
  ${view.nextAttemptAt ? html`<dt>Next attempt</dt><dd>${view.nextAttemptAt}</dd>` : ""}
</dl>`

export const one = (request: ConsoleRequest, rawId: string) =>
  Effect.gen(function* () {
    const messageId = decodeMessageId(rawId)
    const principal = principalOf(request)
    const missing = errorPage(
      { title: "Message", session: request.session, section: "/console/messages" },
      404,
      `no message ${rawId}`
    )
    if (Option.isNone(messageId)) return missing
    const history = yield* readHistory(principal, messageId.value).pipe(Effect.option)
    if (Option.isNone(history)) return missing
    const events = history.value
    const asOfText = request.query.get("asOf") ?? ""
    const asOf = parseTime(asOfText)
    const status = yield* readStatus(
      principal,
      messageId.value,
      asOf === undefined ? undefined : new Date(asOf)
    ).pipe(Effect.either)
    const requested = events.find((e) => e.type === "SmsRequested")?.data as
      | { readonly to?: unknown }
      | undefined
    const numbers = typeof requested?.to === "string" ? [requested.to] : []
    const statusPart: Html =
      status._tag === "Right"
        ? facts(request, status.right)
        : status.left._tag === "NotYetRecorded"
          ? notice(
              "info",
              `not yet recorded at ${asOfText}: first recorded at ${status.left.firstRecordedAt}`
            )
          : notice(
              "info",
              "the status read model has not caught up with this message yet: its timeline is below"
            )
    const body = html`<p class="mono">${messageId.value}</p>
<form class="filters" method="get" action="/console/messages/${messageId.value}">
  <label>Status as of (UTC) <input type="datetime-local" step="1" name="asOf" value="${asOf === undefined ? "" : new Date(asOf).toISOString().slice(0, 19)}"></label>
  <button type="submit">Show</button>
  ${asOf !== undefined ? html`<a href="/console/messages/${messageId.value}">now</a>` : ""}
</form>
${asOf !== undefined ? html`<p class="muted">As of ${new Date(asOf).toISOString()}:</p>` : ""}
${statusPart}
<h2>Timeline (${events.length} events)</h2>
${timeline(request, events, numbers)}`
    return htmlResponse(
      page({ title: "Message", session: request.session, section: "/console/messages", body })
    )
  })
