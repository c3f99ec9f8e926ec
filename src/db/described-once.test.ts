import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import pg from 'pg'
import { DATABASE_URL } from '../../test/helpers/db.ts'
import { queryDescribedOnce } from './described-once.ts'

// A client as the server's pool makes them: pipeline mode, int8 and numeric as bigint.
let client: pg.Client
const described = { rows: 0, none: 0 }
before(async () => {
  client = new pg.Client({
    connectionString: DATABASE_URL,
    pipeline: true,
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === 20 || oid === 1700
          ? (v: string) => BigInt(v)
          : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
    },
  } as pg.ClientConfig)
  await client.connect()
  // What PostgreSQL answers to each Describe: a row description, or NoData for no rows.
  const wire = (client as unknown as { connection: NodeJS.EventEmitter }).connection
  wire.on('rowDescription', () => described.rows++)
  wire.on('noData', () => described.none++)
  await client.query('CREATE TEMP TABLE described (id int PRIMARY KEY, amount numeric, note text)')
})
after(() => client?.end())

const send = (q: unknown) => client.query(q as pg.QueryConfig)
const run = (name: string, text: string, values: unknown[]) =>
  queryDescribedOnce(send, { name, text, values })

test('a statement is described on its first execution only; every later result is parsed alike', async () => {
  const before = described.rows
  const select = (id: number) =>
    run('d_select', 'SELECT $1::int AS id, $2::numeric AS amount, NULL::text AS note', [id, '12'])
  for (let id = 1; id <= 3; id++) {
    const { rows } = await select(id)
    assert.deepEqual(rows, [{ id, amount: 12n, note: null }])
  }
  assert.equal(described.rows - before, 1)

  // Pipelined, many at once: the ones sent before the first answer is back are described too (at
  // least the first), and every result is right.
  const batch = described.rows
  const many = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      run('d_many', 'SELECT $1::int + 1 AS n, $2::text AS s', [i, `s${i}`]),
    ),
  )
  for (const [i, { rows }] of many.entries()) assert.deepEqual(rows, [{ n: i + 1, s: `s${i}` }])
  const again = described.rows
  assert.ok(again - batch >= 1 && again - batch <= 20)
  await run('d_many', 'SELECT $1::int + 1 AS n, $2::text AS s', [7, 'x'])
  assert.equal(described.rows, again)
})

test('a statement without rows is described once too, and its writes and counts are right', async () => {
  const before = described.none
  for (let id = 1; id <= 3; id++) {
    const result = await run('d_insert', 'INSERT INTO described (id, amount) VALUES ($1, $2)', [
      id,
      String(id * 100),
    ])
    assert.equal(result.rowCount, 1)
    assert.deepEqual(result.rows, [])
  }
  assert.equal(described.none - before, 1)
  const rowsBefore = described.rows
  for (const note of ['n', 'm']) {
    const { rows } = await run(
      'd_returning',
      'UPDATE described SET note = $1 WHERE id <= $2 RETURNING id, amount, note',
      [note, 2],
    )
    assert.deepEqual(
      rows.sort((a, b) => a.id - b.id),
      [
        { id: 1, amount: 100n, note },
        { id: 2, amount: 200n, note },
      ],
    )
  }
  assert.equal(described.rows - rowsBefore, 1)
})

test('a failed execution, or a value that cannot be sent, leaves the statement and the client usable', async () => {
  const rowsBefore = described.rows
  const divide = (d: number) => run('d_divide', 'SELECT 10 / $1::int AS q', [d])
  assert.deepEqual((await divide(2)).rows, [{ q: 5 }])
  await assert.rejects(divide(0), /division by zero/)
  assert.deepEqual((await divide(5)).rows, [{ q: 2 }])
  assert.equal(described.rows - rowsBefore, 1)
  // A value pg cannot serialise fails the call before any of its execution is sent, on the first
  // execution (its Parse sent) as on a later one; the statement stays prepared either way.
  const circular: Record<string, unknown> = {}
  circular.self = circular
  const json = (j: unknown) => run('d_json', 'SELECT $1::jsonb AS j', [j])
  await assert.rejects(json(circular), /circular/i)
  assert.deepEqual((await json({ a: 1 })).rows, [{ j: { a: 1 } }])
  await assert.rejects(json(circular), /circular/i)
  assert.deepEqual((await json({ a: 2 })).rows, [{ j: { a: 2 } }])
  assert.equal(described.rows - rowsBefore, 2)
  assert.deepEqual((await divide(1)).rows, [{ q: 10 }])
  // The error's stack leads back here, not only to the socket's parser.
  const err = await divide(0).catch((e: Error) => e)
  assert.match(String((err as Error).stack), /described-once\.test\.ts/)
})
