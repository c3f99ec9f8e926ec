import { randomUUID } from 'node:crypto'
import { type Selectable, sql } from 'kysely'
import type { OutgoingLimits } from '../auth/access.ts'
import { type TokenGrant, tokenGrantOf, tokenGrantSql } from '../auth/grants.ts'
import { approveOutgoing, queueUnusedApproval, recordApproval } from '../core-banking/outgoing.ts'
import { type Db, prepared } from '../db/database.ts'
import { isUniqueViolationOf } from '../db/errors.ts'
import type { OutgoingPaymentState, OutgoingPaymentsTable, QuotesTable } from '../db/schema.ts'
import type { Deps } from '../deps.ts'
import { assetAccountId } from '../ledger/accounts.ts'
import { createTransfer } from '../ledger/transfers.ts'
import { isLedgerError } from '../ledger/types.ts'
import { foldStats, type PaymentStats, type StatsRow } from '../lib/payment-stats.ts'
import { resolveReceiver } from '../quotes/receiver.ts'
import { type PricedQuote, type Quote, saveQuote } from '../quotes/service.ts'
import { type FetchPage, keyset } from '../resource-server/pagination.ts'
import type { WalletAddress } from '../wallet-addresses/service.ts'
import { afterWalletDebit } from '../webhooks/thresholds.ts'
import { recordPaymentEvent } from './events.ts'
import { lockAndCheckLimits, type Spent, storeGrantTotals } from './limits.ts'
import {
  createAndSettle,
  createAndSettleFromFacts,
  createAndSettleUnread,
  type UnreadQuote,
  type UnreadReceiver,
} from './settle-at-create.ts'

export interface OutgoingPayment {
  id: string
  walletAddressId: string
  client: string
  grantId: string
  quoteId: string
  receiver: string
  debitAmount: bigint
  feeAmount: bigint
  receiveAmount: bigint
  receiveAsset: { code: string; scale: number }
  sentAmount: bigint
  state: OutgoingPaymentState
  /** Why it failed, or the operator's reason when cancelled. */
  failure: string | null
  attempts: number
  /** While sending over Interledger: when the current attempt began. */
  sendingSince: Date | null
  metadata: Record<string, unknown> | null
  createdAt: Date
  updatedAt: Date
}

export type CreateError =
  | 'unknown_quote'
  | 'invalid_quote'
  | 'unauthorized'
  | 'insufficient_balance'
  /** Core banking did not answer its approval callout (in time, with 2xx and a decision). */
  | 'core_banking_unavailable'

/** How long a payment's funds stay reserved before the ledger releases them unsettled. */
const RESERVATION_SECONDS = 24 * 3600

export const reservationId = (paymentId: string) => `outgoing:${paymentId}:reserve`

/** What a payment takes from its quote. */
export type QuoteTerms = Pick<
  Quote,
  | 'id'
  | 'walletAddressId'
  | 'receiver'
  | 'localIncomingPaymentId'
  | 'debitAmount'
  | 'feeAmount'
  | 'receiveAmount'
  | 'receiveAsset'
  | 'expiresAt'
>

export interface CreateInput {
  walletAddress: WalletAddress
  client: string
  grantId: string
  limits: OutgoingLimits | undefined
  /**
   * The stored quote the request names (`readQuoteForPayment`), or the quote this request has just
   * priced (fixed send straight from an incoming payment), whose receiver is not resolved again:
   * stored with the payment, by the statement that settles it at create or else before its
   * transaction; or a stored quote not read yet (the token known to the process), read by the
   * create with the token's check (`createAndSettleUnread`); or a quote priced from a local
   * receiver's kept facts, by a token the process knows, neither read yet
   * (`createAndSettleFromFacts`).
   */
  quote:
    | { stored: StoredQuote | undefined }
    | { priced: PricedQuote }
    | { unread: UnreadQuote }
    | { fromFacts: PricedQuote; receiver: UnreadReceiver }
  metadata?: Record<string, unknown>
  /**
   * This process runs the payment worker: a payment to a local incoming payment is settled in
   * the create's own transaction (settle-at-create.ts) when core banking is off.
   */
  settleLocally?: boolean
}

export interface Created {
  payment: OutgoingPayment
  spent: Spent
  /** Settled at create and completed its incoming payment (counted once committed). */
  receiverCompleted?: boolean
}

/**
 * Creates an outgoing payment from a quote, in one transaction: the grant's spending is locked
 * (concurrent creates under one grant queue here), the quote must be the sender's, unexpired, unused
 * and its receiver still payable, the grant's limits must allow it, and the full debit amount is
 * reserved on the sender's wallet. Sending happens afterwards, in the payment worker, unless the
 * payment is settled in the same transaction (`settleLocally`). Before the transaction, core
 * banking approves the payment when it is on for the sender's asset.
 */
