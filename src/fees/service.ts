import { sql } from 'kysely'
import type { Db } from '../db/database.ts'
import type { FeeSchedule } from '../quotes/pricing.ts'

const NO_FEE: FeeSchedule = { fixed: 0n, basisPoints: 0 }

/**
 * How long a process prices quotes with a fee it read: a fee changed through another process
 * applies here within this time (at once in the process that changed it). Every quote would
 * otherwise read it again.
 */
export const FEE_CACHE_MAX_AGE_MS = 5_000

/** Per database handle (servers in one process, as in the tests, keep theirs apart); per asset. */
const feeCache = new WeakMap<Db, Map<string, { at: number; fee: Promise<FeeSchedule> }>>()

/**
 * The sending fee for payments out of wallet addresses of an asset (none unless configured).
 * Outside a transaction it may come from the cache; inside one it is read.
 */
export function getFee(db: Db, assetId: string, now = Date.now()): Promise<FeeSchedule> {
  if (db.isTransaction) return readFee(db, assetId)
  let fees = feeCache.get(db)
  if (!fees) {
    fees = new Map()
    feeCache.set(db, fees)
  }
  const hit = fees.get(assetId)
  if (hit && now - hit.at < FEE_CACHE_MAX_AGE_MS) return hit.fee
  // Assets are few and made by the operator, so the map stays small.
  const entry = { at: now, fee: readFee(db, assetId) }
  fees.set(assetId, entry)
  entry.fee.catch(() => {
    if (fees.get(assetId) === entry) fees.delete(assetId)
  })
  return entry.fee
}

async function readFee(db: Db, assetId: string): Promise<FeeSchedule> {
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
  feeCache.get(db)?.delete(assetId)
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
