/**
 * The messages list's filters: read from the URL (so a filtered list is a link to share), written
 * back to it, and turned into SQL over `SearchStore`'s tables. Pure functions.
 *
 * Every query walks one access path in `seq` order (newest first) and stops after one page; which
 * path, and how far it may read, is `MessageSearch`'s choice.
 */
import { MESSAGE_STATUSES, type MessageStatus, type Query, seqAt } from "./SearchStore.js"

export interface MessageFilter {
  readonly status?: MessageStatus
  readonly client?: string
  readonly provider?: string
  /** digits: any part of the recipient's number */
  readonly to?: string
  /** epoch ms, inclusive */
  readonly from?: number
  /** epoch ms, exclusive */
  readonly until?: number
  /** a message id, an idempotency key or a tracking id, exactly */
  readonly id?: string
}

export interface PageRequest {
  /** rows strictly older than this `seq` (the next page) */
  readonly before?: number
  /** rows strictly newer than this `seq` (the previous page) */
  readonly after?: number
  readonly limit: number
}

export const PAGE_SIZE = 50

const text = (value: string | undefined, max: number) => {
  const trimmed = value?.trim() ?? ""
  return trimmed === "" ? undefined : trimmed.slice(0, max)
}

/** `2026-11-22T10:00` (a datetime-local field, read as UTC) or any ISO time; undefined if neither. */
export const parseTime = (value: string | undefined): number | undefined => {
  const given = text(value, 40)
  if (given === undefined) return undefined
  const withZone = /[zZ]|[+-]\d\d:?\d\d$/.test(given) ? given : `${given}Z`
  const ms = Date.parse(withZone)
  return Number.isFinite(ms) ? ms : undefined
}

const seqParam = (value: string | undefined) => {
  const n = Number(value)
  return value !== undefined && value !== "" && Number.isSafeInteger(n) && n >= 0 ? n : undefined
}

const isStatus = (value: string | undefined): value is MessageStatus =>
  (MESSAGE_STATUSES as ReadonlyArray<string>).includes(value ?? "")

type Params = Readonly<Record<string, string | undefined>>

/** The filters a URL's query names; anything malformed is left out rather than refused. */
export const filterFromParams = (params: Params): MessageFilter => {
  const digits = (params.to ?? "").replace(/\D/g, "").slice(0, 15)
  return {
    ...(isStatus(params.status) ? { status: params.status } : {}),
    ...(text(params.client, 128) ? { client: text(params.client, 128) } : {}),
    ...(text(params.provider, 64) ? { provider: text(params.provider, 64) } : {}),
    ...(digits !== "" ? { to: digits } : {}),
    ...(parseTime(params.from) !== undefined ? { from: parseTime(params.from) } : {}),
    ...(parseTime(params.until) !== undefined ? { until: parseTime(params.until) } : {}),
    ...(text(params.id, 256) ? { id: text(params.id, 256) } : {})
  }
}

export const pageFromParams = (params: Params): PageRequest => {
  const before = seqParam(params.before)
  const after = before === undefined ? seqParam(params.after) : undefined
  return {
    ...(before !== undefined ? { before } : {}),
    ...(after !== undefined ? { after } : {}),
    limit: PAGE_SIZE
  }
}

/** `YYYY-MM-DDTHH:mm` in UTC, what a datetime-local field shows. */
export const toLocalField = (ms: number) => new Date(ms).toISOString().slice(0, 16)

/** The filter as URL parameters, in a fixed order (the inverse of `filterFromParams`). */
export const filterToParams = (filter: MessageFilter): ReadonlyArray<readonly [string, string]> => {
  const entries: Array<readonly [string, string]> = []
  if (filter.status) entries.push(["status", filter.status])
  if (filter.client) entries.push(["client", filter.client])
  if (filter.provider) entries.push(["provider", filter.provider])
  if (filter.to) entries.push(["to", filter.to])
  if (filter.from !== undefined) entries.push(["from", toLocalField(filter.from)])
  if (filter.until !== undefined) entries.push(["until", toLocalField(filter.until)])
  if (filter.id) entries.push(["id", filter.id])
  return entries
}

