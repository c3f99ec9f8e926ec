import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { sql } from 'kysely'
import pg from 'pg'
import { createTestDatabase, DATABASE_URL, type TestDatabase } from '../../test/helpers/db.ts'
import { SHARED, SHARED_LOCK_TIMEOUT_MS } from './shared-connections.ts'

let two: TestDatabase
let one: TestDatabase
let none: TestDatabase
before(async () => {
  two = await createTestDatabase({ poolSize: 2, sharedConnections: 2 })
  one = await createTestDatabase({ poolSize: 2, sharedConnections: 1 })
  none = await createTestDatabase({ poolSize: 2, sharedConnections: 0 })
  await sql`CREATE TABLE shared_rows (id int PRIMARY KEY)`.execute(one.db)
})
after(async () => {
  await two?.drop()
  await one?.drop()
  await none?.drop()
})

const backend = async (database: TestDatabase) =>
  (await sql<{ pid: number }>`${SHARED} SELECT pg_backend_pid() AS pid`.execute(database.db))
    .rows[0]!.pid

test('300 statements at once run on the shared connections only, each answered with its own rows', async () => {
  const { db } = two
  const before = two.poolStats()
  const answers = await Promise.all(
    Array.from(
      { length: 300 },
      async (_, i) =>
        (
          await sql<{
            n: number
            pid: number
          }>`${SHARED} SELECT ${i}::int AS n, pg_backend_pid() AS pid`.execute(db)
        ).rows[0]!,
    ),
  )
  assert.deepEqual(
    answers.map((a) => a.n),
    Array.from({ length: 300 }, (_, i) => i),
  )
  assert.ok(new Set(answers.map((a) => a.pid)).size <= 2)
  const after = two.poolStats()
  // None took a connection of the pool, and each still counts as a statement of its own.
  assert.equal(after.total, before.total)
  assert.ok(after.statements! - before.statements! >= 300)
})

test('a shared statement that fails fails alone; the ones sent with it are answered', async () => {
  const { db } = one
  const [a, b, c] = await Promise.allSettled([
    sql<{ n: number }>`${SHARED} SELECT 1 AS n`.execute(db),
    sql<{ n: number }>`${SHARED} SELECT 1 / 0 AS n`.execute(db),
    sql<{ n: number }>`${SHARED} SELECT 3 AS n`.execute(db),
  ])
  assert.equal(a.status === 'fulfilled' && a.value.rows[0]!.n, 1)
  assert.match(b.status === 'rejected' ? String(b.reason) : '', /division by zero/)
  assert.equal(c.status === 'fulfilled' && c.value.rows[0]!.n, 3)
})

test('inside a transaction a shared statement runs in the transaction', async () => {
  const { db } = one
  const seen = await db
    .transaction()
    .execute(async (trx) => {
      await sql`INSERT INTO shared_rows VALUES (100)`.execute(trx)
      const { rows } = await sql<{
        n: number
      }>`${SHARED} SELECT count(*)::int AS n FROM shared_rows WHERE id = 100`.execute(trx)
      throw Object.assign(new Error('roll back'), { seen: rows[0]!.n })
    })
    .catch((err: { seen?: number }) => err.seen)
  assert.equal(seen, 1)
  const { rows } = await sql<{
    n: number
  }>`${SHARED} SELECT count(*)::int AS n FROM shared_rows WHERE id = 100`.execute(db)
  assert.equal(rows[0]!.n, 0)
})

test("a shared statement waiting for another transaction's lock leaves the shared connection; the statements behind it go on", async () => {
  const { db } = one
  const holder = new pg.Client({
    connectionString: DATABASE_URL,
    options: `-c search_path=${one.schema}`,
  })
  await holder.connect()
  try {
    await holder.query('BEGIN')
    await holder.query('INSERT INTO shared_rows VALUES (1)')
    const started = Date.now()
    let insertedAt = 0
    // Waits for the holder's insert of the same key: committed, it conflicts; rolled back, it goes in.
    const waiting = sql<{
      id: number
    }>`${SHARED} INSERT INTO shared_rows VALUES (1) ON CONFLICT DO NOTHING RETURNING id`
      .execute(db)
      .then((r) => {
        insertedAt = Date.now()
        return r.rows
      })
    await new Promise((r) => setTimeout(r, 20))
    // Behind it on the one shared connection, answered while the lock is still held.
    const behind = await sql<{ n: number }>`${SHARED} SELECT 42 AS n`.execute(db)
    const answeredIn = Date.now() - started
    assert.equal(behind.rows[0]!.n, 42)
    assert.equal(insertedAt, 0)
    assert.ok(answeredIn < SHARED_LOCK_TIMEOUT_MS + 1000, `answered in ${answeredIn} ms`)
    await new Promise((r) => setTimeout(r, 200))
    assert.equal(insertedAt, 0, 'the waiting insert still waits, on a connection of its own')
    await holder.query('ROLLBACK')
    assert.deepEqual(await waiting, [{ id: 1 }])
    assert.equal(one.poolStats().shared?.lockTimeouts, 1)
  } finally {
    await holder.end()
  }
})

test('a shared connection that breaks is replaced by the next statement', async () => {
  const first = await backend(one)
  const admin = new pg.Client({ connectionString: DATABASE_URL })
  await admin.connect()
  try {
    await admin.query('SELECT pg_terminate_backend($1)', [first])
  } finally {
    await admin.end()
  }
  // The statement sent as the connection breaks may fail with it; the ones after do not.
  const deadline = Date.now() + 5_000
  let next: number | undefined
  while (next === undefined && Date.now() < deadline) {
    next = await backend(one).catch(() => undefined)
    if (next === undefined) await new Promise((r) => setTimeout(r, 20))
  }
  assert.ok(next !== undefined && next !== first)
  assert.equal(await backend(one), next)
})

test('with no shared connections, a marked statement runs on the pool', async () => {
  const answers = await Promise.all(
    Array.from(
      { length: 10 },
      async (_, i) =>
        (await sql<{ n: number }>`${SHARED} SELECT ${i}::int AS n`.execute(none.db)).rows[0]!.n,
    ),
  )
  assert.deepEqual(
    answers,
    Array.from({ length: 10 }, (_, i) => i),
  )
  const stats = none.poolStats()
  assert.equal(stats.shared, undefined)
  assert.ok(stats.total >= 1)
})