export function createOutgoingPayment(
  deps: Deps,
  request: CreateInput & { quote: { fromFacts: PricedQuote } },
): Promise<Created | CreateError | 'inactive_token' | 'read_receiver'>
export function createOutgoingPayment(
  deps: Deps,
  request: CreateInput & { quote: Exclude<CreateInput['quote'], { fromFacts: PricedQuote }> },
): Promise<Created | CreateError | 'inactive_token'>
export async function createOutgoingPayment(
  deps: Deps,
  request: CreateInput,
): Promise<Created | CreateError | 'inactive_token' | 'read_receiver'> {
  const { db } = deps
  let input = request
  const id = randomUUID()
  // Priced from kept facts: settled at create, which checks the token and the receiver; otherwise
  // (not settled at create, or the receiver not as the quote needs) the caller reads the receiver
  // and prices again, nothing written.
  let tried: 'receiver_refused' | 'attempt_failed' | undefined
  if ('fromFacts' in input.quote) {
    const { fromFacts, receiver } = input.quote
    if (!input.settleLocally || (await deps.coreBanking.hooks.enabled())) return 'read_receiver'
    const made = await createAndSettleFromFacts(deps, { ...input, id, quote: fromFacts }, receiver)
    if (made === 'receiver_refused') return 'read_receiver'
    if (made !== 'attempt_failed') return made
    // Settlement failed unexpectedly after the token's check: created as a failed first attempt.
    tried = made
    input = { ...input, quote: { priced: fromFacts } }
  }
  // A quote not read yet is read by settlement at create's first statement, when that is how the
  // payment is made; otherwise it is read here, and the request's token checked with it.
  if ('unread' in input.quote) {
    const { unread } = input.quote
    let stored: StoredQuote | undefined
    if (input.settleLocally && !(await deps.coreBanking.hooks.enabled())) {
      const made = await createAndSettleUnread(deps, { ...input, id }, unread)
      if (typeof made === 'string' || !('fallback' in made)) return made
      stored = made.fallback
      tried = made.settled
    } else {
      const read = await readQuoteForPayment(db, unread.id, unread.tokenHash)
      if (!read.grant) return 'inactive_token'
      stored = read.quote
    }
    input = { ...input, quote: { stored } }
  }
  const quoteIn = input.quote as Extract<
    CreateInput['quote'],
    { stored: StoredQuote | undefined } | { priced: PricedQuote }
  >
  const wa = input.walletAddress
  const priced = 'priced' in quoteIn ? quoteIn.priced : undefined
  const quote = 'priced' in quoteIn ? quoteIn.priced : await payableQuote(deps, quoteIn.stored)
  if (typeof quote === 'string') return quote
  if (quote.walletAddressId !== wa.id || quote.expiresAt <= new Date()) return 'invalid_quote'

  // Core banking, when on for the asset, approves before anything is reserved, outside the
  // transaction; a decline is answered as insufficient funds.
  const decision = await approveOutgoing(deps, {
    id,
    walletAddress: wa,
    receiver: quote.receiver,
    debitAmount: quote.debitAmount,
    feeAmount: quote.feeAmount,
    receiveAmount: quote.receiveAmount,
    receiveAsset: quote.receiveAsset,
    ...(input.metadata !== undefined && { metadata: input.metadata }),
  })
  if (decision?.kind === 'declined') return 'insufficient_balance'
  if (decision?.kind === 'unavailable') return 'core_banking_unavailable'

  let failedAttempt: ReturnType<typeof firstAttemptFailed> | undefined
  if (
    input.settleLocally &&
    quote.localIncomingPaymentId !== null &&
    !decision &&
    !(await deps.coreBanking.hooks.enabled())
  ) {
    const settled = tried ?? (await createAndSettle(deps, { ...input, id, quote, unsaved: priced }))
    // Settling at create failed unexpectedly: that was the payment's first attempt.
    if (settled === 'attempt_failed') failedAttempt = firstAttemptFailed()
    else if (settled !== 'receiver_refused') return settled
  }
  // Not settled at create: the quote made for this payment is stored first, as any quote.
  if (priced) await saveQuote(db, priced)

  const reserve = async (trx: Db): Promise<Created | CreateError> => {
    const allowed = await lockAndCheckLimits(trx, input.grantId, input.limits, quote, new Date())
    if (allowed === 'quote_used') return 'invalid_quote'
    if (allowed === 'unauthorized') return 'unauthorized'
    const { spent } = allowed

    const reserved = await createTransfer(trx, {
      id: reservationId(id),
      debitAccountId: wa.ledgerAccountId,
      creditAccountId: await assetAccountId(trx, wa.assetId, 'outgoing'),
      amount: quote.debitAmount,
      pendingUntil: reservationEnd(),
      reference: `outgoing_payment:${id}`,
    })
    if (isLedgerError(reserved)) {
      if (reserved.code === 'insufficient_balance') return 'insufficient_balance'
      throw new Error(`reservation failed: ${reserved.message}`)
    }
    const row = await trx
      .insertInto('outgoing_payments')
      .values({
        ...paymentValues(id, input, quote),
        state: 'sending',
        next_attempt_at: failedAttempt?.nextAttemptAt ?? sql<Date>`now()`,
        ...(failedAttempt && { attempts: 1 }),
      })
      .returningAll()
      .executeTakeFirstOrThrow()
    await storeGrantTotals(trx, input.grantId, allowed.totals)
    if (decision) await recordApproval(trx, id, wa.assetId)
    if (failedAttempt) {
      // As the worker records a failed attempt (worker.ts retryLater); the created event first.
      await recordPaymentEvent(
        trx,
        { ...row, attempts: 0, next_attempt_at: new Date() },
        { type: 'outgoing_payment.created' },
        wa,
      )
      await recordPaymentEvent(trx, row, failedAttempt, wa)
    } else await recordPaymentEvent(trx, row, { type: 'outgoing_payment.created' }, wa)
    await afterWalletDebit(trx, wa, quote.debitAmount)
    return { payment: toOutgoingPayment(row), spent }
  }
  // Refused, or failed, after core banking approved: it is told to release, with the reason.
  const release = (trx: Db, refusal: CreateError | 'create_failed') =>
    queueUnusedApproval(trx, { id, assetId: wa.assetId, debitAmount: quote.debitAmount, refusal })
  try {
    return await deps.grantQueue.run(input.grantId, () =>
      db.transaction().execute(async (trx) => {
        const created = await reserve(trx)
        if (typeof created === 'string' && decision) await release(trx, created)
        return created
      }),
    )
  } catch (err) {
    if (isQuotePaid(err)) {
      if (decision) await release(db, 'invalid_quote')
      return 'invalid_quote'
    }
    // Nothing was reserved or written: core banking's hold is released too, if the database takes
    // the callout now (else the hold lapses, as when a process dies before its release).
    if (decision) {
      await release(db, 'create_failed').catch((e) =>
        deps.logger.warn({ err: e, payment: id }, 'core banking approval not released'),
      )
    }
    throw err
  }
}

