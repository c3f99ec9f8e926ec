import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { CompiledQuery, sql } from 'kysely'
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db.ts'
import { PREPARE } from './database.ts'
import { LAST_STATEMENT, PIPELINED, withNext } from './pipelined-postgres.ts'

let database: TestDatabase
before(async () => {
  database = await createTestDatabase({ poolSize: 4 })
  await sql`CREATE TABLE pipelined (n int NOT NULL)`.execute(database.db)
})
after(() => database?.drop())

const count = async () =>
  Number(
    (await sql<{ c: string }>`SELECT count(*) AS c FROM pipelined`.execute(database.db)).rows[0]!.c,
  )

/** What `fn` cost in round trips and transactions (database.ts counts them). */
async function costOf(fn: () => Promise<unknown>) {
  const before = database.poolStats()
  await fn()
  const after = database.poolStats()
  return {
    statements: after.statements! - before.statements!,
    transactions: after.transactions! - before.transactions!,
  }
}

test('BEGIN rides with the first statement: a transaction of two statements is three round trips; one of none sends nothing', async () => {
  const { db } = database
  const two = () =>
    db.transaction().execute(async (trx) => {
      await sql`INSERT INTO pipelined VALUES (1)`.execute(trx)
      await sql`DELETE FROM pipelined WHERE n = 1`.execute(trx)
    })
  assert.deepEqual(await costOf(two), { statements: 3, transactions: 1 })
  assert.deepEqual(await costOf(() => db.transaction().execute(async () => 'nothing')), {
    statements: 0,
    transactions: 0,
  })
})

test('the first statement runs inside the transaction, with its isolation level', async () => {
  const { db } = database
  const seen = await db
    .transaction()
    .setIsolationLevel('serializable')
    .execute(async (trx) => {
      const first = await sql<{
        at: Date
        isolation: string
      }>`SELECT now() AS at, current_setting('transaction_isolation') AS isolation`.execute(trx)
      await sql`SELECT pg_sleep(0.02)`.execute(trx)
      const second = await sql<{ at: Date }>`SELECT now() AS at`.execute(trx)
      return { first: first.rows[0]!, second: second.rows[0]! }
    })
  assert.equal(seen.first.isolation, 'serializable')
  // now() is the transaction's start: the same in both statements only if both are in it.
  assert.equal(seen.first.at.getTime(), seen.second.at.getTime())
})

test('a failed statement, first or later, rolls back everything before it, and the connection goes on', async () => {
  const { db } = database
  const before = await count()
  await assert.rejects(
    db.transaction().execute(async (trx) => {
      await sql`INSERT INTO pipelined VALUES (1 / 0)`.execute(trx)
    }),
    /division by zero/,
  )
  await assert.rejects(
    db.transaction().execute(async (trx) => {
      await sql`INSERT INTO pipelined VALUES (2)`.execute(trx)
      await sql`INSERT INTO pipelined VALUES (NULL)`.execute(trx)
    }),
    /null value/,
  )
  await assert.rejects(
    db.transaction().execute(async (trx) => {
      await sql`INSERT INTO pipelined VALUES (3)`.execute(trx)
      throw new Error('the caller changed its mind')
    }),
    /changed its mind/,
  )
  assert.equal(await count(), before)
  // Every connection of the pool is still usable, outside a transaction.
  await Promise.all(
    Array.from({ length: 8 }, () =>
      db.transaction().execute(async (trx) => {
        await sql`INSERT INTO pipelined VALUES (4)`.execute(trx)
      }),
    ),
  )
  assert.equal(await count(), before + 8)
  const { rows } = await sql<{
    open: boolean
  }>`SELECT now() <> statement_timestamp() AS open`.execute(db)
  assert.equal(rows[0]!.open, false)
})

test('racing transactions serialise on their locks as before', async () => {
  const { db } = database
  await sql`CREATE TABLE pipelined_counter (v int NOT NULL)`.execute(db)
  await sql`INSERT INTO pipelined_counter VALUES (0)`.execute(db)
  await Promise.all(
    Array.from({ length: 40 }, () =>
      db.transaction().execute(async (trx) => {
        const { rows } = await sql<{
          v: number
        }>`SELECT v FROM pipelined_counter FOR UPDATE`.execute(trx)
        await sql`UPDATE pipelined_counter SET v = ${rows[0]!.v + 1}`.execute(trx)
      }),
    ),
  )
  const { rows } = await sql<{ v: number }>`SELECT v FROM pipelined_counter`.execute(db)
  assert.equal(rows[0]!.v, 40)
})

