/**
 * HTML built by a tagged template that escapes everything it is given, except what is already
 * `Html` (made by this template). So a page can only hold text it did not mean as markup by going
 * through `trusted`, used for constants of this code only.
 */
export class Html {
  constructor(readonly text: string) {}
  toString() {
    return this.text
  }
}

export type Interpolation = Html | string | number | boolean | null | undefined | ReadonlyArray<Interpolation>

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
  "`": "&#96;"
}

export const escapeHtml = (text: string): string => text.replace(/[&<>"'`]/g, (c) => ESCAPES[c] ?? c)

const render = (value: Interpolation): string => {
  if (value instanceof Html) return value.text
  if (Array.isArray(value)) return value.map(render).join("")
  if (typeof value === "string") return escapeHtml(value)
  if (typeof value === "number") return String(value)
  // false, null and undefined render nothing, so `${cond && html`…`}` works
  return ""
}

export const html = (strings: TemplateStringsArray, ...values: ReadonlyArray<Interpolation>): Html => {
  let text = strings[0] ?? ""
  for (let i = 0; i < values.length; i++) text += render(values[i]) + (strings[i + 1] ?? "")
  return new Html(text)
}

/** Markup from this code's own constants: never from a request, an event or a stored value. */
export const trusted = (text: string): Html => new Html(text)

export const join = (parts: ReadonlyArray<Html>, separator: Html = trusted("")): Html =>
  new Html(parts.map((part) => part.text).join(separator.text))
