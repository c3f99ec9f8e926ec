import { sql } from 'kysely'
import type { Db } from '../db/database.ts'
import type { AccountKind } from '../db/schema.ts'

/**
 * The asset's own accounts: settlement, the clearing account of outgoing payments and fees. Every
 * local payment touches the clearing and fee accounts, every deposit the settlement account; none
 * of them has a balance rule to check (the clearing account is only debited, in the same
 * transaction, by what was just posted into it; nothing debits fees), so, as TigerBeetle's
 * limit-free accounts, they are never locked: their movements are appended to
 * `ledger_account_deltas` and folded into the row later. `checkBooks` still verifies that neither
 * the clearing nor the fee account is ever overdrawn.
 */
export const LIMIT_FREE_KINDS: readonly AccountKind[] = ['settlement', 'outgoing', 'fees']

export const isLimitFree = (kind: AccountKind) => LIMIT_FREE_KINDS.includes(kind)

/**
 * Moves up to `limit` appended deltas into their accounts' cached totals, in one statement (so a
 * reader sees each delta either appended or folded, never both). Rows another process is folding
 * are skipped. Returns how many were folded.
 */
export async function foldDeltas(db: Db, limit = 10_000): Promise<number> {
  const { rows } = await sql<{ n: bigint }>`
    WITH moved AS (
      DELETE FROM ledger_account_deltas
       WHERE seq IN (SELECT seq FROM ledger_account_deltas ORDER BY seq LIMIT ${limit}
                       FOR UPDATE SKIP LOCKED)
      RETURNING *
    ), sums AS (
      SELECT account_id, sum(debits_posted) AS dp, sum(credits_posted) AS cp,
             sum(debits_pending) AS dpe, sum(credits_pending) AS cpe, count(*) AS n
        FROM moved GROUP BY account_id
    ), folded AS (
      UPDATE ledger_accounts a
         SET debits_posted = a.debits_posted + s.dp, credits_posted = a.credits_posted + s.cp,
             debits_pending = a.debits_pending + s.dpe, credits_pending = a.credits_pending + s.cpe
        FROM sums s
       WHERE a.id = s.account_id
      RETURNING s.n
    )
    SELECT coalesce(sum(n), 0) AS n FROM folded`.execute(db)
  return Number(rows[0]?.n ?? 0)
}