test('COMMIT rides with a statement marked LAST_STATEMENT: the whole transaction in one or two round trips', async () => {
  const { db } = database
  const before = await count()
  const one = () =>
    db.transaction().execute(async (trx) => {
      await sql`${LAST_STATEMENT} INSERT INTO pipelined VALUES (5)`.execute(trx)
    })
  assert.deepEqual(await costOf(one), { statements: 1, transactions: 1 })
  const two = () =>
    db.transaction().execute(async (trx) => {
      const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM pipelined`.execute(
        trx,
      )
      await sql`INSERT INTO pipelined SELECT ${rows[0]!.n} ${LAST_STATEMENT}`.execute(trx)
    })
  assert.deepEqual(await costOf(two), { statements: 2, transactions: 1 })
  assert.equal(await count(), before + 2)
  // Outside a transaction the mark changes nothing.
  await sql`${LAST_STATEMENT} INSERT INTO pipelined VALUES (6)`.execute(db)
  assert.equal(await count(), before + 3)
})

test('a failed last statement rolls its transaction back; a statement after the last is refused', async () => {
  const { db } = database
  const before = await count()
  await assert.rejects(
    db.transaction().execute(async (trx) => {
      await sql`INSERT INTO pipelined VALUES (7)`.execute(trx)
      await sql`${LAST_STATEMENT} INSERT INTO pipelined VALUES (NULL)`.execute(trx)
    }),
    /null value/,
  )
  assert.equal(await count(), before)
  // A value that cannot be sent (here circular JSON): the statement fails before anything is
  // written, and the COMMIT that would have gone with it does not commit the statement before it.
  const circular: Record<string, unknown> = {}
  circular.self = circular
  for (const mark of [sql`${LAST_STATEMENT} ${PREPARE}`, LAST_STATEMENT]) {
    await assert.rejects(
      db.transaction().execute(async (trx) => {
        await sql`INSERT INTO pipelined VALUES (7)`.execute(trx)
        await sql`${mark} INSERT INTO pipelined SELECT 8 WHERE ${circular}::jsonb IS NOT NULL`.execute(
          trx,
        )
      }),
      /circular/i,
    )
    assert.equal(await count(), before)
  }
  await assert.rejects(
    db.transaction().execute(async (trx) => {
      await sql`${LAST_STATEMENT} INSERT INTO pipelined VALUES (1008)`.execute(trx)
      await sql`INSERT INTO pipelined VALUES (1009)`.execute(trx)
    }),
    /after its transaction’s last statement/,
  )
  // The last statement committed with it, as its mark says; the one after never ran.
  const { rows } = await sql<{
    n: number
  }>`SELECT n FROM pipelined WHERE n IN (1008, 1009)`.execute(db)
  assert.deepEqual(rows, [{ n: 1008 }])
  // The pool's connections go on, outside any transaction.
  const open = await sql<{ open: boolean }>`SELECT now() <> statement_timestamp() AS open`.execute(
    db,
  )
  assert.equal(open.rows[0]!.open, false)
})

test('statement_check fails its statement, even when what it counts is empty, and a COMMIT sent along then commits nothing', async () => {
  const { db } = database
  const before = await count()
  const insertChecked = (rows: number) => sql`${LAST_STATEMENT}
    WITH w AS (INSERT INTO pipelined SELECT n FROM generate_series(1, ${rows}) n RETURNING n)
    SELECT n FROM w
    UNION ALL
    SELECT NULL WHERE NOT statement_check((SELECT count(*) FROM w) = 2, 'two rows expected')`
  for (const rows of [0, 1, 3]) {
    await assert.rejects(
      db.transaction().execute(async (trx) => {
        await sql`INSERT INTO pipelined VALUES (9)`.execute(trx)
        await insertChecked(rows).execute(trx)
      }),
      /statement check failed: two rows expected/,
    )
    assert.equal(await count(), before)
  }
  await db.transaction().execute((trx) => insertChecked(2).execute(trx))
  assert.equal(await count(), before + 2)
})

test('withNext: the next statement shares the first one’s round trip, runs right behind it, and answers when executed', async () => {
  const { db } = database
  const before = await count()
  const countNow = () => CompiledQuery.raw('SELECT count(*)::int AS c FROM pipelined', [])
  const insert = (n: number) =>
    CompiledQuery.raw(`INSERT INTO pipelined VALUES ($1) RETURNING n ${PIPELINED}`, [n])
  const next = insert(21)
  const cost = await costOf(() =>
    db.transaction().execute(async (trx) => {
      const [first] = (await trx.executeQuery(withNext(countNow(), next))).rows as { c: number }[]
      assert.equal(first!.c, before, 'the first statement ran before the next')
      // A statement executed in between runs after the one sent ahead.
      const [between] = (await trx.executeQuery(countNow())).rows as { c: number }[]
      assert.equal(between!.c, before + 1)
      assert.deepEqual((await trx.executeQuery(next)).rows, [{ n: 21 }])
    }),
  )
  // BEGIN and the next statement ride with the first; the statement in between; COMMIT.
  assert.deepEqual(cost, { statements: 3, transactions: 1 })
  assert.equal(await count(), before + 1)

  // Never executed, it still ran: rolled back with its transaction, or committed with it.
  await assert.rejects(
    db.transaction().execute(async (trx) => {
      await trx.executeQuery(withNext(countNow(), insert(22)))
      throw new Error('refused')
    }),
    /refused/,
  )
  assert.equal(await count(), before + 1)
  await db.transaction().execute((trx) => trx.executeQuery(withNext(countNow(), insert(23))))
  assert.equal(await count(), before + 2)

  // One that fails fails the transaction, asked for or not: a COMMIT does not hide it.
  const failing = CompiledQuery.raw(`INSERT INTO pipelined VALUES (NULL) ${PIPELINED}`, [])
  await assert.rejects(
    db.transaction().execute(async (trx) => {
      await trx.executeQuery(
        withNext(CompiledQuery.raw('INSERT INTO pipelined VALUES (24)', []), failing),
      )
    }),
    /null value/,
  )
  await assert.rejects(
    db.transaction().execute(async (trx) => {
      await trx.executeQuery(withNext(countNow(), failing))
      await trx.executeQuery(failing)
    }),
    /null value/,
  )
  assert.equal(await count(), before + 2)
})
