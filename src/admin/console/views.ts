import type { Asset } from '../../assets/service.ts'
import type { AccountKind, OutgoingPaymentState } from '../../db/schema.ts'
import type { IncomingPayment, IncomingPaymentState } from '../../incoming-payments/service.ts'
import type { TransferRecord } from '../../ledger/history.ts'
import { html, type SafeHtml } from '../../lib/html.ts'
import type { OutgoingPayment } from '../../outgoing-payments/service.ts'
import type { Balance } from '../../wallet-addresses/funds.ts'
import type { WalletAddress } from '../../wallet-addresses/service.ts'
import type { Delivery } from '../../webhooks/deliveries.ts'
import type { Endpoint } from '../../webhooks/endpoints.ts'
import { type DayVolume, volumeChart } from './chart.ts'
import { badge, money, shortId, time } from './format.ts'

/** What every view needs besides its data: the session's CSRF token for its forms. */
export interface ViewContext {
  csrf: string
}

export interface WalletRow {
  walletAddress: WalletAddress
  url: string
  balance: Balance
}

export interface IncomingRow {
  payment: IncomingPayment
  state: IncomingPaymentState
  walletAddressUrl: string
}

export interface OutgoingRow {
  payment: OutgoingPayment
  sender: WalletAddress
  walletAddressUrl: string
}

/** Deliveries are shown with their endpoint's URL; a deleted endpoint has none. */
export type EndpointNames = Map<string, Endpoint>

export const INCOMING_STATES: IncomingPaymentState[] = ['open', 'completed', 'expired', 'cancelled']
export const OUTGOING_STATES: OutgoingPaymentState[] = [
  'sending',
  'completed',
  'failed',
  'cancelled',
]

const head = (title: string, text?: string | SafeHtml, tools?: SafeHtml) =>
  html`<div class="pagehead"><div><h1>${title}</h1>${text !== undefined && html`<p>${text}</p>`}</div>${tools}</div>`

const empty = (text: string, cols: number) =>
  html`<tr><td class="empty" colspan="${cols}">${text}</td></tr>`

const notice = (text: string | undefined) =>
  text && html`<p class="notice" role="status">${text}</p>`

const pager = (next: string | undefined) =>
  next &&
  html`<div class="pager"><a class="btn ghost small" href="${next}" rel="next">Next page →</a></div>`

const csrfField = (ctx: ViewContext) => html`<input type="hidden" name="csrf" value="${ctx.csrf}">`

// Tables ------------------------------------------------------------------------------------

function walletTable(rows: WalletRow[], opts: { compact?: boolean } = {}): SafeHtml {
  const cols = opts.compact ? 4 : 6
  return html`<table class="wallets">
<thead><tr><th>Wallet address</th>${!opts.compact && html`<th>Asset</th><th>Status</th>`}<th class="num">Balance</th><th class="num">Reserved</th><th class="num">Available</th></tr></thead>
<tbody>${
    rows.length === 0
      ? empty('No wallet addresses yet.', cols)
      : rows.map(
          ({ walletAddress: wa, url, balance: b }) => html`<tr data-id="${wa.id}">
<td class="wrap-anywhere"><a href="${paymentsHref('incoming', { walletAddressId: wa.id })}" title="Payments of this wallet address">${opts.compact ? (wa.publicName ?? wa.path) : url}</a>${opts.compact && wa.status === 'inactive' && html` ${badge('inactive')}`}<div class="muted small">${opts.compact ? url : wa.publicName}</div></td>
${!opts.compact && html`<td>${wa.assetCode}</td><td>${badge(wa.status)}</td>`}
<td class="num balance">${money(b.balance, wa.assetScale, wa.assetCode)}</td>
<td class="num reserved">${money(b.reserved, wa.assetScale, wa.assetCode)}</td>
<td class="num available">${money(b.available, wa.assetScale, wa.assetCode)}</td>
</tr>`,
        )
  }</tbody>
</table>`
}

