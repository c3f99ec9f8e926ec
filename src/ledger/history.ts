import { type Selectable, sql } from 'kysely'
import type { Db } from '../db/database.ts'
import type { LedgerTransfersTable } from '../db/schema.ts'
import { toTransfer } from './transfers.ts'
import type { Transfer } from './types.ts'

export interface TransferRecord extends Transfer {
  /** Position in the ledger's history: later transfers have larger numbers. */
  seq: bigint
  resolvedAt: Date | null
}

/**
 * Transfers of an account (debited or credited), newest first, before the transfer `beforeId`.
 * Each side is read newest-first from its own index and the two are merged, so a busy account
 * (a settlement or peer account) costs the page, not its history.
 */
export async function accountTransfers(
  db: Db,
  accountId: string,
  page: { limit: number; beforeId?: string },
): Promise<TransferRecord[]> {
  const before =
    page.beforeId === undefined
      ? sql``
      : sql`AND seq < (SELECT seq FROM ledger_transfers WHERE id = ${page.beforeId})`
  const side = (column: 'debit_account_id' | 'credit_account_id') => sql`
    (SELECT * FROM ledger_transfers WHERE ${sql.ref(column)} = ${accountId} ${before}
      ORDER BY seq DESC LIMIT ${page.limit})`
  const { rows } = await sql<Selectable<LedgerTransfersTable>>`
    SELECT * FROM (${side('debit_account_id')} UNION ALL ${side('credit_account_id')}) t
     ORDER BY seq DESC LIMIT ${page.limit}`.execute(db)
  return rows.map(toRecord)
}

/**
 * The transfers a business object booked, oldest first: those referencing it (`reference`) and
 * those whose reference starts with `referencePrefix`. Capped at `limit`.
 */
export async function referencedTransfers(
  db: Db,
  refs: { reference: string; referencePrefix: string },
  limit = 100,
): Promise<TransferRecord[]> {
  const rows = await db
    .selectFrom('ledger_transfers')
    .selectAll()
    .where((eb) =>
      eb.or([
        eb('reference', '=', refs.reference),
        eb('reference', 'like', `${refs.referencePrefix.replace(/[\\%_]/g, '\\$&')}%`),
      ]),
    )
    .orderBy('seq')
    .limit(limit)
    .execute()
  return rows.map(toRecord)
}

export async function transferExists(db: Db, id: string): Promise<boolean> {
  return (
    (await db
      .selectFrom('ledger_transfers')
      .select('id')
      .where('id', '=', id)
      .executeTakeFirst()) !== undefined
  )
}

function toRecord(row: Selectable<LedgerTransfersTable>): TransferRecord {
  // int8 through the raw query comes back as bigint from both engines (db/database.ts).
  return { ...toTransfer(row), seq: BigInt(row.seq), resolvedAt: row.resolved_at }
}
