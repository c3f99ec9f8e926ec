import { type RawBuilder, sql } from 'kysely'
import type { OutgoingLimits } from '../auth/access.ts'
import { type Db, prepared } from '../db/database.ts'
import { currentInterval, parseRepeatingInterval } from '../lib/interval.ts'

/** What a grant has spent in its current interval (or in all, without an interval). */
export interface Spent {
  debit: bigint
  /** Receive amounts in one asset: the grant's receive limit's, or the payment's. */
  receive: bigint
  receiveAsset: { code: string; scale: number }
}

/** The new payment's terms: its quote. */
export interface NewPayment {
  /** The quote's id. */
  id: string
  debitAmount: bigint
  receiveAmount: bigint
  receiveAsset: { code: string; scale: number }
  receiver: string
}

// What a failed or cancelled payment (`f`, a row of outgoing_payments) gives back to its grant's
// limits: all it did not send. A payment that failed part-way was charged what it sent, fees aside
// (remote.ts `finish`): in debit that is `sent_amount`; in the receive asset, the same share of its
// receive amount, rounded up (what it counts as received is never less than its share). A payment
// that sent nothing gives back all.
const givenBackDebit = (f: string) => `(${f}.debit_amount - ${f}.sent_amount)`
const givenBackReceive = (f: string) =>
  `(${f}.receive_amount - div(${f}.receive_amount * ${f}.sent_amount + ${f}.debit_amount
     - ${f}.fee_amount - 1, ${f}.debit_amount - ${f}.fee_amount))`
const GIVES_BACK = `IN ('failed', 'cancelled')`

/**
 * Sums what the grant's payments spent since `since`, from their rows, what failed and cancelled
 * ones gave back left out: what `GET /outgoing-payment-grant` reports.
 */
const sumSpentSql = prepared<{ debit: bigint; receive: bigint }>(
  `SELECT coalesce(sum(f.debit_amount - CASE WHEN f.state ${GIVES_BACK}
                                             THEN ${givenBackDebit('f')} ELSE 0 END), 0) AS debit,
          coalesce(sum(f.receive_amount - CASE WHEN f.state ${GIVES_BACK}
                                               THEN ${givenBackReceive('f')} ELSE 0 END)
                     FILTER (WHERE f.receive_asset_code = $3 AND f.receive_asset_scale = $4), 0)
            AS receive
     FROM outgoing_payments f
    WHERE f.grant_id = $1 AND f.created_at >= coalesce($2::timestamptz, '-infinity')`,
)

async function sumSpent(
  db: Db,
  grantId: string,
  since: Date | undefined,
  receiveAsset: { code: string; scale: number },
): Promise<{ debit: bigint; receive: bigint }> {
  const [row] = await sumSpentSql(db, [
    grantId,
    since ?? null,
    receiveAsset.code,
    receiveAsset.scale,
  ])
  return { debit: BigInt(row!.debit), receive: BigInt(row!.receive) }
}

/** The running totals a grant's lock row keeps (migration 0019), as a create leaves them. */
export interface GrantTotals {
  since: Date | undefined
  debit: bigint
  /** Receive amounts by `receiveKey`. */
  receive: Record<string, bigint>
}

const receiveKey = (a: { code: string; scale: number }) => `${a.code}:${a.scale}`

// The grant's lock (an upsert that always writes, so it holds the row until commit) and, returned
// by it, the running totals (the latest committed row: every create before this one counted) with
// what the grant's failed and cancelled payments since `$3` give back in debit and in the receive
// asset `$4`/`$5`, and whether quote `$2` was used. Those subqueries read the statement's snapshot,
// which may predate the lock wait: a payment that failed meanwhile gives nothing back to this
// create yet (it errs on the safe side), and a payment made meanwhile from the same quote is
// refused by the unique index on outgoing_payments.quote_id. A grant's first create inserts the
// row with valid totals of zero since `$3`: every create takes this lock, so a grant without the
// row has no payments to sum.
/** The grant's lock row as the lock returns it (`lockGrantTotalsSql`). */
export interface LockedTotals {
  totals_valid: boolean
  totals_since: Date | null
  debit_total: bigint
  receive_totals: Record<string, string>
  quote_used: boolean
  given_back_debit: bigint
  given_back_receive: bigint
}