export const queryString = (entries: ReadonlyArray<readonly [string, string]>) =>
  entries.length === 0
    ? ""
    : `?${new URLSearchParams(entries.map(([k, v]): [string, string] => [k, v])).toString()}`

/** The trigram index needs three characters; fewer match most numbers, found by a scan that stops early. */
const TRIGRAM = 3

/** An FTS5 phrase of digits: nothing in it needs quoting, the quotes make it one substring. */
const phrase = (digits: string) => `"${digits}"`

/**
 * Where a query starts reading: the access path whose matches are then checked against the other
 * filters (the residual). Every path yields rows in `seq` order, so a page stops after its rows.
 */
export type Driver =
  | { readonly _tag: "Id" }
  | { readonly _tag: "Recipient" }
  | {
      readonly _tag: "Index"
      readonly index: string
      readonly columns: ReadonlyArray<"status" | "client" | "provider">
    }
  | { readonly _tag: "Scan" }

const INDEXES: ReadonlyArray<Extract<Driver, { _tag: "Index" }>> = [
  { _tag: "Index", index: "messages_client_status", columns: ["client", "status"] },
  { _tag: "Index", index: "messages_provider_status", columns: ["provider", "status"] },
  { _tag: "Index", index: "messages_client", columns: ["client"] },
  { _tag: "Index", index: "messages_provider", columns: ["provider"] },
  { _tag: "Index", index: "messages_status", columns: ["status"] }
]

const COLUMN = { status: "m.status", client: "m.client_id", provider: "m.provider" } as const

/**
 * The paths that could serve `filter`. An exact id is always tiny; otherwise the trigram index for
 * a recipient of three digits or more, every index whose columns the filter fixes, and the primary
 * key (time order) itself.
 */
export const drivers = (filter: MessageFilter): ReadonlyArray<Driver> => {
  if (filter.id !== undefined) return [{ _tag: "Id" }]
  const fixed = INDEXES.filter((candidate) =>
    candidate.columns.every((column) => filter[column] !== undefined)
  )
  return [
    ...(filter.to !== undefined && filter.to.length >= TRIGRAM ? [{ _tag: "Recipient" } as const] : []),
    ...fixed,
    { _tag: "Scan" }
  ]
}

interface Parts {
  readonly from: string
  /** the key in `seq` order: through the FTS table its rowid, which is the same number */
  readonly seq: string
  readonly driverWhere: ReadonlyArray<string>
  readonly driverParams: ReadonlyArray<string | number>
  readonly residualWhere: ReadonlyArray<string>
  readonly residualParams: ReadonlyArray<string | number>
}

/** The seq bounds of the time range and of the page: they narrow every path alike. */
const bounds = (filter: MessageFilter, page: Partial<PageRequest>, seq: string) => {
  const where: Array<string> = []
  const params: Array<number> = []
  if (filter.from !== undefined) {
    where.push(`${seq} >= ?`)
    params.push(seqAt(filter.from))
  }
  if (filter.until !== undefined) {
    where.push(`${seq} < ?`)
    params.push(seqAt(filter.until))
  }
  if (page.before !== undefined) {
    where.push(`${seq} < ?`)
    params.push(page.before)
  } else if (page.after !== undefined) {
    where.push(`${seq} > ?`)
    params.push(page.after)
  }
  return { where, params }
}

