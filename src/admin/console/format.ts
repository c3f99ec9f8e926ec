import { formatAmount } from '../../lib/amount.ts'
import { html, type SafeHtml } from '../../lib/html.ts'

/** `123456n` at scale 2 → `1,234.56`: exact, from the bigint, with thousands separators. */
export function groupedAmount(value: bigint, scale: number): string {
  const negative = value < 0n
  const [whole, fraction] = formatAmount(negative ? -value : value, scale).split('.')
  const grouped = whole!.replace(/\B(?=(\d{3})+(?!\d))/g, ',')
  return `${negative ? '-' : ''}${grouped}${fraction === undefined ? '' : `.${fraction}`}`
}

/** An amount with its asset code, e.g. `1,234.56 USD`, in a span that keeps digits aligned. */
export function money(value: bigint, scale: number, code: string): SafeHtml {
  return html`<span class="money">${groupedAmount(value, scale)} <span class="code">${code}</span></span>`
}

const DATE_TIME = new Intl.DateTimeFormat('en-GB', {
  timeZone: 'UTC',
  day: 'numeric',
  month: 'short',
  year: 'numeric',
  hour: '2-digit',
  minute: '2-digit',
  second: '2-digit',
})

/** A time as operators compare it across systems: UTC, to the second, machine-readable too. */
export function time(d: Date | null | undefined): SafeHtml {
  if (!d) return html`<span class="muted">—</span>`
  return html`<time datetime="${d.toISOString()}">${DATE_TIME.format(d)} UTC</time>`
}

/** The first block of a UUID, enough to tell rows apart; the whole id is in the tooltip. */
export function shortId(id: string): SafeHtml {
  return html`<span class="id" title="${id}">${id.slice(0, 8)}</span>`
}

const TONES: Record<string, string> = {
  completed: 'good',
  delivered: 'good',
  active: 'good',
  open: 'info',
  sending: 'info',
  pending: 'warn',
  failed: 'bad',
  dead: 'bad',
  expired: 'muted',
  cancelled: 'muted',
  inactive: 'muted',
  disabled: 'muted',
}

/** A state as a coloured pill; the word itself is what the admin API calls the state. */
export function badge(state: string): SafeHtml {
  return html`<span class="badge ${TONES[state] ?? 'muted'}">${state}</span>`
}
