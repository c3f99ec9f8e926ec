import { type CompiledQuery, sql } from 'kysely'
import { tokenActiveSql } from '../auth/grants.ts'
import { type Db, PREPARE, prepared } from '../db/database.ts'
import { LAST_STATEMENT, PIPELINED, withNext } from '../db/pipelined-postgres.ts'
import type { AccountKind, BalanceRule } from '../db/schema.ts'
import type { Deps } from '../deps.ts'
import type { IncomingFacts } from '../incoming-payments/facts.ts'
import { type CreditedRow, creditSql, toCreditedPayment } from '../incoming-payments/service.ts'
import { assetAccountId } from '../ledger/accounts.ts'
import { lockAccountsCtes, planAtOnce, type TransferInput } from '../ledger/transfers.ts'
import { type Account, isLedgerError } from '../ledger/types.ts'
import { type PricedQuote, QUOTE_COLUMNS, quoteValues } from '../quotes/service.ts'
import { writeWithEvent } from '../webhooks/outbox.ts'
import { balanceLowEvent } from '../webhooks/thresholds.ts'
import {
  checkLimits,
  grantTotalsCte,
  type LockedTotals,
  limitsWindow,
  lockAndCheckLimits,
  lockGrantTotalsSql,
} from './limits.ts'
import {
  type Created,
  type CreateError,
  type CreateInput,
  isQuotePaid,
  type OutgoingPayment,
  payableQuote,
  paymentValues,
  type QuoteTerms,
  reservationEnd,
  reservationId,
  type StoredQuote,
} from './service.ts'

/** An expected refusal: the transaction rolls back (the receiver's credit with it). */
class Refused {
  constructor(readonly reason: CreateError | 'inactive_token') {}
}

/** The quote read at the lock pays a remote receiver: not settled at create. */
class NotLocal {}

/** The grant's lock (and the quote's read with it) failed: the error is the create's. */
class LockFailed {
  constructor(readonly cause: unknown) {}
}

/** The receiver refused the credit: the payment is created as usual and the worker fails it. */
class ReceiverRefused {}

/**
 * Creates a payment to an incoming payment of this ASE and settles it in the same transaction,
 * in three round trips: BEGIN with the grant's lock, which returns its spending and whether the
 * quote was used; `creditAndLock`, the incoming payment's credit (which locks its row, as every
 * credit does, before any ledger account) with the sender's and the receiver's wallets locked in
 * id order and the assets' limit-free accounts read (two round trips in all for the variants
 * below, whose lock's statement carries `creditAndLock` right behind it); then, the ledger's
 * transfers checked at once and the reservation among them recorded as made and posted in full,
 * one statement, with COMMIT, writing the transfers, the accounts' deltas, the payment row, its
 * `created` and `completed` events, the grant's new totals, the incoming payment's `completed`
 * when this credit completed it, the sender's `balance_low` when it crossed its threshold, and the
 * quote when it was made for this payment (`unsaved`). Nothing is read twice: the quote, the wallet addresses and the asset's
 * account ids are known.
 *
 * The outcome is what creating the payment and then settling it (settlement.ts) would give, with
 * the same transfer ids, events in the same order, and no moment in which the payment is sending.
 * When it cannot be done this way nothing of it was written, and the caller creates the payment
 * for the worker: `receiver_refused` (the receiver refuses the credit; the worker's settlement
 * fails the payment with the reason, as it always did), or `attempt_failed` (anything unexpected:
 * this was the payment's first settlement attempt, and it is created as one that failed, retried
 * by the worker after the backoff).
 */
export function createAndSettle(
  deps: Deps,
  input: Omit<CreateInput, 'quote'> & {
    id: string
    quote: QuoteTerms
    /** The quote when it is made for this payment and not stored yet: the write stores it. */
    unsaved: PricedQuote | undefined
  },
): Promise<Created | CreateError | 'receiver_refused' | 'attempt_failed'> {
  return settle(deps, input, input.unsaved, async (trx) => ({
    quote: input.quote,
    allowed: await lockAndCheckLimits(trx, input.grantId, input.limits, input.quote, new Date()),
  })) as Promise<Created | CreateError | 'receiver_refused' | 'attempt_failed'>
}

/** A stored quote the request names, not read yet: `createAndSettleUnread` reads it. */
export interface UnreadQuote {
  id: string
  /** The request's token's hash: the quote's read checks that the token is active. */
  tokenHash: string
}

