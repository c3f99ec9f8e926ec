import { sql } from 'kysely'
import type { Db } from '../db/database.ts'

export interface AssetTotals {
  assetId: string
  debitsPosted: bigint
  creditsPosted: bigint
  debitsPending: bigint
  creditsPending: bigint
}

export interface BooksReport {
  /** Debits equal credits per asset, posted and pending, and every cached total equals its transfers. */
  balanced: boolean
  assets: AssetTotals[]
  /** Accounts whose cached totals differ from the sum of their transfers. */
  mismatchedAccounts: string[]
  /**
   * Clearing or fee accounts whose debits exceed their posted credits: the rule they would carry
   * if they were not limit-free (limit-free.ts), checked here instead of on every transfer.
   */
  overdrawnAccounts: string[]
}

/** The reconciliation the tests run after every concurrent scenario; also an operator check. */
export async function checkBooks(db: Db): Promise<BooksReport> {
  const assets = await db
    .selectFrom('ledger_account_totals')
    .select((eb) => [
      'asset_id',
      eb.fn.sum<bigint>('debits_posted').as('dp'),
      eb.fn.sum<bigint>('credits_posted').as('cp'),
      eb.fn.sum<bigint>('debits_pending').as('dpe'),
      eb.fn.sum<bigint>('credits_pending').as('cpe'),
    ])
    .groupBy('asset_id')
    .orderBy('asset_id')
    .execute()
  const mismatched = await sql<{ id: string }>`
    WITH legs AS (
      SELECT debit_account_id AS account_id,
             coalesce(posted_amount, 0) AS dp, 0 AS cp,
             CASE WHEN state = 'pending' THEN amount ELSE 0 END AS dpe, 0 AS cpe
        FROM ledger_transfers
      UNION ALL
      SELECT credit_account_id, 0, coalesce(posted_amount, 0),
             0, CASE WHEN state = 'pending' THEN amount ELSE 0 END
        FROM ledger_transfers
    ), sums AS (
      SELECT account_id, sum(dp) dp, sum(cp) cp, sum(dpe) dpe, sum(cpe) cpe FROM legs GROUP BY account_id
    )
    SELECT a.id FROM ledger_account_totals a LEFT JOIN sums s ON s.account_id = a.id
     WHERE a.debits_posted <> coalesce(s.dp, 0) OR a.credits_posted <> coalesce(s.cp, 0)
        OR a.debits_pending <> coalesce(s.dpe, 0) OR a.credits_pending <> coalesce(s.cpe, 0)
     ORDER BY a.id`.execute(db)
  const overdrawn = await db
    .selectFrom('ledger_account_totals')
    .select('id')
    .where('kind', 'in', ['outgoing', 'fees'])
    .where(sql<boolean>`debits_posted + debits_pending > credits_posted`)
    .orderBy('id')
    .execute()
  const overdrawnAccounts = overdrawn.map((r) => r.id)
  const totals = assets.map((a) => ({
    assetId: a.asset_id,
    debitsPosted: BigInt(a.dp),
    creditsPosted: BigInt(a.cp),
    debitsPending: BigInt(a.dpe),
    creditsPending: BigInt(a.cpe),
  }))
  const mismatchedAccounts = mismatched.rows.map((r) => r.id)
  return {
    balanced:
      mismatchedAccounts.length === 0 &&
      overdrawnAccounts.length === 0 &&
      totals.every(
        (t) => t.debitsPosted === t.creditsPosted && t.debitsPending === t.creditsPending,
      ),
    assets: totals,
    mismatchedAccounts,
    overdrawnAccounts,
  }
}