function incomingTable(rows: IncomingRow[], opts: { compact?: boolean } = {}): SafeHtml {
  const cols = opts.compact ? 4 : 6
  return html`<table class="incoming">
<thead><tr><th>Payment</th>${!opts.compact && html`<th>Wallet address</th>`}<th>State</th><th class="num">Received</th>${!opts.compact && html`<th class="num">Expected</th>`}<th>Created</th></tr></thead>
<tbody>${
    rows.length === 0
      ? empty('No incoming payments.', cols)
      : rows.map(
          ({ payment: p, state, walletAddressUrl }) => html`<tr data-id="${p.id}">
<td><a href="/console/incoming-payments/${p.id}">${shortId(p.id)}</a></td>
${!opts.compact && html`<td class="wrap-anywhere">${walletAddressUrl}</td>`}
<td class="state">${badge(state)}</td>
<td class="num received">${money(p.receivedAmount, p.assetScale, p.assetCode)}</td>
${!opts.compact && html`<td class="num">${p.incomingAmount === null ? html`<span class="muted">any</span>` : money(p.incomingAmount, p.assetScale, p.assetCode)}</td>`}
<td class="muted small">${time(p.createdAt)}</td>
</tr>`,
        )
  }</tbody>
</table>`
}

function outgoingTable(rows: OutgoingRow[], opts: { compact?: boolean } = {}): SafeHtml {
  const cols = opts.compact ? 4 : 6
  return html`<table class="outgoing">
<thead><tr><th>Payment</th>${!opts.compact && html`<th>From</th><th>To</th>`}<th>State</th><th class="num">Sent</th><th>Created</th></tr></thead>
<tbody>${
    rows.length === 0
      ? empty('No outgoing payments.', cols)
      : rows.map(
          ({ payment: p, sender, walletAddressUrl }) => html`<tr data-id="${p.id}">
<td><a href="/console/outgoing-payments/${p.id}">${shortId(p.id)}</a></td>
${!opts.compact && html`<td class="wrap-anywhere">${walletAddressUrl}</td><td class="wrap-anywhere small">${p.receiver}</td>`}
<td class="state">${badge(p.state)}</td>
<td class="num sent">${money(p.sentAmount, sender.assetScale, sender.assetCode)}</td>
<td class="muted small">${time(p.createdAt)}</td>
</tr>`,
        )
  }</tbody>
</table>`
}

const lastAnswer = (d: Delivery) =>
  d.lastStatusCode !== null
    ? html`HTTP ${d.lastStatusCode}`
    : d.lastError !== null
      ? html`<span title="${d.lastError}">${d.lastError.length > 40 ? `${d.lastError.slice(0, 40)}…` : d.lastError}</span>`
      : html`<span class="muted">—</span>`

function replayButton(ctx: ViewContext, d: Delivery, back: string): SafeHtml | false {
  if (d.status === 'pending') return false
  return html`<form class="inline" method="post" action="/console/webhook-deliveries/${d.id}/replay">${csrfField(ctx)}<input type="hidden" name="back" value="${back}"><button class="btn small ${d.status === 'dead' ? '' : 'ghost'}" type="submit">Replay</button></form>`
}

function deliveryTable(
  ctx: ViewContext,
  rows: Delivery[],
  endpoints: EndpointNames,
  back: string,
  opts: { compact?: boolean } = {},
): SafeHtml {
  const cols = opts.compact ? 4 : 7
  return html`<table class="deliveries">
<thead><tr><th>Event</th>${!opts.compact && html`<th>Endpoint</th>`}<th>Status</th>${!opts.compact && html`<th class="num">Attempts</th>`}<th>Last answer</th>${!opts.compact && html`<th>Queued</th>`}<th></th></tr></thead>
<tbody>${
    rows.length === 0
      ? empty(
          opts.compact
            ? 'No dead letters. Every event was delivered or is on its way.'
            : 'No deliveries.',
          cols,
        )
      : rows.map(
          (d) => html`<tr data-id="${d.id}">
<td><a href="/console/webhook-deliveries/${d.id}">${d.eventType}</a></td>
${!opts.compact && html`<td class="wrap-anywhere small">${endpoints.get(d.endpointId)?.url ?? html`<span class="muted">deleted endpoint</span>`}</td>`}
<td class="status">${badge(d.status)}</td>
${!opts.compact && html`<td class="num">${d.attempts.length}</td>`}
<td class="small">${lastAnswer(d)}</td>
${!opts.compact && html`<td class="muted small">${time(d.createdAt)}</td>`}
<td class="num">${replayButton(ctx, d, back)}</td>
</tr>`,
        )
  }</tbody>
</table>`
}

