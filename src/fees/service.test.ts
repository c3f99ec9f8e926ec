import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db.ts'
import { createAsset } from '../assets/service.ts'
import { FEE_CACHE_MAX_AGE_MS, getFee, setFee } from './service.ts'

let database: TestDatabase
let assetId: string
before(async () => {
  database = await createTestDatabase({ poolSize: 2 })
  const asset = await createAsset(database.db, { code: 'USD', scale: 2 })
  assert.ok(typeof asset !== 'string')
  assetId = asset.id
})
after(() => database.drop())

test('a fee changed elsewhere is used for at most the cache bound; at once after setFee here', async () => {
  const { db } = database
  const t = 1_000_000
  await setFee(db, assetId, { fixed: 1n, basisPoints: 10 })
  assert.deepEqual(await getFee(db, assetId, t), { fixed: 1n, basisPoints: 10 })
  // Another process changes the fee: this one prices with the old one until its copy is too old.
  await db
    .updateTable('fees')
    .set({ fixed: 2n, basis_points: 20 })
    .where('asset_id', '=', assetId)
    .execute()
  assert.deepEqual(await getFee(db, assetId, t + FEE_CACHE_MAX_AGE_MS - 1), {
    fixed: 1n,
    basisPoints: 10,
  })
  // A transaction always reads it.
  const inside = await db.transaction().execute((trx) => getFee(trx, assetId, t))
  assert.deepEqual(inside, { fixed: 2n, basisPoints: 20 })
  assert.deepEqual(await getFee(db, assetId, t + FEE_CACHE_MAX_AGE_MS), {
    fixed: 2n,
    basisPoints: 20,
  })
  // Changed through this process (the admin route): used on the next quote.
  await setFee(db, assetId, { fixed: 3n, basisPoints: 30 })
  assert.deepEqual(await getFee(db, assetId, t + FEE_CACHE_MAX_AGE_MS), {
    fixed: 3n,
    basisPoints: 30,
  })
})
