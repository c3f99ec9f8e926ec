import { randomUUID } from 'node:crypto'
import type { Selectable } from 'kysely'
import {
  type TokenGrant,
  tokenActiveSql,
  tokenGrantOf,
  tokenGrantSql,
  tokenParams,
} from '../auth/grants.ts'
import { type Db, prepared } from '../db/database.ts'
import type { QuotesTable } from '../db/schema.ts'
import type { Deps } from '../deps.ts'
import { getFee } from '../fees/service.ts'
import { peerSendData } from '../ilp/outgoing.ts'
import { type IlpTerms, minimumRate } from '../ilp/sender.ts'
import type { IncomingFacts } from '../incoming-payments/facts.ts'
import type { Ratio } from '../rates/ratio.ts'
import type { WalletAddress } from '../wallet-addresses/service.ts'
import {
  type FeeSchedule,
  feeOn,
  minSendAmount,
  type Price,
  price,
  principalFor,
  unitRate,
} from './pricing.ts'
import { type Receiver, receiverFromFacts, resolveReceiver } from './receiver.ts'

export interface Quote {
  id: string
  walletAddressId: string
  client: string
  receiver: string
  localIncomingPaymentId: string | null
  debitAmount: bigint
  feeAmount: bigint
  receiveAmount: bigint
  receiveAsset: { code: string; scale: number }
  expiresAt: Date
  createdAt: Date
}

export type QuoteError =
  | 'invalid_receiver'
  | 'invalid_amount'
  | 'no_amount'
  | 'non_positive'
  | 'no_rate'

/** A refusal; a fixed send too small to deliver anything says what would be enough. */
export type QuoteRefusal = QuoteError | { error: 'non_positive'; minSendAmount: bigint }

export interface QuoteRequest {
  walletAddress: WalletAddress
  client: string
  receiver: string
  /** Fixed send, in the sender's asset (checked by the caller). */
  debitAmount?: bigint
  /** Fixed receive, in the receiver's asset (checked here: the asset is the receiver's). */
  receiveAmount?: { value: bigint; assetCode: string; assetScale: number }
  /** The receiver when the caller resolved it already (`localReceiver`): no second read. */
  resolved?: { receiver: Receiver | undefined }
}

/**
 * Quotes a payment from a wallet address to an incoming payment: fixed send, fixed receive, or —
 * with neither amount — what the receiver still expects (`incomingAmount` less what it received).
 * The quote binds until it expires, never later than the receiver does.
 */
export async function createQuote(deps: Deps, req: QuoteRequest): Promise<Quote | QuoteRefusal> {
  const priced = await priceQuote(deps, req)
  return typeof priced === 'string' || 'error' in priced ? priced : saveQuote(deps.db, priced)
}

/**
 * A quote to a local receiver priced from its kept facts (`receiverFromFacts`) and stored by one
 * statement that checks the receiver and, with `tokenUnchecked`, the token (`saveQuoteIfReceiver`).
 * undefined when that write refused, or pricing did (its answer waits for the token's state): the
 * caller reads the receiver and the token, and quotes from the read.
 */
export async function quoteFromFacts(
  deps: Deps,
  req: QuoteRequest,
  facts: IncomingFacts,
  tokenUnchecked: string | undefined,
): Promise<Quote | undefined> {
  const receiver = receiverFromFacts(req.receiver, facts)
  if (!receiver) return undefined
  const priced = await priceQuote(deps, { ...req, resolved: { receiver } })
  if (typeof priced === 'string' || 'error' in priced) return undefined
  return (await saveQuoteIfReceiver(deps.db, priced, facts, tokenUnchecked)) ? priced : undefined
}

/** A quote priced and not yet stored (`saveQuote`, or in the statement of its payment). */
export interface PricedQuote extends Quote {
  rate: Ratio
  ilpTerms: IlpTerms | undefined
}

