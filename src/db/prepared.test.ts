import assert from 'node:assert/strict'
import { test } from 'node:test'
import { sql } from 'kysely'
import { createTestDatabase } from '../../test/helpers/db.ts'
import { MAX_MARKED_TEXTS, PREPARE, prepared } from './database.ts'

test('prepared and PREPARE statements go by name; past the bound, marked texts run unnamed', async () => {
  // One connection, so that pg_prepared_statements (per session) shows every name.
  const database = await createTestDatabase({ poolSize: 1 })
  try {
    const { db } = database
    const double = prepared<{ n: number }>('SELECT $1::int * 2 AS n')
    assert.deepEqual(await double(db, [21]), [{ n: 42 }])
    // In a transaction too, on the transaction's connection.
    await db.transaction().execute(async (trx) => {
      assert.deepEqual(await double(trx, [2]), [{ n: 4 }])
    })
    // Marked texts that differ on every call: each runs, but only the first MAX_MARKED_TEXTS are
    // named, so such a text cannot grow the server's memory without bound.
    for (let i = 0; i < MAX_MARKED_TEXTS + 20; i++) {
      const { rows } = await sql<{
        n: number
      }>`${PREPARE} SELECT ${i}::int + ${sql.lit(i)} AS n`.execute(db)
      assert.equal(rows[0]!.n, 2 * i)
    }
    const { rows } = await sql<{
      statement: string
    }>`SELECT statement FROM pg_prepared_statements`.execute(db)
    assert.ok(rows.some((r) => r.statement === 'SELECT $1::int * 2 AS n'))
    assert.equal(
      rows.filter((r) => r.statement.includes('/* prepared */')).length,
      MAX_MARKED_TEXTS,
    )
  } finally {
    await database.drop()
  }
})