/**
 * `createAndSettle` for a stored quote of this server that was not read before (the request's
 * token known to the process): the transaction's first statement takes the grant's lock, reads the
 * quote and whether its incoming payment is open, and checks the token, with the credit sent right
 * behind it (the credit reads the quote's receiver and amount itself): two round trips and no read
 * before them. Also answers `inactive_token`; and when the quote is not one to settle at create (a remote receiver, whose resolution goes over the network), or
 * the settlement did not happen, nothing was written and the quote as read comes back for the
 * usual path (`fallback`, with the settlement's outcome when it was tried).
 */
export async function createAndSettleUnread(
  deps: Deps,
  input: Omit<CreateInput, 'quote'> & { id: string },
  unread: UnreadQuote,
): Promise<
  | Created
  | CreateError
  | 'inactive_token'
  | { fallback: StoredQuote; settled?: 'receiver_refused' | 'attempt_failed' }
> {
  let stored: StoredQuote | undefined
  const outcome = await settle(deps, input, undefined, async (trx) => {
    const now = new Date()
    const window = limitsWindow(input.limits, now)
    const wa = input.walletAddress
    const credited = creditQuoteAndLockAhead.query([unread.id, wa.ledgerAccountId, wa.assetId])
    const lock = lockReadingQuote.query([
      input.grantId,
      unread.id,
      window.since ?? null,
      unread.tokenHash,
      now,
    ])
    const [row] = (await trx.executeQuery(withNext(lock, credited))).rows
    const { token_active, local_open, ...rest } = row!
    if (!token_active) throw new Refused('inactive_token')
    if (rest.id === null) throw new Refused('unknown_quote')
    stored = { ...(rest as Omit<StoredQuote, 'local_open'>), local_open }
    if (stored.receiver_incoming_payment_id === null) throw new NotLocal()
    const quote = await payableQuote(deps, stored)
    if (typeof quote === 'string') throw new Refused(quote)
    if (quote.walletAddressId !== input.walletAddress.id || quote.expiresAt <= now)
      throw new Refused('invalid_quote')
    return {
      quote,
      allowed: await checkLimits(trx, input.grantId, input.limits, quote, window, row!),
      credited,
    }
  })
  if (outcome === 'not_local') return { fallback: stored! }
  if (outcome === 'receiver_refused' || outcome === 'attempt_failed')
    return { fallback: stored!, settled: outcome }
  return outcome
}

// The grant's lock (`$1`, interval from `$3`) with quote `$2` read in the same statement, whether
// its incoming payment is open, and whether the token whose hash is `$4` is active at `$5`. One
// row: the lock's, with the quote's columns null when there is no such quote.
const lockReadingQuote = prepared<
  LockedTotals & { [K in keyof Omit<StoredQuote, 'local_open'>]: StoredQuote[K] | null } & {
    local_open: boolean | null
    token_active: boolean
  }
>(`
  WITH locked AS (${lockGrantTotalsSql(
    '(SELECT receive_asset_code FROM quotes WHERE id = $2)',
    '(SELECT receive_asset_scale FROM quotes WHERE id = $2)',
  )})
  SELECT locked.*, q.*, p.completed_at IS NULL AND p.expires_at > now() AS local_open,
         ${tokenActiveSql('$4', '$5')} AS token_active
    FROM locked
    LEFT JOIN quotes q ON q.id = $2
    LEFT JOIN incoming_payments p ON p.id = q.receiver_incoming_payment_id`)

/** A receiver of this ASE known by its kept facts, not read: `createAndSettleFromFacts` checks it. */
export interface UnreadReceiver {
  facts: IncomingFacts
  /** The request's token's hash: the grant's lock checks that the token is active. */
  tokenHash: string
}

/**
 * `createAndSettle` for a quote priced from a local receiver's kept facts by a request whose token
 * the process knows: nothing was read before. The grant's lock checks the token (`inactive_token`),
 * with the credit sent right behind it (two round trips in all); the credit, which checks the
 * receiver's state as every credit does, is also held to the facts the quote was priced from. When the receiver is not as the quote needs (completed, expired, less
 * left to receive, or not as kept), nothing was written and `receiver_refused` tells the caller to
 * read it and price again, as it would have without the facts.
 */
