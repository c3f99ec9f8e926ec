import { html, type SafeHtml } from '../../lib/html.ts'
import { groupedAmount } from './format.ts'

/** One day of one asset: what incoming payments received and outgoing payments sent. */
export interface DayVolume {
  /** `YYYY-MM-DD`, UTC. */
  date: string
  incoming: bigint
  incomingCount: number
  outgoing: bigint
  outgoingCount: number
}

const W = 820
const H = 250
const PAD = { left: 64, right: 8, top: 12, bottom: 30 }

const DAY_LABEL = new Intl.DateTimeFormat('en-GB', {
  timeZone: 'UTC',
  day: 'numeric',
  month: 'short',
})
const dayLabel = (date: string) => DAY_LABEL.format(new Date(`${date}T00:00:00Z`))

/** The smallest of 1, 2, 2.5, 3, 4, 5, 6, 8 × 10^k at or above `x` (x > 0): a round axis top. */
function niceCeil(x: number): number {
  const power = 10 ** Math.floor(Math.log10(x))
  for (const m of [1, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * power >= x) return m * power
  return 10 * power
}

const COMPACT = new Intl.NumberFormat('en', { notation: 'compact', maximumFractionDigits: 2 })

/**
 * Grouped bars per day, drawn as inline SVG (no script, no chart library). Amounts are exact
 * bigints everywhere people read them (tooltips and the table below the chart); only bar heights
 * and axis labels go through floating point, because pixels and "1.5K" need no more.
 */
export function volumeChart(p: {
  days: DayVolume[]
  assetCode: string
  assetScale: number
}): SafeHtml {
  const max = p.days.reduce(
    (m, d) => (d.incoming > m ? d.incoming : d.outgoing > m ? d.outgoing : m),
    0n,
  )
  const unit = 10 ** p.assetScale
  const top = max === 0n ? 1 : niceCeil(Number(max) / unit)
  const plotW = W - PAD.left - PAD.right
  const plotH = H - PAD.top - PAD.bottom
  const y = (minor: bigint) => (Number(minor) / unit / top) * plotH
  const slot = plotW / p.days.length
  const barW = Math.max(2, Math.min(22, slot * 0.36))
  const labelEvery = Math.ceil(p.days.length / 10)
  const ticks = [0, 0.25, 0.5, 0.75, 1]

  const grid = ticks.map((t) => {
    const ty = PAD.top + plotH - t * plotH
    return html`<line class="grid-line" x1="${PAD.left}" x2="${W - PAD.right}" y1="${ty}" y2="${ty}"></line>
<text class="axis" x="${PAD.left - 8}" y="${ty + 4}" text-anchor="end">${COMPACT.format(t * top)}</text>`
  })
  const bars = p.days.map((d, i) => {
    const cx = PAD.left + slot * i + slot / 2
    const bar = (value: bigint, count: number, x: number, cls: string, what: string) => {
      const h = y(value)
      return html`<rect class="${cls}" x="${x.toFixed(1)}" y="${(PAD.top + plotH - h).toFixed(1)}" width="${barW.toFixed(1)}" height="${h.toFixed(1)}" rx="2"><title>${dayLabel(d.date)}: ${what} ${groupedAmount(value, p.assetScale)} ${p.assetCode} (${count} ${count === 1 ? 'payment' : 'payments'})</title></rect>`
    }
    return html`<g>
${bar(d.incoming, d.incomingCount, cx - barW - 1, 'bar-in', 'received')}
${bar(d.outgoing, d.outgoingCount, cx + 1, 'bar-out', 'sent')}
${i % labelEvery === 0 && html`<text class="axis" x="${cx.toFixed(1)}" y="${H - 10}" text-anchor="middle">${dayLabel(d.date)}</text>`}
</g>`
  })

  return html`<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="Payment volume per day in ${p.assetCode}">
${grid}
${bars}
</svg>
<div class="legend"><span><span class="swatch in"></span>Received (incoming payments)</span><span><span class="swatch out"></span>Sent (outgoing payments)</span><span class="muted">in ${p.assetCode}, by the day payments were created (UTC)</span></div>
<details class="data"><summary>Show as table</summary>
<table class="volume-table">
<thead><tr><th>Day</th><th class="num">Incoming</th><th class="num">Received</th><th class="num">Outgoing</th><th class="num">Sent</th></tr></thead>
<tbody>${p.days.map(
    (d) =>
      html`<tr data-date="${d.date}"><td>${dayLabel(d.date)}</td><td class="num">${d.incomingCount}</td><td class="num">${groupedAmount(d.incoming, p.assetScale)}</td><td class="num">${d.outgoingCount}</td><td class="num">${groupedAmount(d.outgoing, p.assetScale)}</td></tr>`,
  )}</tbody>
</table>
</details>`
}
