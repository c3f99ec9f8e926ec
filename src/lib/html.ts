/** Escapes text for HTML element content and double- or single-quoted attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ENTITIES[c]!)
}

const ENTITIES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
}

/** Markup that is already safe: produced by `html` or explicitly trusted with `raw`. */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value
  }
}

/** Trusts `markup` as it is: only for text this code wrote itself, never for data. */
export const raw = (markup: string) => new SafeHtml(markup)

type Value = SafeHtml | string | number | bigint | boolean | null | undefined | Value[]

/**
 * A template tag that escapes every interpolated value unless it is `SafeHtml` (the result of
 * another `html` or of `raw`). Arrays are joined; `null`, `undefined` and `false` render nothing,
 * so `${cond && html`…`}` works. Escaping is the default, so a forgotten call is not an injection.
 */
export function html(strings: TemplateStringsArray, ...values: Value[]): SafeHtml {
  let out = strings[0]!
  for (let i = 0; i < values.length; i++) out += render(values[i]) + strings[i + 1]!
  return new SafeHtml(out)
}

function render(v: Value): string {
  if (v instanceof SafeHtml) return v.value
  if (Array.isArray(v)) return v.map(render).join('')
  if (v === null || v === undefined || v === false) return ''
  return escapeHtml(String(v))
}