/**
 * The lock's text; `receiveCode` and `receiveScale` are SQL (placeholders, or subqueries when the
 * quote is read in the same statement).
 */
export const lockGrantTotalsSql = (receiveCode: string, receiveScale: string) =>
  `INSERT INTO outgoing_payment_grants AS g (grant_id, totals_valid, totals_since)
   VALUES ($1, true, $3::timestamptz)
   ON CONFLICT (grant_id) DO UPDATE SET grant_id = EXCLUDED.grant_id
   RETURNING g.totals_valid, g.totals_since, g.debit_total, g.receive_totals,
     EXISTS (SELECT 1 FROM outgoing_payments u WHERE u.quote_id = $2) AS quote_used,
     (SELECT coalesce(sum(${givenBackDebit('f')}), 0) FROM outgoing_payments f
       WHERE f.grant_id = $1 AND f.state ${GIVES_BACK}
         AND f.created_at >= coalesce($3::timestamptz, '-infinity')) AS given_back_debit,
     (SELECT coalesce(sum(${givenBackReceive('f')}), 0) FROM outgoing_payments f
       WHERE f.grant_id = $1 AND f.state ${GIVES_BACK}
         AND f.created_at >= coalesce($3::timestamptz, '-infinity')
         AND f.receive_asset_code = ${receiveCode}
         AND f.receive_asset_scale = ${receiveScale}) AS given_back_receive`

const lockGrantTotals = prepared<LockedTotals>(lockGrantTotalsSql('$4', '$5'))

// The totals summed afresh (under the lock, in a new snapshot): every payment since `$2` by
// receive asset, and what the failed and cancelled ones among them give back.
const sumGrantPayments = prepared<{
  code: string
  scale: number
  debit: bigint
  receive: bigint
  given_back_debit: bigint
  given_back_receive: bigint
}>(
  `SELECT receive_asset_code AS code, receive_asset_scale AS scale,
          sum(debit_amount) AS debit, sum(receive_amount) AS receive,
          coalesce(sum(${givenBackDebit('f')}) FILTER (WHERE state ${GIVES_BACK}), 0)
            AS given_back_debit,
          coalesce(sum(${givenBackReceive('f')}) FILTER (WHERE state ${GIVES_BACK}), 0)
            AS given_back_receive
     FROM outgoing_payments f
    WHERE grant_id = $1 AND created_at >= coalesce($2::timestamptz, '-infinity')
    GROUP BY 1, 2`,
)

/**
 * Takes the grant's lock and checks a new payment, paid from quote `p`, against the grant's
 * limits: the receiver if pinned, the current interval, and the debit or receive maximum counting
 * what was already spent (failed and cancelled payments excluded). One statement locks the grant
 * and returns its running totals; only a grant's first create in a new interval (or its first
 * since the totals were kept, migration 0019) sums its payments. Returns the spending including
 * this payment and the totals to store with it (`grantTotalsCte`, `storeGrantTotals`), or why not.
 */
export async function lockAndCheckLimits(
  trx: Db,
  grantId: string,
  limits: OutgoingLimits | undefined,
  p: NewPayment,
  now: Date,
): Promise<{ spent: Spent; totals: GrantTotals } | 'unauthorized' | 'quote_used'> {
  const window = limitsWindow(limits, now)
  const [locked] = await lockGrantTotals(trx, [
    grantId,
    p.id,
    window.since ?? null,
    p.receiveAsset.code,
    p.receiveAsset.scale,
  ])
  return checkLimits(trx, grantId, limits, p, window, locked!)
}

