/**
 * One page of the messages list, in bounded time whatever the filters.
 *
 * A filter the indexes answer exactly (an id, a client and a status, a time range...) reads only
 * its matches. When some filters must be checked row by row (say a client and part of a number),
 * the cheapest path is chosen by counting, up to `CANDIDATES`, the rows each could read (through
 * its index only: a millisecond or two), and the page then reads at most `CANDIDATES` rows of it.
 * If that is not enough for a page, the page says how far back it looked and the next one carries
 * on from there: two broad filters that hardly overlap (a big client, and a country it never sends
 * to) cost several short pages instead of one long scan holding the event loop.
 */
import {
  boundQuery,
  costQuery,
  type Driver,
  drivers,
  isExact,
  type MessageFilter,
  type PageRequest,
  pageQuery
} from "./SearchQuery.js"
import type { MessageRow, SearchStoreService } from "./SearchStore.js"

/** Rows a page may read, at most (about 20 ms of row lookups at worst). */
export const CANDIDATES = 20_000

export interface SearchPage {
  /** newest first, at most `limit` */
  readonly rows: ReadonlyArray<MessageRow>
  /** the cursor of the next (older) page, when there may be one */
  readonly older?: number
  /** the cursor of the previous (newer) page, when there is one */
  readonly newer?: number
  /** set when the page stopped at its bound before filling: it looked back to this seq */
  readonly searchedTo?: number
  /** the path read, for the bench and the tests */
  readonly driver: Driver["_tag"]
}

/** The path to read and the bound on it (undefined: it reads only matches, or fewer than the bound). */
export const plan = (
  store: SearchStoreService,
  filter: MessageFilter,
  page: Partial<PageRequest>
): { readonly driver: Driver; readonly bound: number | undefined } => {
  const options = drivers(filter)
  const exact = options.find((driver) => isExact(filter, driver))
  if (exact !== undefined) return { driver: exact, bound: undefined }
  let best: Driver = options[options.length - 1] ?? { _tag: "Scan" }
  let bestCost = Number.POSITIVE_INFINITY
  for (const driver of options) {
    const [cost] = store.rows<{ n: number }>(costQuery(filter, driver, page, CANDIDATES))
    const n = cost?.n ?? 0
    if (n < bestCost) {
      best = driver
      bestCost = n
    }
    if (n === 0) break
  }
  if (bestCost < CANDIDATES) return { driver: best, bound: undefined }
  const [bound] = store.rows<{ seq: number }>(boundQuery(filter, best, page, CANDIDATES))
  return { driver: best, bound: bound?.seq }
}

export const search = (store: SearchStoreService, filter: MessageFilter, page: PageRequest): SearchPage => {
  const { driver, bound } = plan(store, filter, page)
  const found = store.messages(pageQuery(filter, driver, page, bound))
  const more = found.length > page.limit
  const shown = found.slice(0, page.limit)
  const ascending = page.after !== undefined && page.before === undefined
  if (ascending) {
    // read oldest first from the cursor: the newest of them may have newer ones still
    const rows = [...shown].reverse()
    const newest = rows[0]
    const oldest = rows[rows.length - 1]
    return {
      rows,
      driver: driver._tag,
      ...(oldest !== undefined
        ? { older: oldest.seq }
        : page.after !== undefined
          ? { older: page.after + 1 }
          : {}),
      ...(more && newest !== undefined
        ? { newer: newest.seq }
        : bound !== undefined
          ? { newer: bound, searchedTo: bound }
          : {})
    }
  }
  const oldest = shown[shown.length - 1]
  const newest = shown[0]
  return {
    rows: shown,
    driver: driver._tag,
    ...(more && oldest !== undefined
      ? { older: oldest.seq }
      : bound !== undefined
        ? { older: bound, searchedTo: bound }
        : {}),
    ...(page.before !== undefined ? { newer: newest?.seq ?? page.before - 1 } : {})
  }
}