// Pages -------------------------------------------------------------------------------------

const sum = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0)

const stateChips = (counts: Record<string, number>) =>
  Object.entries(counts).map(
    ([state, n]) =>
      html`<span class="state-count" data-state="${state}">${badge(state)} ${n}</span>`,
  )

export function overviewView(
  ctx: ViewContext,
  p: {
    days: number
    assets: Asset[]
    asset: Asset | undefined
    chart: DayVolume[]
    incomingStates: Record<IncomingPaymentState, number>
    outgoingStates: Record<OutgoingPaymentState, number>
    queue: { pending: number; dead: number }
    wallets: WalletRow[]
    moreWallets: boolean
    incoming: IncomingRow[]
    outgoing: OutgoingRow[]
    deadLetters: Delivery[]
    endpoints: EndpointNames
    notice?: string
  },
): SafeHtml {
  const link = (days: number, asset: Asset | undefined) =>
    `/console?days=${days}${asset ? `&asset=${asset.id}` : ''}`
  const periods = html`<div class="tabs" aria-label="Period">${[7, 14, 30, 90].map(
    (d) => html`<a href="${link(d, p.asset)}" aria-current="${d === p.days}">${d} days</a>`,
  )}</div>`
  const assetTabs =
    p.assets.length > 1 &&
    html`<div class="tabs" aria-label="Asset">${p.assets.map(
      (a) =>
        html`<a href="${link(p.days, a)}" aria-current="${a.id === p.asset?.id}">${a.code}${p.assets.some((b) => b !== a && b.code === a.code) && ` (scale ${a.scale})`}</a>`,
    )}</div>`
  return html`${head('Overview', `Payments created in the last ${p.days} days (UTC), balances and webhook deliveries as of now.`)}
${notice(p.notice)}
<section class="grid kpis">
  <div class="card kpi" id="kpi-incoming"><div class="label">Incoming payments</div><div class="value">${sum(p.incomingStates)}</div><div class="detail">${stateChips(p.incomingStates)}</div></div>
  <div class="card kpi" id="kpi-outgoing"><div class="label">Outgoing payments</div><div class="value">${sum(p.outgoingStates)}</div><div class="detail">${stateChips(p.outgoingStates)}</div></div>
  <div class="card kpi" id="kpi-pending"><div class="label">Webhooks waiting</div><div class="value">${p.queue.pending}</div><div class="detail">deliveries queued or retrying</div></div>
  <a class="card kpi${p.queue.dead > 0 ? ' alert' : ''}" id="kpi-dead" href="/console/webhooks?status=dead"><div class="label">Dead letters</div><div class="value">${p.queue.dead}</div><div class="detail">${p.queue.dead > 0 ? 'deliveries that gave up: replay them' : 'none: every delivery got through'}</div></a>
</section>
<section class="card" id="volume">
  <header><h2>Payment volume</h2><div class="chart-tools">${assetTabs}${periods}</div></header>
  <div class="body">${
    p.asset
      ? volumeChart({ days: p.chart, assetCode: p.asset.code, assetScale: p.asset.scale })
      : html`<p class="empty">No assets yet: create one with <code>POST /assets</code>.</p>`
  }</div>
</section>
<section class="grid two">
  <div class="card flush" id="recent-incoming"><header><h2>Recent incoming payments</h2><a class="more" href="/console/incoming-payments">All incoming →</a></header><div class="body">${incomingTable(p.incoming, { compact: true })}</div></div>
  <div class="card flush" id="recent-outgoing"><header><h2>Recent outgoing payments</h2><a class="more" href="/console/outgoing-payments">All outgoing →</a></header><div class="body">${outgoingTable(p.outgoing, { compact: true })}</div></div>
</section>
<section class="grid two">
  <div class="card flush" id="wallet-addresses"><header><h2>Wallet addresses</h2><a class="more" href="/console/wallet-addresses">${p.moreWallets ? 'All wallet addresses →' : 'Details →'}</a></header><div class="body">${walletTable(p.wallets, { compact: true })}</div></div>
  <div class="card flush" id="dead-letters"><header><h2>Webhook dead letters</h2><a class="more" href="/console/webhooks">Webhook health →</a></header><div class="body">${deliveryTable(ctx, p.deadLetters, p.endpoints, '/console', { compact: true })}</div></div>
</section>`
}