const partsOf = (filter: MessageFilter, driver: Driver, page: Partial<PageRequest>): Parts => {
  const seq = driver._tag === "Recipient" ? "recipients.rowid" : "m.seq"
  const driverWhere: Array<string> = []
  const driverParams: Array<string | number> = []
  const residualWhere: Array<string> = []
  const residualParams: Array<string | number> = []
  let from = "messages m"
  switch (driver._tag) {
    case "Id":
      driverWhere.push("(m.message_id = ? OR m.idempotency_key = ? OR m.tracking_id = ?)")
      driverParams.push(filter.id ?? "", filter.id ?? "", filter.id ?? "")
      break
    case "Recipient":
      from = "recipients JOIN messages m ON m.seq = recipients.rowid"
      driverWhere.push("recipients MATCH ?")
      driverParams.push(phrase(filter.to ?? ""))
      break
    case "Index":
      from = `messages m INDEXED BY ${driver.index}`
      for (const column of driver.columns) {
        driverWhere.push(`${COLUMN[column]} = ?`)
        driverParams.push(filter[column] ?? "")
      }
      break
    case "Scan":
      // the primary key, newest first: no secondary index may be chosen instead
      from = "messages m NOT INDEXED"
      break
  }
  const range = bounds(filter, page, seq)
  driverWhere.push(...range.where)
  driverParams.push(...range.params)
  if (filter.to !== undefined && driver._tag !== "Recipient") {
    residualWhere.push("instr(m.recipient, ?) > 0")
    residualParams.push(filter.to)
  }
  for (const column of ["status", "client", "provider"] as const) {
    const value = filter[column]
    if (value === undefined) continue
    if (driver._tag === "Index" && driver.columns.includes(column)) continue
    residualWhere.push(`${COLUMN[column]} = ?`)
    residualParams.push(value)
  }
  return { from, seq, driverWhere, driverParams, residualWhere, residualParams }
}

const whereOf = (conditions: ReadonlyArray<string>) =>
  conditions.length === 0 ? "" : ` WHERE ${conditions.join(" AND ")}`

const orderOf = (page: Partial<PageRequest>) =>
  page.after !== undefined && page.before === undefined ? "ASC" : "DESC"

/** Counts the rows a path would read, up to `cap`: its cost, to pick the cheapest (index only). */
export const costQuery = (
  filter: MessageFilter,
  driver: Driver,
  page: Partial<PageRequest>,
  cap: number
): Query => {
  const parts = partsOf(filter, driver, page)
  // the trigram path is counted in the FTS table alone: the join adds nothing to its count
  const from = driver._tag === "Recipient" ? "recipients" : parts.from
  return {
    sql: `SELECT count(*) AS n FROM (SELECT 1 FROM ${from}${whereOf(parts.driverWhere)} LIMIT ${Math.floor(cap)})`,
    params: parts.driverParams
  }
}

/** The seq of the `nth` row a path reads (in page order): a bound on how far a page may read. */
export const boundQuery = (
  filter: MessageFilter,
  driver: Driver,
  page: Partial<PageRequest>,
  nth: number
): Query => {
  const parts = partsOf(filter, driver, page)
  const from = driver._tag === "Recipient" ? "recipients" : parts.from
  return {
    sql: `SELECT ${parts.seq} AS seq FROM ${from}${whereOf(parts.driverWhere)} ORDER BY ${parts.seq} ${orderOf(page)} LIMIT 1 OFFSET ${Math.floor(nth) - 1}`,
    params: parts.driverParams
  }
}

/**
 * The SELECT of one page through `driver`: the rows of `filter` in `seq` order, newest first (or
 * oldest first after `after`, which the caller reverses), one more than the page to tell whether
 * there is more. `bound`, when given, is the last seq the page may read (see `MessageSearch`).
 */
export const pageQuery = (
  filter: MessageFilter,
  driver: Driver,
  page: Partial<PageRequest>,
  bound?: number
): Query => {
  const parts = partsOf(filter, driver, page)
  const order = orderOf(page)
  const where = [...parts.driverWhere, ...parts.residualWhere]
  const params: Array<string | number> = [...parts.driverParams, ...parts.residualParams]
  if (bound !== undefined) {
    where.push(`${parts.seq} ${order === "DESC" ? ">=" : "<="} ?`)
    params.push(bound)
  }
  const limit = page.limit === undefined ? "" : ` LIMIT ${Math.floor(page.limit) + 1}`
  return {
    sql: `SELECT m.* FROM ${parts.from}${whereOf(where)} ORDER BY ${parts.seq} ${order}${limit}`,
    params
  }
}

/** Whether a path yields only matches (nothing left to check), so a page never reads more than it shows. */
export const isExact = (filter: MessageFilter, driver: Driver) => {
  const parts = partsOf(filter, driver, {})
  return parts.residualWhere.length === 0
}
