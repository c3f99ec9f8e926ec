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

/** Every asset with its sending fee (none configured: zero). */
export async function listFees(
  db: Db,
): Promise<{ assetId: string; assetCode: string; assetScale: number; fee: FeeSchedule }[]> {
  const rows = await db
    .selectFrom('assets as a')
    .leftJoin('fees as f', 'f.asset_id', 'a.id')
    .select(['a.id', 'a.code', 'a.scale', 'f.fixed', 'f.basis_points'])
    .orderBy('a.code')
    .orderBy('a.scale')
    .execute()
  return rows.map((r) => ({
    assetId: r.id,
    assetCode: r.code,
    assetScale: r.scale,
    fee: r.fixed === null ? NO_FEE : { fixed: r.fixed, basisPoints: r.basis_points! },
  }))
}