export function walletAddressesView(p: { rows: WalletRow[]; next?: string }): SafeHtml {
  return html`${head('Wallet addresses', 'Balance is what is booked; reserved is held by outgoing payments in flight; available is what can be spent now.')}
<section class="card flush"><div class="body">${walletTable(p.rows)}</div>${pager(p.next)}</section>`
}

/** A payments list's URL with its filters. */
export function paymentsHref(
  kind: 'incoming' | 'outgoing',
  filter: { walletAddressId?: string; state?: string },
): string {
  const q = new URLSearchParams()
  if (filter.walletAddressId) q.set('walletAddressId', filter.walletAddressId)
  if (filter.state) q.set('state', filter.state)
  const query = q.toString()
  return `/console/${kind}-payments${query ? `?${query}` : ''}`
}

const stateTabs = (
  kind: 'incoming' | 'outgoing',
  states: string[],
  current: string | undefined,
  walletAddressId: string | undefined,
) =>
  html`<div class="tabs" aria-label="State">${[undefined, ...states].map(
    (state) =>
      html`<a href="${paymentsHref(kind, { walletAddressId, state })}" aria-current="${state === current}">${state ?? 'All'}</a>`,
  )}</div>`

const kindTabs = (kind: 'incoming' | 'outgoing', walletAddressId: string | undefined) =>
  html`<div class="tabs" aria-label="Direction">${(['incoming', 'outgoing'] as const).map(
    (k) =>
      html`<a href="${paymentsHref(k, { walletAddressId })}" aria-current="${k === kind}">${k === 'incoming' ? 'Incoming' : 'Outgoing'}</a>`,
  )}</div>`

export function incomingPaymentsView(p: {
  rows: IncomingRow[]
  state?: IncomingPaymentState
  walletAddress?: { id: string; url: string }
  next?: string
}): SafeHtml {
  return html`${head('Payments', p.walletAddress ? html`Incoming payments of ${p.walletAddress.url}` : 'Newest first.', kindTabs('incoming', p.walletAddress?.id))}
<section class="card flush"><header>${stateTabs('incoming', INCOMING_STATES, p.state, p.walletAddress?.id)}</header><div class="body">${incomingTable(p.rows)}</div>${pager(p.next)}</section>`
}

export function outgoingPaymentsView(p: {
  rows: OutgoingRow[]
  state?: OutgoingPaymentState
  walletAddress?: { id: string; url: string }
  next?: string
}): SafeHtml {
  return html`${head('Payments', p.walletAddress ? html`Outgoing payments of ${p.walletAddress.url}` : 'Newest first.', kindTabs('outgoing', p.walletAddress?.id))}
<section class="card flush"><header>${stateTabs('outgoing', OUTGOING_STATES, p.state, p.walletAddress?.id)}</header><div class="body">${outgoingTable(p.rows)}</div>${pager(p.next)}</section>`
}

const field = (label: string, value: SafeHtml | string | number | null | undefined, key?: string) =>
  html`<dt>${label}</dt><dd${key ? html` data-field="${key}"` : ''}>${value ?? html`<span class="muted">—</span>`}</dd>`

/** How the ledger's account kinds read to an operator. */
const ACCOUNT_NAMES: Record<AccountKind, string> = {
  wallet: 'wallet',
  incoming: 'incoming clearing',
  outgoing: 'outgoing clearing',
  settlement: 'settlement',
  peer: 'peer',
  fees: 'fees',
}

const json = (value: unknown) => JSON.stringify(value, null, 2)