export function createAndSettleFromFacts(
  deps: Deps,
  input: Omit<CreateInput, 'quote'> & { id: string; quote: PricedQuote },
  unread: UnreadReceiver,
): Promise<Created | CreateError | 'inactive_token' | 'receiver_refused' | 'attempt_failed'> {
  const { quote } = input
  return settle(
    deps,
    input,
    quote,
    async (trx) => {
      const now = new Date()
      const window = limitsWindow(input.limits, now)
      const wa = input.walletAddress
      const credited = creditAndLockAhead.query([
        quote.localIncomingPaymentId,
        quote.receiveAmount,
        wa.ledgerAccountId,
        wa.assetId,
      ])
      const lock = lockCheckingToken.query([
        input.grantId,
        quote.id,
        window.since ?? null,
        quote.receiveAsset.code,
        quote.receiveAsset.scale,
        unread.tokenHash,
        now,
      ])
      const [row] = (await trx.executeQuery(withNext(lock, credited))).rows
      if (!row!.token_active) throw new Refused('inactive_token')
      return {
        quote,
        allowed: await checkLimits(trx, input.grantId, input.limits, quote, window, row!),
        credited,
      }
    },
    unread.facts,
  ) as Promise<Created | CreateError | 'inactive_token' | 'receiver_refused' | 'attempt_failed'>
}

// The grant's lock (`lockGrantTotalsSql`, its parameters `$1`–`$5`) and whether the token whose
// hash is `$6` is active at `$7`, in one statement.
const lockCheckingToken = prepared<LockedTotals & { token_active: boolean }>(`
  WITH locked AS (${lockGrantTotalsSql('$4', '$5')})
  SELECT locked.*, ${tokenActiveSql('$6', '$7')} AS token_active FROM locked`)

/** Whether a credited incoming payment is the one whose facts were kept. */
const asKept = (p: Omit<IncomingFacts, 'id'>, f: IncomingFacts) =>
  p.walletAddressId === f.walletAddressId &&
  p.assetCode === f.assetCode &&
  p.assetScale === f.assetScale &&
  p.incomingAmount === f.incomingAmount &&
  p.expiresAt.getTime() === f.expiresAt.getTime()

/**
 * Settlement at create's transaction; `lock` takes the grant's lock first, with the quote when it
 * reads it too, and checks the limits; `kept`, the facts the receiver must have (its credit is
 * refused otherwise).
 */
async function settle(
  deps: Deps,
  input: Omit<CreateInput, 'quote'> & { id: string },
  unsaved: PricedQuote | undefined,
  lock: (trx: Db) => Promise<{
    quote: QuoteTerms
    allowed: Awaited<ReturnType<typeof lockAndCheckLimits>>
    /** `creditAndLock`, when the lock's statement sent it ahead (`withNext`). */
    credited?: CompiledQuery<CreditAndLockRow>
  }>,
  kept?: IncomingFacts,
): Promise<
  Created | CreateError | 'inactive_token' | 'receiver_refused' | 'attempt_failed' | 'not_local'