/** `createQuote` without the write. */
export async function priceQuote(
  deps: Deps,
  req: QuoteRequest,
): Promise<PricedQuote | QuoteRefusal> {
  const { db, config, rates } = deps
  // A receiver at another ASE is read on the client's behalf, against its fetch budget.
  const receiver = req.resolved
    ? req.resolved.receiver
    : await resolveReceiver(deps, req.receiver, { requester: `client:${req.client}` })
  if (!receiver) return 'invalid_receiver'
  const remaining =
    receiver.incomingAmount === null ? undefined : receiver.incomingAmount - receiver.receivedAmount
  let mode: { debit: bigint } | { receive: bigint }
  if (req.debitAmount !== undefined) {
    mode = { debit: req.debitAmount }
  } else if (req.receiveAmount) {
    const r = req.receiveAmount
    if (r.assetCode !== receiver.asset.code || r.assetScale !== receiver.asset.scale)
      return 'invalid_amount'
    if (remaining !== undefined && r.value > remaining) return 'invalid_amount'
    mode = { receive: r.value }
  } else {
    if (remaining === undefined) return 'no_amount'
    mode = { receive: remaining }
  }

  const wa = req.walletAddress
  const rate = await rates.rate(wa.assetCode, receiver.asset.code)
  if (!rate) return 'no_rate'
  const fees = await getFee(db, wa.assetId)
  const fx = { rate, sourceScale: wa.assetScale, destScale: receiver.asset.scale }
  let priced: ReturnType<typeof price> | QuoteError
  let terms: IlpTerms | undefined
  if (receiver.ilp) {
    const remote = await priceRemote(deps, wa, { ...receiver, ilp: receiver.ilp }, mode, rate, fees)
    if (typeof remote === 'string' && remote !== 'non_positive') return remote
    priced = typeof remote === 'string' ? remote : remote.price
    terms = typeof remote === 'string' ? undefined : remote.terms
  } else {
    priced = price(mode, fx, fees)
  }
  if (priced === 'non_positive') {
    // Over Interledger a payment is promised only what the minimum rate (slippage) delivers.
    const least =
      'debit' in mode &&
      minSendAmount(
        receiver.ilp
          ? minimumRate(rate, config.openPayments.ilpSlippage, wa.assetScale, receiver.asset.scale)
          : unitRate(fx),
        fees,
      )
    return least ? { error: 'non_positive', minSendAmount: least } : 'non_positive'
  }
  if (priced === 'too_large') return 'invalid_amount'
  // A fixed-send quote may buy more than the receiver still accepts.
  if (remaining !== undefined && priced.receive > remaining) return 'invalid_amount'

  const now = Date.now()
  const lifespanEnd = now + config.openPayments.quoteLifespanSeconds * 1000
  return {
    id: randomUUID(),
    walletAddressId: wa.id,
    client: req.client,
    receiver: receiver.url,
    localIncomingPaymentId: receiver.localIncomingPaymentId,
    debitAmount: priced.debit,
    feeAmount: priced.fee,
    receiveAmount: priced.receive,
    receiveAsset: receiver.asset,
    expiresAt: new Date(Math.min(lifespanEnd, receiver.expiresAt?.getTime() ?? lifespanEnd)),
    createdAt: new Date(now),
    rate,
    ilpTerms: terms,
  }
}

/** The quotes columns' values of a priced quote, in `QUOTE_COLUMNS`' order. */
export const quoteValues = (q: PricedQuote) => [
  q.id,
  q.walletAddressId,
  q.client,
  q.receiver,
  q.localIncomingPaymentId,
  q.debitAmount,
  q.feeAmount,
  q.receiveAmount,
  q.receiveAsset.code,
  q.receiveAsset.scale,
  q.rate.num,
  q.rate.den,
  q.ilpTerms
    ? JSON.stringify(q.ilpTerms, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))
    : null,
  q.expiresAt,
  q.createdAt,
]

export const QUOTE_COLUMNS = `id, wallet_address_id, client, receiver, receiver_incoming_payment_id,
  debit_amount, fee_amount, receive_amount, receive_asset_code, receive_asset_scale,
  rate_numerator, rate_denominator, ilp_terms, expires_at, created_at`

/** `quoteValues` as parameters, typed as their columns (so that they can be SELECTed too). */
const QUOTE_VALUES = `$1::uuid, $2::uuid, $3::text, $4::text, $5::uuid, $6::numeric, $7::numeric,
  $8::numeric, $9::text, $10::smallint, $11::numeric, $12::numeric, $13::jsonb, $14::timestamptz,
  $15::timestamptz`

const insertQuote = prepared(`INSERT INTO quotes (${QUOTE_COLUMNS}) VALUES (${QUOTE_VALUES})`, {
  shared: true,
})

/** Stores a priced quote; every column is known, so nothing is read back. */
export async function saveQuote(db: Db, q: PricedQuote): Promise<Quote> {
  await insertQuote(db, quoteValues(q))
  return q
}

// The receiver (`$5`) still has the facts the quote was priced from (its owner `$16` and the
// owner's asset `$9`/`$10`, what it expects `$17`, when it expires `$18`, to the millisecond a
// Date holds), is open at the quote's creation (`$15`), and still expects at least what the quote
// delivers (`$8`).
const RECEIVER_AS_PRICED = `EXISTS (SELECT 1 FROM incoming_payments p
   JOIN wallet_addresses w ON w.id = p.wallet_address_id
   JOIN assets a ON a.id = w.asset_id
   WHERE p.id = $5 AND p.wallet_address_id = $16 AND a.code = $9 AND a.scale = $10
     AND p.incoming_amount IS NOT DISTINCT FROM $17::numeric
     AND p.expires_at >= $18 AND p.expires_at < $18::timestamptz + interval '1 millisecond'
     AND p.completed_at IS NULL AND p.expires_at > $15
     AND (p.incoming_amount IS NULL OR p.incoming_amount - p.received_amount >= $8))`
