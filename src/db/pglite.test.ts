import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { sql } from 'kysely'
import { createAsset } from '../assets/service.ts'
import { available, createAccount, getAccount, getSettlementAccount } from '../ledger/accounts.ts'
import { checkBooks } from '../ledger/invariants.ts'
import { createTransfer } from '../ledger/transfers.ts'
import { isLedgerError } from '../ledger/types.ts'
import { openDatabase } from './database.ts'
import { listMigrations, migrate } from './migrate.ts'

test('PGlite: migrations are idempotent, concurrent transactions are serialised correctly, pool stats', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'op-pglite-db-'))
  const database = await openDatabase({
    databaseUrl: undefined,
    schema: 'public',
    poolSize: 1,
    dataDir,
  })
  try {
    assert.deepEqual(
      await migrate(database),
      listMigrations().map((m) => m.version),
    )
    assert.deepEqual(await migrate(database), [])
    const { db } = database
    const asset = await createAsset(db, { code: 'USD', scale: 2 })
    assert.ok(typeof asset !== 'string')
    const settlement = await getSettlementAccount(db, asset.id)
    const a = await createAccount(db, asset.id, 'wallet')
    const b = await createAccount(db, asset.id, 'wallet')
    const move = (from: string, to: string, amount: bigint) =>
      db.transaction().execute((trx) =>
        createTransfer(trx, {
          id: randomUUID(),
          debitAccountId: from,
          creditAccountId: to,
          amount,
        }),
      )
    assert.ok(!isLedgerError(await move(settlement.id, a.id, 2n ** 64n - 1n)))
    const results = await Promise.all(Array.from({ length: 30 }, () => move(a.id, b.id, 2n ** 60n)))
    assert.equal(results.filter((r) => !isLedgerError(r)).length, 15)
    const acc = (await getAccount(db, b.id))!
    assert.equal(typeof acc.creditsPosted, 'bigint')
    assert.equal(available(acc), 15n * 2n ** 60n)
    assert.ok((await checkBooks(db)).balanced)

    // Pool stats: one session, in use while a transaction holds it, others waiting.
    assert.deepEqual(database.poolStats(), { total: 1, idle: 1, waiting: 0 })
    let release!: () => void
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    let inside!: () => void
    const entered = new Promise<void>((resolve) => {
      inside = resolve
    })
    const trx = db.transaction().execute(async () => {
      inside()
      await held
    })
    await entered
    const waiting = sql`select 1`.execute(db)
    await new Promise((r) => setImmediate(r))
    assert.deepEqual(database.poolStats(), { total: 1, idle: 0, waiting: 1 })
    release()
    await trx
    await waiting
    assert.deepEqual(database.poolStats(), { total: 1, idle: 1, waiting: 0 })
  } finally {
    await database.close()
  }
})