/**
 * The quote's unique index refused a second payment from it: another create paid from the same
 * quote while this one waited for the grant's lock (whose check of the quote read an older
 * snapshot), or under another grant at the same moment.
 */
export const isQuotePaid = (err: unknown) =>
  isUniqueViolationOf(err, 'outgoing_payments_quote_id_key')

/** A first settlement attempt that failed, retried after the worker's first backoff (2 s). */
const firstAttemptFailed = () =>
  ({
    type: 'outgoing_payment.attempt_failed',
    attempt: 1,
    error: 'settlement failed',
    nextAttemptAt: new Date(Date.now() + 2000),
  }) as const

/** A quote as read for a payment (`readQuoteForPayment`); undefined: no such quote. */
export type StoredQuote = Selectable<QuotesTable> & { local_open: boolean | null }

const quoteForPayment = prepared<
  Omit<StoredQuote, 'id'> & { id: string | null; token_grant: unknown }
>(
  // From a one-row relation, so that the token's grant comes back when the quote does not exist.
  `SELECT q.*, p.completed_at IS NULL AND p.expires_at > now() AS local_open,
          ${tokenGrantSql('$2', '$3')} AS token_grant
     FROM (SELECT 1) one
     LEFT JOIN quotes q ON q.id = $1
     LEFT JOIN incoming_payments p ON p.id = q.receiver_incoming_payment_id`,
  { shared: true },
)

/**
 * The quote a payment is created from, whether its local receiver is still open, and the grant of
 * the request's access token, in one statement (the introspection rides in the read).
 */
export async function readQuoteForPayment(
  db: Db,
  id: string,
  /** The hash of the request's token (none: no grant). */
  tokenHash: string | undefined,
): Promise<{ quote: StoredQuote | undefined; grant: TokenGrant | undefined }> {
  const [row] = await quoteForPayment(db, [id, tokenHash ?? null, new Date()])
  const { token_grant, ...quote } = row!
  return {
    quote: quote.id === null ? undefined : (quote as StoredQuote),
    grant: tokenGrantOf(token_grant),
  }
}

