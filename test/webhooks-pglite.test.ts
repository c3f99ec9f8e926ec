import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { pino } from 'pino'
import { loadConfig } from '../src/config.ts'
import { openDatabase } from '../src/db/database.ts'
import { migrate } from '../src/db/migrate.ts'
import { boundPort, createDeps, createServer } from '../src/server.ts'
import { eventually, request } from './helpers/server.ts'
import { startReceiver } from './helpers/webhook-receiver.ts'

test('PGlite: the outbox, the claim and the delivery worker work on the embedded database', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'op-pglite-wh-'))
  const key = randomBytes(32).toString('base64url')
  const config = loadConfig({
    DATA_DIR: dataDir,
    ADMIN_API_KEY: key,
    ROLES: 'admin,workers',
    ADMIN_PORT: '0',
    WEBHOOK_POLL_MS: '50',
    WEBHOOK_RETRY_BASE_MS: '100',
  })
  const database = await openDatabase({
    databaseUrl: undefined,
    schema: 'public',
    poolSize: 1,
    dataDir,
  })
  const receiver = await startReceiver((r) => (r.attempt === 1 ? 500 : 200))
  await migrate(database)
  const server = await createServer(
    createDeps({ config, db: database.db, logger: pino({ level: 'silent' }) }),
  )
  try {
    await server.start('127.0.0.1')
    const url = `http://127.0.0.1:${boundPort(server.listeners[0]!)}`
    const admin = async (method: string, path: string, body?: unknown) =>
      request(`${url}${path}`, {
        method,
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      })
    assert.equal((await admin('POST', '/assets', { code: 'USD', scale: 2 })).status, 201)
    const wa = (
      await admin('POST', '/wallet-addresses', { path: '/alice', assetCode: 'USD', assetScale: 2 })
    ).body
    const endpoint = await admin('POST', '/webhook-endpoints', {
      url: receiver.url,
      eventTypes: ['wallet_address.balance_low'],
    })
    assert.equal(endpoint.status, 201)
    receiver.secrets = [endpoint.body.secret]
    const threshold = await admin('PUT', `/wallet-addresses/${wa.id}/balance-threshold`, {
      threshold: '100',
    })
    assert.equal(threshold.status, 200)
    await admin('POST', `/wallet-addresses/${wa.id}/deposits`, { id: 'd', amount: '150' })
    await admin('POST', `/wallet-addresses/${wa.id}/withdrawals`, { id: 'w', amount: '60' })
    const got = await eventually(async () => receiver.accepted[0])
    assert.equal(got.attempt, 2)
    assert.equal(got.payload.type, 'wallet_address.balance_low')
    assert.deepEqual(got.payload.data.available, { value: '90', assetCode: 'USD', assetScale: 2 })
    const list = await eventually(async () => {
      const res = await admin('GET', '/webhook-deliveries')
      return res.body.items[0]?.status === 'delivered' ? res.body.items : undefined
    })
    assert.equal(list[0].attempts.length, 2)
  } finally {
    await server.stop()
    await database.close()
    await receiver.close()
  }
})
