import type { OutgoingLimits } from '../auth/access.ts'
import type { Db } from '../db/database.ts'
import { currentInterval, parseRepeatingInterval } from '../lib/interval.ts'

/** What a grant has spent in its current interval (or in all, without an interval). */
export interface Spent {
  debit: bigint
  /** Receive amounts in one asset: the grant's receive limit's, or the payment's. */
  receive: bigint
  receiveAsset: { code: string; scale: number }
}

/** The new payment's terms, from its quote. */
interface NewPayment {
  id: string
  debitAmount: bigint
  receiveAmount: bigint
  receiveAsset: { code: string; scale: number }
  receiver: string
}

/**
 * Sums what the grant's payments (failed and cancelled ones excluded: their reservations were
 * released) spent
 * since `since`. The caller holds the grant's lock, so concurrent creates cannot both fit.
 */
async function sumSpent(
  db: Db,
  grantId: string,
  since: Date | undefined,
  receiveAsset: { code: string; scale: number },
  quoteId?: string,
): Promise<{ debit: bigint; receive: bigint; quoteUsed: boolean }> {
  let q = db
    .selectFrom('outgoing_payments')
    .select((eb) => [
      // In the same statement: whether a payment exists for the quote (any grant's).
      quoteId === undefined
        ? eb.val(false).as('quote_used')
        : eb
            .exists(
              eb
                .selectFrom('outgoing_payments as u')
                .select('u.id')
                .where('u.quote_id', '=', quoteId),
            )
            .as('quote_used'),
      eb.fn.coalesce(eb.fn.sum<bigint>('debit_amount'), eb.val(0n)).as('debit'),
      eb.fn
        .coalesce(
          eb.fn.sum<bigint>(
            eb
              .case()
              .when(
                eb.and([
                  eb('receive_asset_code', '=', receiveAsset.code),
                  eb('receive_asset_scale', '=', receiveAsset.scale),
                ]),
              )
              .then(eb.ref('receive_amount'))
              .else(0n)
              .end(),
          ),
          eb.val(0n),
        )
        .as('receive'),
    ])
    .where('grant_id', '=', grantId)
    .where('state', 'not in', ['failed', 'cancelled'])
  if (since) q = q.where('created_at', '>=', since)
  const row = await q.executeTakeFirstOrThrow()
  return {
    debit: BigInt(row.debit),
    receive: BigInt(row.receive),
    quoteUsed: Boolean(row.quote_used),
  }
}

/**
 * Checks a new payment, paid from quote `p`, against the grant's limits: the receiver if
 * pinned, the current interval, and the debit or receive maximum counting what was already spent.
 * One query, which also says whether the quote was used already (`quote_used`, answered first).
 * Returns the spending including this payment, or why not.
 */
export async function checkLimits(
  db: Db,
  grantId: string,
  limits: OutgoingLimits | undefined,
  p: NewPayment,
  now: Date,
): Promise<Spent | 'unauthorized' | 'quote_used'> {
  let refused = limits?.receiver !== undefined && limits.receiver !== p.receiver
  let since: Date | undefined
  if (limits?.interval !== undefined) {
    const current = currentInterval(parseRepeatingInterval(limits.interval)!, now)
    if (current) since = current.start
    else refused = true
  }
  const receiveLimit = limits?.receiveAmount
  if (
    receiveLimit &&
    (receiveLimit.assetCode !== p.receiveAsset.code ||
      receiveLimit.assetScale !== p.receiveAsset.scale)
  ) {
    refused = true
  }
  const before = await sumSpent(db, grantId, since, p.receiveAsset, p.id)
  if (before.quoteUsed) return 'quote_used'
  if (refused) return 'unauthorized'
  const spent = {
    debit: before.debit + p.debitAmount,
    receive: before.receive + p.receiveAmount,
    receiveAsset: p.receiveAsset,
  }
  if (limits?.debitAmount && spent.debit > BigInt(limits.debitAmount.value)) return 'unauthorized'
  if (receiveLimit && spent.receive > BigInt(receiveLimit.value)) return 'unauthorized'
  return spent
}

/**
 * What `GET /outgoing-payment-grant` reports: the current interval's spending, zero in a new
 * interval, or nothing (null) when the grant never paid or its interval is not current.
 */
export async function spentUnderGrant(
  db: Db,
  grantId: string,
  limits: OutgoingLimits | undefined,
  now: Date,
): Promise<
  | (Omit<Spent, 'receiveAsset'> & {
      debitAsset: { code: string; scale: number }
      receiveAsset: { code: string; scale: number }
    })
  | undefined
> {
  const latest = await db
    .selectFrom('outgoing_payments as p')
    .innerJoin('wallet_addresses as w', 'w.id', 'p.wallet_address_id')
    .innerJoin('assets as a', 'a.id', 'w.asset_id')
    .select(['a.code', 'a.scale', 'p.receive_asset_code', 'p.receive_asset_scale'])
    .where('p.grant_id', '=', grantId)
    .orderBy('p.created_at', 'desc')
    .limit(1)
    .executeTakeFirst()
  if (!latest) return undefined
  let since: Date | undefined
  if (limits?.interval !== undefined) {
    const current = currentInterval(parseRepeatingInterval(limits.interval)!, now)
    if (!current) return undefined
    since = current.start
  }
  const receiveAsset = limits?.receiveAmount
    ? { code: limits.receiveAmount.assetCode, scale: limits.receiveAmount.assetScale }
    : { code: latest.receive_asset_code, scale: latest.receive_asset_scale }
  const spent = await sumSpent(db, grantId, since, receiveAsset)
  return { ...spent, debitAsset: { code: latest.code, scale: latest.scale }, receiveAsset }
}
