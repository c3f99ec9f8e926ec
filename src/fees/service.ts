import { sql } from 'kysely'
import type { Db } from '../db/database.ts'
import type { FeeSchedule } from '../quotes/pricing.ts'

const NO_FEE: FeeSchedule = { fixed: 0n, basisPoints: 0 }

/** The sending fee for payments out of wallet addresses of an asset (none unless configured). */
export async function getFee(db: Db, assetId: string): Promise<FeeSchedule> {
  const row = await db
    .selectFrom('fees')
    .selectAll()
    .where('asset_id', '=', assetId)
    .executeTakeFirst()
  return row ? { fixed: row.fixed, basisPoints: row.basis_points } : NO_FEE
}

export async function setFee(db: Db, assetId: string, fee: FeeSchedule): Promise<void> {
  await db
    .insertInto('fees')
    .values({ asset_id: assetId, fixed: fee.fixed, basis_points: fee.basisPoints })
    .onConflict((oc) =>
      oc
        .column('asset_id')
        .doUpdateSet({ fixed: fee.fixed, basis_points: fee.basisPoints, updated_at: sql`now()` }),
    )
    .execute()
}