/** The current interval of the grant's limits at `now`: its start, or `ended` when none is current. */
export function limitsWindow(
  limits: OutgoingLimits | undefined,
  now: Date,
): { since: Date | undefined; ended: boolean } {
  if (limits?.interval === undefined) return { since: undefined, ended: false }
  const current = currentInterval(parseRepeatingInterval(limits.interval)!, now)
  return current ? { since: current.start, ended: false } : { since: undefined, ended: true }
}

/**
 * The rest of `lockAndCheckLimits`, once the grant's lock (taken for `window.since`) has returned
 * `locked`: whether quote `p` was used, and the new payment against the limits.
 */
export async function checkLimits(
  trx: Db,
  grantId: string,
  limits: OutgoingLimits | undefined,
  p: NewPayment,
  window: { since: Date | undefined; ended: boolean },
  locked: LockedTotals,
): Promise<{ spent: Spent; totals: GrantTotals } | 'unauthorized' | 'quote_used'> {
  const { since } = window
  const receiveLimit = limits?.receiveAmount
  const refused =
    (limits?.receiver !== undefined && limits.receiver !== p.receiver) ||
    window.ended ||
    (receiveLimit !== undefined &&
      (receiveLimit.assetCode !== p.receiveAsset.code ||
        receiveLimit.assetScale !== p.receiveAsset.scale))
  const key = receiveKey(p.receiveAsset)
  if (locked.quote_used) return 'quote_used'
  if (refused) return 'unauthorized'

  let before: GrantTotals
  let givenBack: { debit: bigint; receive: bigint }
  if (locked.totals_valid && locked.totals_since?.getTime() === since?.getTime()) {
    before = {
      since,
      debit: locked.debit_total,
      receive: Object.fromEntries(
        Object.entries(locked.receive_totals).map(([k, v]) => [k, BigInt(v)]),
      ),
    }
    givenBack = { debit: locked.given_back_debit, receive: locked.given_back_receive }
  } else {
    const rows = await sumGrantPayments(trx, [grantId, since ?? null])
    before = { since, debit: 0n, receive: {} }
    givenBack = { debit: 0n, receive: 0n }
    for (const r of rows) {
      before.debit += r.debit
      before.receive[receiveKey(r)] = r.receive
      givenBack.debit += r.given_back_debit
      if (receiveKey(r) === key) givenBack.receive = r.given_back_receive
    }
  }
  const spent = {
    debit: before.debit - givenBack.debit + p.debitAmount,
    receive: (before.receive[key] ?? 0n) - givenBack.receive + p.receiveAmount,
    receiveAsset: p.receiveAsset,
  }
  if (limits?.debitAmount && spent.debit > BigInt(limits.debitAmount.value)) return 'unauthorized'
  if (receiveLimit && spent.receive > BigInt(receiveLimit.value)) return 'unauthorized'
  return {
    spent,
    totals: {
      since,
      debit: before.debit + p.debitAmount,
      receive: { ...before.receive, [key]: (before.receive[key] ?? 0n) + p.receiveAmount },
    },
  }
}

/** The grant's running totals after a create, as a CTE of the create's write. */
export function grantTotalsCte(grantId: string, t: GrantTotals): RawBuilder<unknown> {
  return sql`grant_totals AS (
    UPDATE outgoing_payment_grants
       SET totals_valid = true, totals_since = ${t.since ?? null},
           debit_total = ${t.debit}, receive_totals = ${receiveJson(t)}::jsonb
     WHERE grant_id = ${grantId})`
}

/** The grant's running totals after a create, written on their own. */
export async function storeGrantTotals(trx: Db, grantId: string, t: GrantTotals): Promise<void> {
  await trx
    .updateTable('outgoing_payment_grants')
    .set({
      totals_valid: true,
      totals_since: t.since ?? null,
      debit_total: t.debit,
      receive_totals: sql`${receiveJson(t)}::jsonb`,
    })
    .where('grant_id', '=', grantId)
    .execute()
}

const receiveJson = (t: GrantTotals) =>
  JSON.stringify(Object.fromEntries(Object.entries(t.receive).map(([k, v]) => [k, String(v)])))

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
