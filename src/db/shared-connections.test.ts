import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { sql } from 'kysely'
import pg from 'pg'
import { createTestDatabase, DATABASE_URL, type TestDatabase } from '../../test/helpers/db.ts'
import { MAX_WRITES_PER_TRANSACTION, SHARED, SHARED_LOCK_TIMEOUT_MS } from './shared-connections.ts'

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

/**
 * A connection of its own, outside the shared ones and the pool, to look at what is committed (in
 * pipeline mode, for queries sent while others are in flight).
 */
async function outside<T>(
  database: TestDatabase,
  fn: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = new pg.Client({
    connectionString: DATABASE_URL,
    options: `-c search_path=${database.schema}`,
    pipeline: true,
  } as pg.ClientConfig)
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}

const insert = (database: TestDatabase, id: number) =>
  sql<{ id: number }>`${SHARED} INSERT INTO shared_rows VALUES (${id}) RETURNING id`.execute(
    database.db,
  )

const countOf = async (database: TestDatabase, ids: number[]) =>
  (
    await sql<{ id: number; n: number }>`${SHARED} SELECT id, count(*)::int AS n FROM shared_rows
      WHERE id = ANY (${ids}::int[]) GROUP BY id ORDER BY id`.execute(database.db)
  ).rows

test('the writes of one turn share one transaction, and each is answered only once it is committed', async () => {
  const ids = Array.from({ length: 10 }, (_, i) => 1000 + i)
  await outside(one, async (observer) => {
    const before = one.poolStats()
    const seen = await Promise.all(
      ids.map(async (id) => {
        await insert(one, id)
        // Answered: committed, so a connection of its own sees it at once.
        const { rows } = await observer.query(
          'SELECT count(*)::int AS n FROM shared_rows WHERE id = $1',
          [id],
        )
        return rows[0].n as number
      }),
    )
    const after = one.poolStats()
    assert.deepEqual(
      seen,
      ids.map(() => 1),
    )
    assert.equal(after.transactions! - before.transactions!, 1, 'one transaction for the turn')
    // BEGIN and COMMIT ride with the statements: ten round trips' worth, not twelve.
    assert.equal(after.statements! - before.statements!, 10)
  })
})

test(`more than ${MAX_WRITES_PER_TRANSACTION} writes in one turn take one transaction per ${MAX_WRITES_PER_TRANSACTION}`, async () => {
  const ids = Array.from({ length: 2 * MAX_WRITES_PER_TRANSACTION + 3 }, (_, i) => 2000 + i)
  const before = one.poolStats()
  const answers = await Promise.all(ids.map(async (id) => (await insert(one, id)).rows[0]!.id))
  const after = one.poolStats()
  assert.deepEqual(answers, ids)
  assert.equal(after.transactions! - before.transactions!, 3)
  assert.deepEqual(
    await countOf(one, ids),
    ids.map((id) => ({ id, n: 1 })),
  )
})

test('a write that fails in its turn fails alone: the others are committed once each, as if each had been sent alone', async () => {
  const rollbacksBefore = one.poolStats().shared!.rollbacks
  const [a, dup1, dup2, zero, b] = await Promise.allSettled([
    insert(one, 3000),
    insert(one, 3001),
    insert(one, 3001),
    sql`${SHARED} INSERT INTO shared_rows SELECT 3002 / 0`.execute(one.db),
    insert(one, 3003),
  ])
  assert.equal(a.status, 'fulfilled')
  assert.equal(b.status, 'fulfilled')
  // Of two writes of one key, one goes in and the other meets it, as two sent alone would.
  assert.deepEqual([dup1.status, dup2.status].sort(), ['fulfilled', 'rejected'])
  const failed = [dup1, dup2].find((r) => r.status === 'rejected') as PromiseRejectedResult
  assert.equal((failed.reason as { code?: string }).code, '23505')
  assert.match(zero.status === 'rejected' ? String(zero.reason) : '', /division by zero/)
  assert.ok(one.poolStats().shared!.rollbacks > rollbacksBefore)
  assert.deepEqual(await countOf(one, [3000, 3001, 3002, 3003]), [
    { id: 3000, n: 1 },
    { id: 3001, n: 1 },
    { id: 3003, n: 1 },
  ])
})

test("a write of a turn that waits for another transaction's lock holds up its turn's others no longer than the lock timeout", async () => {
  await outside(one, async (holder) => {
    await holder.query('BEGIN')
    await holder.query('INSERT INTO shared_rows VALUES (4000)')
    const timeoutsBefore = one.poolStats().shared!.lockTimeouts
    const started = Date.now()
    const waiting = sql<{
      id: number
    }>`${SHARED} INSERT INTO shared_rows VALUES (4000) ON CONFLICT DO NOTHING RETURNING id`.execute(
      one.db,
    )
    const others = await Promise.all([insert(one, 4001), insert(one, 4002)])
    const answeredIn = Date.now() - started
    assert.deepEqual(
      others.map((r) => r.rows),
      [[{ id: 4001 }], [{ id: 4002 }]],
    )
    assert.ok(answeredIn < SHARED_LOCK_TIMEOUT_MS + 1000, `answered in ${answeredIn} ms`)
    await holder.query('ROLLBACK')
    assert.deepEqual((await waiting).rows, [{ id: 4000 }])
    assert.equal(one.poolStats().shared!.lockTimeouts, timeoutsBefore + 1)
    assert.deepEqual(await countOf(one, [4000, 4001, 4002]), [
      { id: 4000, n: 1 },
      { id: 4001, n: 1 },
      { id: 4002, n: 1 },
    ])
  })
})

test('the writes of a turn whose connection is lost before their COMMIT all fail, and none is written', async () => {
  const pid = await backend(one)
  const slow = sql`${SHARED} INSERT INTO shared_rows SELECT 5000 FROM pg_sleep(0.5)`.execute(one.db)
  const outcomes = Promise.allSettled([slow, insert(one, 5001)])
  await new Promise((r) => setTimeout(r, 150))
  await outside(one, (admin) => admin.query('SELECT pg_terminate_backend($1)', [pid]))
  assert.deepEqual(
    (await outcomes).map((o) => o.status),
    ['rejected', 'rejected'],
  )
  // The next statement opens another connection.
  const deadline = Date.now() + 5_000
  let rows: { id: number; n: number }[] | undefined
  while (rows === undefined && Date.now() < deadline) {
    rows = await countOf(one, [5000, 5001]).catch(() => undefined)
    if (rows === undefined) await new Promise((r) => setTimeout(r, 20))
  }
  assert.deepEqual(rows, [])
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
    const timeoutsBefore = one.poolStats().shared!.lockTimeouts
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
    assert.equal(one.poolStats().shared?.lockTimeouts, timeoutsBefore + 1)
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