> {
  const { id } = input
  const wa = input.walletAddress
  try {
    // One at a time per grant in this process: they would wait for the grant's lock anyway.
    const settled = await deps.grantQueue.run(input.grantId, () =>
      deps.db.transaction().execute(async (trx) => {
        const { quote, allowed, credited } = await lock(trx).catch((err) => {
          throw err instanceof Refused || err instanceof NotLocal ? err : new LockFailed(err)
        })
        if (allowed === 'quote_used') throw new Refused('invalid_quote')
        if (allowed === 'unauthorized') throw new Refused('unauthorized')
        const { spent } = allowed

        const rows = credited
          ? (await trx.executeQuery(credited)).rows
          : await creditAndLock(trx, [
              quote.localIncomingPaymentId,
              quote.receiveAmount,
              wa.ledgerAccountId,
              wa.assetId,
            ])
        const credit = rows.find((r) => r.id !== null)
        if (!credit) throw new ReceiverRefused()
        // Sent ahead for a quote not read then, the credit found the quote's receiver by itself.
        if (credit.id !== quote.localIncomingPaymentId) throw new Error('credited another receiver')
        const { wallet, ...incomingPayment } = toCreditedPayment(credit as CreditedRow)
        if (kept && !asKept(incomingPayment, kept)) throw new ReceiverRefused()

        // Checked now (the accounts locked); written below, in the payment's statement. `accounts`
        // is left as the transfers leave the accounts.
        const accounts = new Map(rows.map((r) => [r.account_id, accountOf(r)]))
        const ledgerWrites = planAtOnce(accounts, await transfers(trx, id, quote, wa, wallet))
        if (isLedgerError(ledgerWrites)) {
          if (ledgerWrites.code === 'insufficient_balance')
            throw new Refused('insufficient_balance')
          throw new Error(`settlement at create failed: ${ledgerWrites.message}`)
        }

        const now = new Date()
        const created: OutgoingPayment = {
          id,
          walletAddressId: wa.id,
          client: input.client,
          grantId: input.grantId,
          quoteId: quote.id,
          receiver: quote.receiver,
          debitAmount: quote.debitAmount,
          feeAmount: quote.feeAmount,
          receiveAmount: quote.receiveAmount,
          receiveAsset: quote.receiveAsset,
          sentAmount: 0n,
          state: 'sending',
          failure: null,
          attempts: 0,
          sendingSince: null,
          metadata: input.metadata ?? null,
          createdAt: now,
          updatedAt: now,
        }
        const sent = quote.debitAmount - quote.feeAmount
        const completed: OutgoingPayment = { ...created, state: 'completed', sentAmount: sent }
        const v = paymentValues(id, input, quote)
        const balanceLow = await balanceLowEvent(
          trx,
          wa,
          quote.debitAmount,
          () => accounts.get(wa.ledgerAccountId)!,
        )
        // The transaction's last statement: COMMIT goes with it. Every column is known but the
        // metadata as stored (jsonb orders keys), which is all it returns.
        const [row] = await writeWithEvent<{ metadata: Record<string, unknown> | null }>(
          trx,
          sql`${PREPARE}${LAST_STATEMENT} INSERT INTO outgoing_payments
              (id, wallet_address_id, client, grant_id, quote_id, receiver, debit_amount,
               fee_amount, receive_amount, receive_asset_code, receive_asset_scale, sent_amount,
               state, next_attempt_at, metadata, created_at, updated_at)
            VALUES (${v.id}, ${v.wallet_address_id}, ${v.client}, ${v.grant_id}, ${v.quote_id},
              ${v.receiver}, ${v.debit_amount}, ${v.fee_amount}, ${v.receive_amount},
              ${v.receive_asset_code}, ${v.receive_asset_scale}, ${sent}, 'completed', NULL,
              ${v.metadata}::jsonb, ${now}, ${now})
            RETURNING metadata`,
          [
            // Completed by this credit (events of two resources: no order between them).
            ...(incomingPayment.completedAt !== null
              ? [{ type: 'incoming_payment.completed' as const, incomingPayment }]
              : []),
            { type: 'outgoing_payment.created', outgoingPayment: created, sender: wa },
            { type: 'outgoing_payment.completed', outgoingPayment: completed, sender: wa },
            ...(balanceLow ? [balanceLow] : []),
          ],
          sql`${ledgerWrites}, ${grantTotalsCte(input.grantId, allowed.totals)}${
            unsaved ? sql`, ${quoteCte(unsaved)}` : sql``
          }`,
        )
        return {
          payment: { ...completed, metadata: row!.metadata },
          spent,
          receiverCompleted: incomingPayment.completedAt !== null,
        }
      }),
    )
    // As the worker logs each payment it settles.
    deps.logger.debug({ payment: id, outcome: 'completed' }, 'outgoing payment settled')
    return settled
  } catch (err) {
    if (err instanceof Refused) return err.reason
    if (err instanceof NotLocal) return 'not_local'
    // Nothing was tried yet (the database failing, say): as the read before a create would.
    if (err instanceof LockFailed) throw err.cause
    if (err instanceof ReceiverRefused) return 'receiver_refused'
    if (isQuotePaid(err)) return 'invalid_quote'
    deps.logger.error({ err, payment: id, attempts: 1 }, 'outgoing payment settlement failed')
    return 'attempt_failed'
  }
}

/** A CTE storing a quote made for the payment, in the payment's own statement. */
const quoteCte = (q: PricedQuote) =>
  sql`saved_quote AS (INSERT INTO quotes (${sql.raw(QUOTE_COLUMNS)})
        VALUES (${sql.join(quoteValues(q))}))`

/** A row of `creditAndLock`: the credit's (null: refused) and one account's. */
type CreditAndLockRow = { [K in keyof CreditedRow]: CreditedRow[K] | null } & {
  account_id: string
  account_asset_id: string
  account_kind: AccountKind
  account_rule: BalanceRule
  account_debits_posted: bigint
  account_credits_posted: bigint
  account_debits_pending: bigint
  account_credits_pending: bigint
  account_debit_limit: bigint | null
}

