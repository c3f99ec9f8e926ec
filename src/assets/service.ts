import { randomUUID } from 'node:crypto'
import type { Selectable } from 'kysely'
import type { Db } from '../db/database.ts'
import { isUniqueViolation } from '../db/errors.ts'
import type { AssetsTable } from '../db/schema.ts'
import { createAccount } from '../ledger/accounts.ts'

export interface Asset {
  id: string
  code: string
  scale: number
  createdAt: Date
}

export type AssetError = 'duplicate_asset'

/** Creates an asset with its settlement, outgoing clearing and fees accounts, in one transaction. */
export async function createAsset(
  db: Db,
  input: { code: string; scale: number },
): Promise<Asset | AssetError> {
  try {
    return await db.transaction().execute(async (trx) => {
      const row = await trx
        .insertInto('assets')
        .values({ id: randomUUID(), code: input.code, scale: input.scale })
        .returningAll()
        .executeTakeFirstOrThrow()
      for (const kind of ['settlement', 'outgoing', 'fees'] as const)
        await createAccount(trx, row.id, kind)
      return toAsset(row)
    })
  } catch (err) {
    if (isUniqueViolation(err)) return 'duplicate_asset'
    throw err
  }
}

export async function getAsset(db: Db, id: string): Promise<Asset | undefined> {
  const row = await db.selectFrom('assets').selectAll().where('id', '=', id).executeTakeFirst()
  return row && toAsset(row)
}

export async function findAsset(db: Db, code: string, scale: number): Promise<Asset | undefined> {
  const row = await db
    .selectFrom('assets')
    .selectAll()
    .where('code', '=', code)
    .where('scale', '=', scale)
    .executeTakeFirst()
  return row && toAsset(row)
}

export async function listAssets(db: Db): Promise<Asset[]> {
  const rows = await db.selectFrom('assets').selectAll().orderBy('code').orderBy('scale').execute()
  return rows.map(toAsset)
}

function toAsset(row: Selectable<AssetsTable>): Asset {
  return { id: row.id, code: row.code, scale: row.scale, createdAt: row.created_at }
}
