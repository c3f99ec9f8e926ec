import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { createServer as createNetServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { DATABASE_URL, dropSchema } from './helpers/db.ts'
import { killAll, spawnServer, stop, waitReady } from './helpers/process.ts'
import { freePort, request } from './helpers/server.ts'

after(killAll)

async function ports() {
  return {
    OPEN_PAYMENTS_PORT: String(await freePort()),
    AUTH_PORT: String(await freePort()),
    ADMIN_PORT: String(await freePort()),
    ILP_PORT: String(await freePort()),
  }
}

async function adminCall(env: Record<string, string>, key: string, path: string, body: unknown) {
  return request(`http://127.0.0.1:${env.ADMIN_PORT}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
}

async function createAlice(env: Record<string, string>, key: string) {
  assert.equal((await adminCall(env, key, '/assets', { code: 'USD', scale: 2 })).status, 201)
  const wa = await adminCall(env, key, '/wallet-addresses', {
    path: '/alice',
    assetCode: 'USD',
    assetScale: 2,
    publicName: 'Alice',
  })
  assert.equal(wa.status, 201)
  return wa.body
}

describe('npm start on the embedded database', () => {
  test('serves a wallet address created through the admin API; a restart keeps the data', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'op-pglite-'))
    const env = { DATA_DIR: dataDir, ...(await ports()) }
    const first = spawnServer(env)
    await waitReady(first)
    assert.match(first.output(), /ADMIN_API_KEY is not set: using a generated development value/)
    assert.match(first.output(), /embedded database \(PGlite\)/)
    const key = JSON.parse(readFileSync(join(dataDir, 'secrets.json'), 'utf8')).ADMIN_API_KEY
    const alice = await createAlice(env, key)
    assert.equal((await request(alice.url)).body.publicName, 'Alice')

    // A second process on the same data directory refuses to start.
    const second = spawnServer({ ...env, ...(await ports()) })
    assert.notEqual(await second.exited, 0)
    assert.match(second.output(), /in use by process/)

    assert.equal(await stop(first), 0)
    assert.ok(!existsSync(join(dataDir, 'server.lock')))

    const again = spawnServer(env)
    await waitReady(again)
    const res = await request(alice.url)
    assert.equal(res.status, 200)
    assert.equal(res.body.id, alice.url)
    assert.equal(await stop(again), 0)
  })
})

describe('npm start on PostgreSQL', () => {
  const schema = `p_${randomBytes(6).toString('hex')}`
  after(() => dropSchema(schema))

  test('the same with DATABASE_URL; two processes may start and migrate at once', async () => {
    const key = randomBytes(32).toString('base64url')
    const base = {
      DATABASE_URL,
      DATABASE_SCHEMA: schema,
      ADMIN_API_KEY: key,
      DATA_DIR: mkdtempSync(join(tmpdir(), 'op-pg-')),
    }
    const envA = { ...base, ...(await ports()) }
    const envB = { ...base, ...(await ports()) }
    const a = spawnServer(envA)
    const b = spawnServer(envB)
    await Promise.all([waitReady(a), waitReady(b)])
    assert.doesNotMatch(a.output(), /ADMIN_API_KEY is not set/)
    const alice = await createAlice(envA, key)
    // Created through A, served by B from the same database.
    const viaB = await request(`http://127.0.0.1:${envB.OPEN_PAYMENTS_PORT}/alice`)
    assert.equal(viaB.status, 200)
    assert.equal(viaB.body.publicName, 'Alice')
    assert.deepEqual(await Promise.all([stop(a), stop(b)]), [0, 0])

    const again = spawnServer(envA)
    await waitReady(again)
    assert.equal((await request(alice.url)).status, 200)
    assert.equal(await stop(again), 0)
  })
})

describe('the production build', () => {
  const schema = `p_${randomBytes(6).toString('hex')}`
  after(() => dropSchema(schema))

  test('node dist/main.js migrates, serves, and stops cleanly', async () => {
    const key = randomBytes(32).toString('base64url')
    const env = {
      DATABASE_URL,
      DATABASE_SCHEMA: schema,
      ADMIN_API_KEY: key,
      DATA_DIR: mkdtempSync(join(tmpdir(), 'op-dist-')),
      LOG_LEVEL: 'info',
      ...(await ports()),
    }
    const server = spawnServer(env, { build: true })
    await waitReady(server)
    assert.match(server.output(), /applied migrations/)
    const alice = await createAlice(env, key)
    assert.equal((await request(alice.url)).body.publicName, 'Alice')
    assert.equal(await stop(server), 0)
    // With the migrations applied, a restart applies none.
    const again = spawnServer(env, { build: true })
    await waitReady(again)
    assert.doesNotMatch(again.output(), /applied migrations/)
    assert.equal(await stop(again), 0)
  })
})

test('a bad setting stops start-up with one clear line', async () => {
  const p = spawnServer({
    DATA_DIR: mkdtempSync(join(tmpdir(), 'op-bad-')),
    OPEN_PAYMENTS_PORT: 'eighty',
  })
  assert.equal(await p.exited, 1)
  assert.equal(p.output().trim(), 'Invalid configuration: OPEN_PAYMENTS_PORT must be a port number')
})

test('a port in use stops start-up with one line naming the listener and its setting', async () => {
  const schema = `p_${randomBytes(6).toString('hex')}`
  const env = { DATABASE_URL, DATABASE_SCHEMA: schema, ...(await ports()) }
  const holder = createNetServer()
  await new Promise<void>((resolve) => holder.listen(Number(env.ADMIN_PORT), '127.0.0.1', resolve))
  try {
    const p = spawnServer({ ...env, DATA_DIR: mkdtempSync(join(tmpdir(), 'op-port-')) })
    assert.equal(await p.exited, 1)
    assert.match(
      p.output(),
      new RegExp(
        `^the admin listener cannot listen on 127\\.0\\.0\\.1:${env.ADMIN_PORT} \\(ADMIN_PORT\\): listen EADDRINUSE`,
        'm',
      ),
    )
    assert.doesNotMatch(p.output(), /^\s+at /m)
  } finally {
    holder.close()
    await dropSchema(schema)
  }
})

test('production without secrets refuses to start', async () => {
  const p = spawnServer({
    NODE_ENV: 'production',
    DATABASE_URL,
    DATA_DIR: mkdtempSync(join(tmpdir(), 'op-prod-')),
  })
  assert.equal(await p.exited, 1)
  assert.match(
    p.output(),
    /^Invalid configuration: IDP_URL is required when IDENTITY_PROVIDER=redirect$/m,
  )
})