// The rest of settlement at create's locks, in one statement and in the order every path takes
// them: the incoming payment's row by its credit (`id`, by `amount`), then the ledger accounts: the
// sender's wallet and the receiver's (the credit's, so the credit runs first) locked in id order,
// with the limit-free accounts of both wallets' assets read. One row per account; the credit's
// columns are on the receiver's account's row only (none when the receiver refused it), so that
// they are parsed once, not once per account. The grant's lock comes before, in a statement of its
// own: one waiting for a busy grant's lock would go on from a snapshot as old as its wait, and
// re-reading the sender's account after every payment made meanwhile cost PostgreSQL more than the
// round trip saved (measured: one grant, 8 creates at a time). Sent in the same write right behind
// it (`withNext`), this one still starts after the lock, on a snapshot of its own.
const creditAndLockSql = (id: string, amount: string, sender: string, senderAsset: string) => `
  WITH credited AS (${creditSql(id, amount)}),
  ${lockAccountsCtes(
    [sender, '(SELECT ledger_account_id FROM credited)'],
    [senderAsset, '(SELECT asset_id FROM credited)'],
  )}
  SELECT c.*, a.id AS account_id, a.asset_id AS account_asset_id, a.kind AS account_kind,
         a.rule AS account_rule, a.debits_posted AS account_debits_posted,
         a.credits_posted AS account_credits_posted, a.debits_pending AS account_debits_pending,
         a.credits_pending AS account_credits_pending, a.debit_limit AS account_debit_limit
    FROM (SELECT * FROM locked_accounts UNION ALL SELECT * FROM limit_free_accounts) a
    LEFT JOIN credited c ON c.ledger_account_id = a.id`

const creditAndLock = prepared<CreditAndLockRow>(
  creditAndLockSql('$1::uuid', '$2::numeric', '$3::uuid', '$4::uuid'),
)

// The same, sent in the same write right behind the grant's lock (`withNext`): PostgreSQL runs it
// once the lock is taken, on a snapshot of its own, without a round trip between them; the limits
// and the token are checked when both have answered, and a refusal rolls the credit back.
const creditAndLockAhead = prepared<CreditAndLockRow>(
  `${creditAndLockSql('$1::uuid', '$2::numeric', '$3::uuid', '$4::uuid')} ${PIPELINED}`,
)

// For a quote that the lock's statement reads: the credit reads its receiver and amount itself.
const creditQuoteAndLockAhead = prepared<CreditAndLockRow>(
  `${creditAndLockSql(
    '(SELECT receiver_incoming_payment_id FROM quotes WHERE id = $1::uuid)',
    '(SELECT receive_amount FROM quotes WHERE id = $1::uuid)',
    '$2::uuid',
    '$3::uuid',
  )} ${PIPELINED}`,
)

const accountOf = (r: CreditAndLockRow): Account => ({
  id: r.account_id,
  assetId: r.account_asset_id,
  kind: r.account_kind,
  rule: r.account_rule,
  debitsPosted: r.account_debits_posted,
  creditsPosted: r.account_credits_posted,
  debitsPending: r.account_debits_pending,
  creditsPending: r.account_credits_pending,
  debitLimit: r.account_debit_limit,
})

/**
 * The transfers of settlement.ts, with its ids: the reservation (posted at once) into the asset's
 * clearing account, from there the fee to the fee account and the principal to the receiver —
 * directly for one asset, or out through the sender asset's settlement account and in through the
 * receiver asset's for two.
 */
async function transfers(
  trx: Db,
  id: string,
  quote: QuoteTerms,
  sender: { ledgerAccountId: string; assetId: string },
  receiver: { ledgerAccountId: string; assetId: string },
): Promise<TransferInput[]> {
  const reference = `outgoing_payment:${id}`
  const clearing = await assetAccountId(trx, sender.assetId, 'outgoing')
  const principal = quote.debitAmount - quote.feeAmount
  const move = (suffix: string, debitAccountId: string, creditAccountId: string, amount: bigint) =>
    amount === 0n
      ? []
      : [{ id: `outgoing:${id}:${suffix}`, debitAccountId, creditAccountId, amount, reference }]
  return [
    {
      id: reservationId(id),
      debitAccountId: sender.ledgerAccountId,
      creditAccountId: clearing,
      amount: quote.debitAmount,
      pendingUntil: reservationEnd(),
      reference,
    },
    ...move('fee', clearing, await assetAccountId(trx, sender.assetId, 'fees'), quote.feeAmount),
    ...(sender.assetId === receiver.assetId
      ? move('deliver', clearing, receiver.ledgerAccountId, principal)
      : [
          ...move(
            'fx-out',
            clearing,
            await assetAccountId(trx, sender.assetId, 'settlement'),
            principal,
          ),
          ...move(
            'fx-in',
            await assetAccountId(trx, receiver.assetId, 'settlement'),
            receiver.ledgerAccountId,
            quote.receiveAmount,
          ),
        ]),
  ]
}