export function incomingPaymentView(row: IncomingRow & { url: string }): SafeHtml {
  const p = row.payment
  return html`<div class="crumbs"><a href="/console/incoming-payments">Payments</a> / Incoming</div>
${head('Incoming payment', html`<span class="id">${p.id}</span>`, badge(row.state))}
<section class="card"><div class="body"><dl class="fields">
${field('State', badge(row.state), 'state')}
${field('Open Payments id', row.url)}
${field('Wallet address', row.walletAddressUrl)}
${field('Received', money(p.receivedAmount, p.assetScale, p.assetCode), 'receivedAmount')}
${field('Expected', p.incomingAmount === null ? 'any amount' : money(p.incomingAmount, p.assetScale, p.assetCode), 'incomingAmount')}
${field('Client', p.client)}
${field('Created', time(p.createdAt))}
${field('Expires', time(p.expiresAt))}
${field('Completed', p.completedAt && time(p.completedAt))}
${p.cancelledAt && field('Cancelled', time(p.cancelledAt))}
${p.cancelReason !== null && field('Cancel reason', p.cancelReason)}
</dl></div></section>
${p.metadata !== null && html`<section class="card" id="metadata"><header><h2>Metadata</h2></header><pre class="json">${json(p.metadata)}</pre></section>`}`
}

export function outgoingPaymentView(
  row: OutgoingRow & {
    url: string
    transfers: TransferRecord[]
    accountKinds: Map<string, AccountKind>
  },
): SafeHtml {
  const p = row.payment
  const s = row.sender
  const account = (id: string) => {
    const kind = row.accountKinds.get(id)
    return html`${kind ? ACCOUNT_NAMES[kind] : 'account'} ${shortId(id)}`
  }
  return html`<div class="crumbs"><a href="/console/outgoing-payments">Payments</a> / Outgoing</div>
${head('Outgoing payment', html`<span class="id">${p.id}</span>`, badge(p.state))}
<section class="card"><div class="body"><dl class="fields">
${field('State', badge(p.state), 'state')}
${p.failure !== null && field(p.state === 'cancelled' ? 'Cancel reason' : 'Failure', p.failure, 'failure')}
${field('Open Payments id', row.url)}
${field('From', row.walletAddressUrl)}
${field('To (receiver)', p.receiver)}
${field('Debit', money(p.debitAmount, s.assetScale, s.assetCode), 'debitAmount')}
${field('Fee', money(p.feeAmount, s.assetScale, s.assetCode), 'feeAmount')}
${field('Sent', money(p.sentAmount, s.assetScale, s.assetCode), 'sentAmount')}
${field('Receive amount', money(p.receiveAmount, p.receiveAsset.scale, p.receiveAsset.code), 'receiveAmount')}
${field('Attempts', p.attempts)}
${field('Client', p.client)}
${field('Created', time(p.createdAt))}
${field('Updated', time(p.updatedAt))}
</dl></div></section>
<section class="card flush" id="transfers"><header><h2>Ledger transfers</h2><span class="muted small">oldest first</span></header><div class="body"><table>
<thead><tr><th>Transfer</th><th>Debit</th><th>Credit</th><th>State</th><th class="num">Amount</th><th>Booked</th></tr></thead>
<tbody>${
    row.transfers.length === 0
      ? empty('No transfers.', 6)
      : row.transfers.map(
          (t) =>
            html`<tr><td class="id small">${t.id}</td><td class="small">${account(t.debitAccountId)}</td><td class="small">${account(t.creditAccountId)}</td><td>${badge(t.state === 'posted' ? 'completed' : t.state)}</td><td class="num">${money(t.postedAmount ?? t.amount, s.assetScale, s.assetCode)}</td><td class="muted small">${time(t.createdAt)}</td></tr>`,
        )
  }</tbody></table></div></section>
${p.metadata !== null && html`<section class="card" id="metadata"><header><h2>Metadata</h2></header><pre class="json">${json(p.metadata)}</pre></section>`}`
}