const insertQuoteIfReceiver = prepared<{ saved: number }>(
  `INSERT INTO quotes (${QUOTE_COLUMNS}) SELECT ${QUOTE_VALUES}
    WHERE ${RECEIVER_AS_PRICED} RETURNING 1 AS saved`,
  { shared: true },
)
const insertQuoteIfReceiverAndToken = prepared<{ saved: number }>(
  `INSERT INTO quotes (${QUOTE_COLUMNS}) SELECT ${QUOTE_VALUES}
    WHERE ${RECEIVER_AS_PRICED} AND ${tokenActiveSql('$19', '$15')} RETURNING 1 AS saved`,
  { shared: true },
)

/**
 * Stores a quote priced from a local receiver's kept facts (`incoming-payments/facts.ts`), in one
 * statement that holds the receiver's row to them and to its state; with `tokenUnchecked`, the
 * token's state too (`tokenActiveSql`). false: nothing was written (the receiver is not as priced, or
 * the token is not active), and the caller reads the receiver and prices again.
 */
export async function saveQuoteIfReceiver(
  db: Db,
  q: PricedQuote,
  facts: IncomingFacts,
  tokenUnchecked: string | undefined,
): Promise<boolean> {
  const values = [...quoteValues(q), facts.walletAddressId, facts.incomingAmount, facts.expiresAt]
  const rows =
    tokenUnchecked === undefined
      ? await insertQuoteIfReceiver(db, values)
      : await insertQuoteIfReceiverAndToken(db, [...values, tokenUnchecked])
  return rows.length === 1
}

/**
 * Prices a payment to another ASE by probing the Interledger path (no money moves): the probe's
 * minimum delivery (fixed send) or maximum source amount (fixed receive) becomes the quote, fees on
 * top as for local payments.
 */
async function priceRemote(
  deps: Deps,
  wa: WalletAddress,
  receiver: Receiver & { ilp: NonNullable<Receiver['ilp']> },
  mode: { debit: bigint } | { receive: bigint },
  rate: Ratio,
  fees: FeeSchedule,
): Promise<{ price: Price; terms: IlpTerms } | QuoteError> {
  const source = { assetCode: wa.assetCode, assetScale: wa.assetScale }
  const principal = 'debit' in mode ? principalFor(mode.debit, fees) : undefined
  if (principal !== undefined && principal <= 0n) return 'non_positive'
  const terms = await deps.ilpSender.quote({
    sendData: peerSendData(deps, source),
    destination: { ...receiver.ilp, asset: receiver.asset },
    sourceAsset: { code: wa.assetCode, scale: wa.assetScale },
    amount:
      principal !== undefined
        ? { send: principal }
        : { deliver: (mode as { receive: bigint }).receive },
    rate,
    slippage: deps.config.openPayments.ilpSlippage,
  })
  if ('error' in terms) {
    deps.logger.info({ error: terms.error, receiver: receiver.url }, 'rate probe failed')
    if (terms.error === 'InsufficientExchangeRate') return 'non_positive'
    return terms.error === 'AmountTooLarge' ? 'invalid_amount' : 'invalid_receiver'
  }
  if ('debit' in mode) {
    if (terms.minDeliveryAmount <= 0n) return 'non_positive'
    return {
      price: { debit: mode.debit, fee: mode.debit - principal!, receive: terms.minDeliveryAmount },
      terms,
    }
  }
  const fee = feeOn(terms.maxSourceAmount, fees)
  return { price: { debit: terms.maxSourceAmount + fee, fee, receive: mode.receive }, terms }
}

/** The sending wallet address as a quote's JSON shows it. */
export interface QuoteSender {
  path: string
  assetCode: string
  assetScale: number
}

const quoteWithTokenGrant = prepared<
  Selectable<QuotesTable> & { path: string; code: string; scale: number; token_grant: unknown }
>(
  `SELECT q.*, w.path, a.code, a.scale, ${tokenGrantSql('$2', '$3')} AS token_grant
     FROM quotes q
     JOIN wallet_addresses w ON w.id = q.wallet_address_id
     JOIN assets a ON a.id = w.asset_id
    WHERE q.id = $1`,
  { shared: true },
)

/**
 * A quote with its sender, and the grant of the request's access token, in one statement (the
 * introspection rides in the read); undefined when there is no such quote.
 */
export async function getQuoteWithTokenGrant(
  db: Db,
  id: string,
  token: string | undefined,
): Promise<{ quote: Quote; sender: QuoteSender; grant: TokenGrant | undefined } | undefined> {
  const [row] = await quoteWithTokenGrant(db, [id, ...tokenParams(token, new Date())])
  if (!row) return undefined
  return {
    quote: toQuote(row),
    sender: { path: row.path, assetCode: row.code, assetScale: row.scale },
    grant: tokenGrantOf(row.token_grant),
  }
}

function toQuote(r: Selectable<QuotesTable>): Quote {
  return {
    id: r.id,
    walletAddressId: r.wallet_address_id,
    client: r.client,
    receiver: r.receiver,
    localIncomingPaymentId: r.receiver_incoming_payment_id,
    debitAmount: r.debit_amount,
    feeAmount: r.fee_amount,
    receiveAmount: r.receive_amount,
    receiveAsset: { code: r.receive_asset_code, scale: r.receive_asset_scale },
    expiresAt: r.expires_at,
    createdAt: r.created_at,
  }
}