/** The terms of a stored quote, when it can still be paid (its receiver is still payable). */
export async function payableQuote(
  deps: Deps,
  row: StoredQuote | undefined,
): Promise<QuoteTerms | 'unknown_quote' | 'invalid_quote'> {
  if (!row) return 'unknown_quote'
  const payable =
    row.receiver_incoming_payment_id !== null
      ? row.local_open === true
      : (await resolveReceiver(deps, row.receiver)) !== undefined
  if (!payable) return 'invalid_quote'
  return {
    id: row.id,
    walletAddressId: row.wallet_address_id,
    receiver: row.receiver,
    localIncomingPaymentId: row.receiver_incoming_payment_id,
    debitAmount: row.debit_amount,
    feeAmount: row.fee_amount,
    receiveAmount: row.receive_amount,
    receiveAsset: { code: row.receive_asset_code, scale: row.receive_asset_scale },
    expiresAt: row.expires_at,
  }
}

export const reservationEnd = () => new Date(Date.now() + RESERVATION_SECONDS * 1000)

/** The columns of a new payment row that come from the request and its quote. */
export function paymentValues(
  id: string,
  input: Pick<CreateInput, 'walletAddress' | 'client' | 'grantId' | 'metadata'>,
  quote: QuoteTerms,
) {
  return {
    id,
    wallet_address_id: input.walletAddress.id,
    client: input.client,
    grant_id: input.grantId,
    quote_id: quote.id,
    receiver: quote.receiver,
    debit_amount: quote.debitAmount,
    fee_amount: quote.feeAmount,
    receive_amount: quote.receiveAmount,
    receive_asset_code: quote.receiveAsset.code,
    receive_asset_scale: quote.receiveAsset.scale,
    metadata: input.metadata === undefined ? null : JSON.stringify(input.metadata),
  }
}

export async function getOutgoingPayment(db: Db, id: string): Promise<OutgoingPayment | undefined> {
  const row = await db
    .selectFrom('outgoing_payments')
    .selectAll()
    .where('id', '=', id)
    .executeTakeFirst()
  return row && toOutgoingPayment(row)
}

/** Pages of outgoing payments, newest first: a wallet address's or every one's, optionally filtered. */
export function outgoingPaymentPages(
  db: Db,
  filter: { walletAddressId?: string; client?: string; state?: OutgoingPaymentState },
): FetchPage<OutgoingPayment> {
  return async ({ cursorId, direction, limit }) => {
    let q = db.selectFrom('outgoing_payments as p').selectAll()
    if (filter.walletAddressId !== undefined)
      q = q.where('p.wallet_address_id', '=', filter.walletAddressId)
    if (filter.client !== undefined) q = q.where('p.client', '=', filter.client)
    if (filter.state !== undefined) q = q.where('p.state', '=', filter.state)
    const page = keyset('outgoing_payments', cursorId, direction)
    if (page.where) q = q.where(page.where)
    const rows = await q
      .orderBy('p.created_at', page.order)
      .orderBy('p.id', page.order)
      .limit(limit)
      .execute()
    return rows.map(toOutgoingPayment)
  }
}

const STATES: readonly OutgoingPaymentState[] = ['sending', 'completed', 'failed', 'cancelled']

/**
 * Outgoing payments created since `since`: how many are in each state now, and per UTC day and
 * sender asset how many were created and what they sent (`sent_amount`, fees excluded).
 */
export async function outgoingPaymentStats(
  db: Db,
  since: Date,
): Promise<PaymentStats<OutgoingPaymentState>> {
  const { rows } = await sql<StatsRow>`
    SELECT to_char(p.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS date,
           a.code AS asset_code, a.scale AS asset_scale, p.state,
           count(*) AS count, sum(p.sent_amount) AS amount
      FROM outgoing_payments p
      JOIN wallet_addresses w ON w.id = p.wallet_address_id
      JOIN assets a ON a.id = w.asset_id
     WHERE p.created_at >= ${since}
     GROUP BY 1, 2, 3, 4`.execute(db)
  return foldStats(STATES, rows)
}

export function toOutgoingPayment(r: Selectable<OutgoingPaymentsTable>): OutgoingPayment {
  return {
    id: r.id,
    walletAddressId: r.wallet_address_id,
    client: r.client,
    grantId: r.grant_id,
    quoteId: r.quote_id,
    receiver: r.receiver,
    debitAmount: r.debit_amount,
    feeAmount: r.fee_amount,
    receiveAmount: r.receive_amount,
    receiveAsset: { code: r.receive_asset_code, scale: r.receive_asset_scale },
    sentAmount: r.sent_amount,
    state: r.state,
    failure: r.failure,
    attempts: r.attempts,
    sendingSince: r.sending_since,
    metadata: r.metadata as Record<string, unknown> | null,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  }
}
