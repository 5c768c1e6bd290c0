/**
 * What the console's pages load besides themselves, all served by the gateway: htmx, read from the
 * installed `htmx.org` package, its server-sent-events extension (the `htmx-ext-sse` package), and the stylesheet
 * below. Nothing is fetched from a CDN, at build or at run time. No inline script or style anywhere, so
 * the Content-Security-Policy can forbid both.
 */
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"

const require = createRequire(import.meta.url)

export interface Asset {
  readonly body: string
  readonly contentType: string
}

const fromPackage = (specifier: string): string => readFileSync(require.resolve(specifier), "utf8")

const STYLESHEET = `
:root { --fg: #1d2330; --muted: #5b6475; --line: #d9dde5; --bg: #f6f7f9; --accent: #2457c5;
  --ok: #1f7a3d; --warn: #9a6200; --bad: #b42318; font-size: 14px; }
* { box-sizing: border-box; }
body { margin: 0; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
  background: var(--bg); line-height: 1.4; }
header { display: flex; align-items: center; gap: 1.2rem; padding: .5rem 1.2rem; background: #1d2330; color: #fff; }
header a { color: #d7def0; text-decoration: none; } header a:hover, header a.active { color: #fff; }
header a.active { border-bottom: 2px solid #fff; }
header .brand { font-weight: 600; color: #fff; } header nav { display: flex; gap: 1rem; flex: 1; }
header form { margin: 0; } header .who { color: #d7def0; }
header button { background: none; border: 1px solid #6b7489; color: #fff; padding: .15rem .6rem; border-radius: 4px; cursor: pointer; }
main { max-width: 1280px; margin: 0 auto; padding: 1rem 1.2rem 3rem; }
h1 { font-size: 1.35rem; margin: .2rem 0 1rem; } h2 { font-size: 1.1rem; margin: 1.4rem 0 .6rem; }
table { width: 100%; border-collapse: collapse; background: #fff; border: 1px solid var(--line); }
th, td { text-align: left; padding: .35rem .55rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #eef0f4; font-weight: 600; white-space: nowrap; } tr:hover td { background: #fafbfd; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .92em; }
a { color: var(--accent); }
form.filters { display: flex; flex-wrap: wrap; gap: .6rem; align-items: flex-end; background: #fff;
  border: 1px solid var(--line); padding: .7rem; margin-bottom: .8rem; }
form.filters label, form.action label { display: flex; flex-direction: column; font-size: .85rem; color: var(--muted); gap: .15rem; }
input, select, textarea { font: inherit; padding: .3rem .45rem; border: 1px solid #b9c0cc; border-radius: 4px; background: #fff; }
button { font: inherit; padding: .32rem .8rem; border-radius: 4px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; }
button.secondary { background: #fff; color: var(--accent); } button.danger { background: var(--bad); border-color: var(--bad); }
form.action { display: flex; flex-wrap: wrap; gap: .5rem; align-items: flex-end; margin: 0; }
.status { display: inline-block; padding: 0 .45rem; border-radius: 9px; font-size: .85rem; background: #e8ebf0; }
.status.delivered, .status.active, .status.closed { background: #dcf3e3; color: var(--ok); }
.status.failed, .status.inactive, .status.open { background: #fde4e1; color: var(--bad); }
.status.retrying, .status.unknown, .status.half-open, .status.paused { background: #fdf0d5; color: var(--warn); }
.notice { padding: .6rem .8rem; border-radius: 4px; margin-bottom: 1rem; background: #e6effc; border: 1px solid #b8cdf3; }
.notice.error { background: #fde4e1; border-color: #f3b8b0; } .notice.ok { background: #dcf3e3; border-color: #aadbb9; }
.muted { color: var(--muted); } .small { font-size: .85rem; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: .8rem; }
.card { background: #fff; border: 1px solid var(--line); padding: .7rem .9rem; border-radius: 4px; }
.card .value { font-size: 1.5rem; font-variant-numeric: tabular-nums; } .card .label { color: var(--muted); font-size: .85rem; }
ol.timeline { list-style: none; padding: 0; margin: 0; border-left: 3px solid var(--line); }
ol.timeline li { position: relative; margin: 0 0 .9rem; padding-left: 1rem; }
ol.timeline li::before { content: ""; position: absolute; left: -8px; top: .35rem; width: 13px; height: 13px;
  border-radius: 50%; background: #fff; border: 3px solid var(--muted); }
ol.timeline li.delivered::before { border-color: var(--ok); } ol.timeline li.failed::before { border-color: var(--bad); }
ol.timeline li.retrying::before, ol.timeline li.unknown::before { border-color: var(--warn); }
ol.timeline .when { color: var(--muted); font-size: .85rem; } ol.timeline .step { font-weight: 600; }
details summary { cursor: pointer; color: var(--accent); font-size: .85rem; }
pre { background: #11151c; color: #e6e9ef; padding: .6rem; border-radius: 4px; overflow-x: auto; font-size: .85rem; }
.pager { display: flex; gap: 1rem; margin: .7rem 0; align-items: center; }
.login { max-width: 420px; margin: 12vh auto; background: #fff; border: 1px solid var(--line); padding: 1.4rem; border-radius: 6px; }
.login input { width: 100%; margin: .4rem 0 .8rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; background: #fff;
  border: 1px solid var(--line); padding: .7rem .9rem; margin: 0 0 1rem; } dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0; }
`

/** A speech bubble: without an icon the browser asks for /favicon.ico, which the API answers 404. */
const FAVICON =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><path fill="#2457c5" d="M2 2h12v9H6l-4 3z"/></svg>'

/** The assets by the name they are served under (`/console/assets/<name>`), loaded once. */
export const loadAssets = (): ReadonlyMap<string, Asset> =>
  new Map([
    [
      "htmx.min.js",
      { body: fromPackage("htmx.org/dist/htmx.min.js"), contentType: "text/javascript; charset=utf-8" }
    ],
    [
      "sse.js",
      // htmx 2's own extension (the `htmx-ext-sse` package): the one in `htmx.org/dist/ext/` is for htmx 1
      { body: fromPackage("htmx-ext-sse/dist/sse.js"), contentType: "text/javascript; charset=utf-8" }
    ],
    ["console.css", { body: STYLESHEET.trim(), contentType: "text/css; charset=utf-8" }],
    ["favicon.svg", { body: FAVICON, contentType: "image/svg+xml" }]
  ])