export function webhooksView(
  ctx: ViewContext,
  p: {
    queue: { pending: number; dead: number }
    endpoints: Endpoint[]
    deliveries: Delivery[]
    allEndpoints: EndpointNames
    status?: 'pending' | 'delivered' | 'dead'
    next?: string
    notice?: string
  },
): SafeHtml {
  const back = `/console/webhooks${p.status ? `?status=${p.status}` : ''}`
  const tab = (status?: string) =>
    html`<a href="/console/webhooks${status ? `?status=${status}` : ''}" aria-current="${status === p.status}">${status ?? 'All'}</a>`
  return html`${head('Webhooks', 'Deliveries of signed events to your endpoints. A delivery that fails is retried with backoff, then dead-lettered; replay sends it again with the same webhook-id.')}
${notice(p.notice)}
<section class="grid kpis three">
  <div class="card kpi" id="kpi-pending"><div class="label">Waiting</div><div class="value">${p.queue.pending}</div><div class="detail">queued or retrying</div></div>
  <div class="card kpi${p.queue.dead > 0 ? ' alert' : ''}" id="kpi-dead"><div class="label">Dead letters</div><div class="value">${p.queue.dead}</div><div class="detail">gave up after the retry period</div></div>
  <div class="card kpi" id="kpi-endpoints"><div class="label">Endpoints</div><div class="value">${p.endpoints.length}</div><div class="detail">${p.endpoints.filter((e) => e.enabled).length} enabled</div></div>
</section>
<section class="card flush" id="endpoints"><header><h2>Endpoints</h2></header><div class="body"><table>
<thead><tr><th>URL</th><th>Events</th><th>Status</th><th></th></tr></thead>
<tbody>${
    p.endpoints.length === 0
      ? empty('No endpoints: add one with POST /webhook-endpoints.', 4)
      : p.endpoints.map(
          (e) => html`<tr data-id="${e.id}">
<td class="wrap-anywhere">${e.url}${e.description !== null && html`<div class="muted small">${e.description}</div>`}</td>
<td class="small">${e.eventTypes.join(', ')}</td>
<td>${badge(e.enabled ? 'active' : 'disabled')}</td>
<td class="num"><form class="inline" method="post" action="/console/webhook-endpoints/${e.id}/replay-dead-letters">${csrfField(ctx)}<button class="btn small ghost" type="submit">Replay dead letters</button></form></td>
</tr>`,
        )
  }</tbody></table></div></section>
<section class="card flush" id="deliveries"><header><h2>Deliveries</h2><div class="tabs" aria-label="Status">${[undefined, 'dead', 'pending', 'delivered'].map(tab)}</div></header>
<div class="body">${deliveryTable(ctx, p.deliveries, p.allEndpoints, back)}</div>${pager(p.next)}</section>`
}

export function deliveryView(
  ctx: ViewContext,
  p: { delivery: Delivery; endpoint: Endpoint | undefined; payload: unknown; notice?: string },
): SafeHtml {
  const d = p.delivery
  return html`<div class="crumbs"><a href="/console/webhooks">Webhooks</a> / Delivery</div>
${head(d.eventType, html`<span class="id">${d.id}</span>`, replayButton(ctx, d, `/console/webhook-deliveries/${d.id}`) || undefined)}
${notice(p.notice)}
<section class="card"><div class="body"><dl class="fields">
${field('Status', badge(d.status), 'status')}
${field('Endpoint', p.endpoint?.url ?? 'deleted endpoint')}
${field('Event id (webhook-id)', d.eventId)}
${field('Queued', time(d.createdAt))}
${d.status === 'pending' && field('Next attempt', time(d.nextAttemptAt))}
${field('Delivered', d.deliveredAt && time(d.deliveredAt))}
</dl></div></section>
<section class="card flush" id="attempts"><header><h2>Attempts</h2></header><div class="body"><table>
<thead><tr><th class="num">#</th><th>Started</th><th class="num">Duration</th><th>Answer</th><th>Response (start)</th></tr></thead>
<tbody>${
    d.attempts.length === 0
      ? empty('Not attempted yet.', 5)
      : d.attempts.map(
          (a) =>
            html`<tr><td class="num">${a.attempt}</td><td class="small">${time(a.startedAt)}</td><td class="num">${a.durationMs} ms</td><td>${a.delivered ? badge('delivered') : badge('failed')} ${a.statusCode !== null ? `HTTP ${a.statusCode}` : a.error}</td><td class="small wrap-anywhere">${a.responseExcerpt ?? ''}</td></tr>`,
        )
  }</tbody></table></div></section>
<section class="card" id="payload"><header><h2>Payload</h2><span class="muted small">as signed and sent</span></header><pre class="json">${json(p.payload)}</pre></section>`
}
