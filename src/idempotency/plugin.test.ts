import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { sql } from 'kysely'
import { pino } from 'pino'
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db.ts'
import { createApp } from '../http/app.ts'
import { HttpError } from '../lib/errors.ts'
import { deleteExpiredKeys, idempotency } from './plugin.ts'

let database: TestDatabase
let app: FastifyInstance
let baseUrl: string
const calls = { reject: 0, flaky: 0, nested: 0 }
/** Holds a /things handler for the named thing until the promise settles (once). */
const gates = new Map<string, Promise<void>>()

before(async () => {
  database = await createTestDatabase({ poolSize: 25 })
  await sql`CREATE TABLE things (id uuid PRIMARY KEY, name text NOT NULL)`.execute(database.db)
  app = createApp({ logger: pino({ level: 'silent' }) })
  const clients = new WeakMap<FastifyRequest, string>()
  await app.register(async (scoped) => {
    // Stands in for token authentication, which the app registers before idempotency.
    scoped.addHook('preHandler', async (req) => {
      const client = req.headers['x-client']
      if (typeof client === 'string' && client !== '') clients.set(req, client)
    })
    idempotency(scoped, {
      db: database.db,
      ttlSeconds: 3600,
      lockSeconds: 60,
      scope: (req) => clients.get(req),
    })
    scoped.post('/things', async (req, reply) => {
      const { name, delayMs } = req.body as { name: string; delayMs?: number }
      const gate = gates.get(name)
      gates.delete(name)
      await gate
      if (delayMs) await sleep(delayMs)
      const id = randomUUID()
      await sql`INSERT INTO things (id, name) VALUES (${id}, ${name})`.execute(database.db)
      return reply.code(201).send({ id, name })
    })
    scoped.post('/reject', async () => {
      calls.reject++
      throw new HttpError(400, 'invalid_request', `rejected ${calls.reject}`)
    })
    // A nested context registering the mechanism again (as a domain's routes might): the outer
    // registration handles its keys alone.
    await scoped.register(async (nested) => {
      idempotency(nested, {
        db: database.db,
        ttlSeconds: 3600,
        lockSeconds: 60,
        scope: (req) => clients.get(req),
      })
      nested.post('/nested', async (_req, reply) => {
        calls.nested++
        return reply.code(201).send({ call: calls.nested })
      })
    })
    scoped.post('/flaky', async (_req, reply) => {
      calls.flaky++
      if (calls.flaky === 1) throw new Error('transient failure')
      return reply.code(201).send({ attempt: calls.flaky })
    })
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const address = app.server.address()
  assert.ok(address && typeof address === 'object')
  baseUrl = `http://127.0.0.1:${address.port}`
})

after(async () => {
  await app.close()
  await database.drop()
})

interface Response {
  status: number
  text: string
  replayed: boolean
  contentType: string | null
}

async function post(
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  const res = await fetch(`${baseUrl}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-client': 'client-a', ...headers },
    body: JSON.stringify(body),
  })
  return {
    status: res.status,
    text: await res.text(),
    replayed: res.headers.get('idempotent-replayed') === 'true',
    contentType: res.headers.get('content-type'),
  }
}

const withKey = (key: string, headers: Record<string, string> = {}) => ({
  'idempotency-key': key,
  ...headers,
})

async function countThings(name: string): Promise<number> {
  const { rows } = await sql<{
    n: number
  }>`SELECT count(*)::int AS n FROM things WHERE name = ${name}`.execute(database.db)
  return rows[0]!.n
}

const keyRow = (key: string, scope = 'client-a') =>
  database.db
    .selectFrom('idempotency_keys')
    .selectAll()
    .where('scope', '=', scope)
    .where('key', '=', key)
    .executeTakeFirst()

test('a retry gets the stored response, marked replayed, without running the handler', async () => {
  const key = randomUUID()
  const name = randomUUID()
  const first = await post('/things', { name }, withKey(key))
  const second = await post('/things', { name }, withKey(key))
  assert.equal(first.status, 201)
  assert.equal(first.replayed, false)
  assert.deepEqual(second, { ...first, replayed: true })
  assert.equal(JSON.parse(second.text).name, name)
  assert.equal(await countThings(name), 1)
  assert.equal((await keyRow(key))?.state, 'done')
})

test('the key for another body, path or query is refused with 422', async () => {
  const key = randomUUID()
  const name = randomUUID()
  assert.equal((await post('/things', { name }, withKey(key))).status, 201)
  for (const [path, body] of [
    ['/things', { name: `${name}-other` }],
    ['/things?x=1', { name }],
    ['/reject', { name }],
  ] as const) {
    const res = await post(path, body, withKey(key))
    assert.equal(res.status, 422)
    assert.deepEqual(JSON.parse(res.text), {
      error: {
        code: 'invalid_request',
        description: 'Idempotency-Key was used with a different request',
      },
    })
  }
  assert.equal(await countThings(name), 1)
  assert.equal(await countThings(`${name}-other`), 0)
})

test('20 concurrent requests with one key run the handler once', async () => {
  const key = randomUUID()
  const name = randomUUID()
  const results = await Promise.all(
    Array.from({ length: 20 }, () => post('/things', { name, delayMs: 100 }, withKey(key))),
  )
  const created = results.filter((r) => r.status === 201 && !r.replayed)
  assert.equal(created.length, 1)
  for (const r of results) {
    if (r === created[0]) continue
    if (r.status === 409) {
      assert.equal(JSON.parse(r.text).error.code, 'conflict')
    } else {
      assert.deepEqual(r, { ...created[0], replayed: true })
    }
  }
  assert.ok(
    results.some((r) => r.status === 409),
    'some requests saw the key in progress',
  )
  assert.equal(await countThings(name), 1)
  assert.deepEqual(await post('/things', { name, delayMs: 100 }, withKey(key)), {
    ...created[0],
    replayed: true,
  })
})

test('the same key in two scopes names two requests', async () => {
  const key = randomUUID()
  const name = randomUUID()
  const a = await post('/things', { name }, withKey(key, { 'x-client': 'client-a' }))
  const b = await post('/things', { name }, withKey(key, { 'x-client': 'client-b' }))
  assert.equal(a.status, 201)
  assert.equal(b.status, 201)
  assert.equal(b.replayed, false)
  assert.notEqual(JSON.parse(a.text).id, JSON.parse(b.text).id)
  assert.equal(await countThings(name), 2)
  const bAgain = await post('/things', { name }, withKey(key, { 'x-client': 'client-b' }))
  assert.deepEqual(bAgain, { ...b, replayed: true })
})

test('a 4xx response is stored and replayed', async () => {
  const key = randomUUID()
  const before = calls.reject
  const first = await post('/reject', {}, withKey(key))
  const second = await post('/reject', {}, withKey(key))
  assert.equal(first.status, 400)
  assert.equal(first.contentType, 'application/json; charset=utf-8')
  assert.deepEqual(second, { ...first, replayed: true })
  assert.equal(calls.reject, before + 1)
})

test('a 5xx response is not stored: the retry runs the handler again', async () => {
  const key = randomUUID()
  const failed = await post('/flaky', {}, withKey(key))
  assert.equal(failed.status, 500)
  assert.equal(await keyRow(key), undefined)
  const retried = await post('/flaky', {}, withKey(key))
  assert.equal(retried.status, 201)
  assert.equal(retried.replayed, false)
  assert.deepEqual(JSON.parse(retried.text), { attempt: 2 })
  assert.deepEqual(await post('/flaky', {}, withKey(key)), { ...retried, replayed: true })
  assert.equal(calls.flaky, 2)
})

test('an invalid Idempotency-Key is refused with 400 before the handler runs', async () => {
  const name = randomUUID()
  for (const key of ['', 'x'.repeat(256), 'caf\u00e9', '"unterminated', '""', '"a"b"']) {
    const res = await post('/things', { name }, withKey(key))
    assert.equal(res.status, 400, JSON.stringify(key))
    const { error } = JSON.parse(res.text)
    assert.equal(error.code, 'invalid_request')
    assert.match(error.description, /^Idempotency-Key must be/)
  }
  assert.equal(await countThings(name), 0)
})

test('a quoted key (a structured-field string) is the same key unquoted', async () => {
  const key = randomUUID()
  const name = randomUUID()
  const quoted = await post('/things', { name }, withKey(`"${key}"`))
  assert.equal(quoted.status, 201)
  assert.deepEqual(await post('/things', { name }, withKey(key)), { ...quoted, replayed: true })
  assert.equal((await keyRow(key))?.state, 'done')
  const escaped = await post('/things', { name }, withKey('"a\\"b\\\\c"'))
  assert.equal(escaped.status, 201)
  assert.equal((await keyRow('a"b\\c'))?.state, 'done')
  assert.equal(
    (await post('/things', { name: 'x'.repeat(10) }, withKey('x'.repeat(255)))).status,
    201,
  )
})

test('an expired key may be used again, even for another request', async () => {
  const key = randomUUID()
  const name = randomUUID()
  const first = await post('/things', { name }, withKey(key))
  await database.db
    .updateTable('idempotency_keys')
    .set({ expires_at: sql<Date>`now() - interval '1 second'` })
    .where('key', '=', key)
    .execute()
  const reused = await post('/things', { name: `${name}-2` }, withKey(key))
  assert.equal(reused.status, 201)
  assert.equal(reused.replayed, false)
  assert.notEqual(reused.text, first.text)
  assert.equal(await countThings(`${name}-2`), 1)
  const row = await keyRow(key)
  assert.ok(row && row.expires_at > new Date())
  assert.deepEqual(await post('/things', { name: `${name}-2` }, withKey(key)), {
    ...reused,
    replayed: true,
  })
})

test('a key held past its lock may be taken over; the stale request then stores nothing', async () => {
  const key = randomUUID()
  const name = randomUUID()
  let release!: () => void
  gates.set(
    name,
    new Promise<void>((resolve) => {
      release = resolve
    }),
  )
  const stale = post('/things', { name }, withKey(key))
  while ((await keyRow(key))?.state !== 'in_progress') await sleep(10)

  const blocked = await post('/things', { name }, withKey(key))
  assert.equal(blocked.status, 409)
  assert.deepEqual(JSON.parse(blocked.text).error, {
    code: 'conflict',
    description: 'a request with this Idempotency-Key is in progress',
  })

  await database.db
    .updateTable('idempotency_keys')
    .set({ locked_until: sql<Date>`now() - interval '1 second'` })
    .where('key', '=', key)
    .execute()
  const takeover = await post('/things', { name }, withKey(key))
  assert.equal(takeover.status, 201)
  assert.equal(takeover.replayed, false)

  release()
  const late = await stale
  assert.equal(late.status, 201)
  assert.notEqual(late.text, takeover.text)
  assert.deepEqual(await post('/things', { name }, withKey(key)), { ...takeover, replayed: true })
  assert.equal(await countThings(name), 2)
})

test('requests without the header, or without a scope, are left alone', async () => {
  const name = randomUUID()
  const keyCount = async () =>
    (await database.db.selectFrom('idempotency_keys').select('key').execute()).length
  const keysBefore = await keyCount()
  const a = await post('/things', { name })
  const b = await post('/things', { name })
  const key = randomUUID()
  const c = await post('/things', { name }, withKey(key, { 'x-client': '' }))
  const d = await post('/things', { name }, withKey(key, { 'x-client': '' }))
  for (const res of [a, b, c, d]) {
    assert.equal(res.status, 201)
    assert.equal(res.replayed, false)
  }
  assert.equal(new Set([a, b, c, d].map((r) => JSON.parse(r.text).id)).size, 4)
  assert.equal(await countThings(name), 4)
  assert.equal(await keyCount(), keysBefore)
})

test('deleteExpiredKeys removes expired keys that no request holds', async () => {
  const [expired, live, held] = [randomUUID(), randomUUID(), randomUUID()]
  for (const key of [expired, live]) {
    assert.equal((await post('/things', { name: key }, withKey(key))).status, 201)
  }
  const past = sql<Date>`now() - interval '1 second'`
  await database.db
    .updateTable('idempotency_keys')
    .set({ expires_at: past })
    .where('key', '=', expired)
    .execute()
  // Expired, but its request still runs: the key must stay until the lock lapses.
  await database.db
    .insertInto('idempotency_keys')
    .values({
      scope: 'client-a',
      key: held,
      fingerprint: 'f',
      state: 'in_progress',
      locked_until: sql<Date>`now() + interval '1 minute'`,
      expires_at: past,
    })
    .execute()

  assert.equal(await deleteExpiredKeys(database.db, new Date()), 1)
  assert.equal(await keyRow(expired), undefined)
  assert.ok(await keyRow(live))
  assert.ok(await keyRow(held))
  assert.equal(await deleteExpiredKeys(database.db, new Date(Date.now() + 61_000)), 1)
  assert.equal(await keyRow(held), undefined)
})

test('registered twice (listener and nested context): one claim, replayed once, no self-conflict', async () => {
  const key = randomUUID()
  const first = await post('/nested', {}, withKey(key))
  assert.equal(first.status, 201)
  assert.equal(first.replayed, false)
  const second = await post('/nested', {}, withKey(key))
  assert.deepEqual(second, { ...first, replayed: true })
  assert.equal(calls.nested, 1)
})
