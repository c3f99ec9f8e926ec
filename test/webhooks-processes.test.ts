import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import pg from 'pg'
import { DATABASE_URL, dropSchema } from './helpers/db.ts'
import { killAll, type ServerProcess, spawnServer, stop, waitReady } from './helpers/process.ts'
import { eventually, freePort, type JsonResponse, request } from './helpers/server.ts'
import { type Receiver, startReceiver } from './helpers/webhook-receiver.ts'

/**
 * Webhook delivery from real server processes sharing one PostgreSQL schema: two at once deliver
 * each event exactly once; one killed with SIGKILL in the middle of sending loses nothing (another
 * process sends it again, with the same webhook-id, once the lease runs out).
 */
const schema = `wh_${randomBytes(6).toString('hex')}`
const key = randomBytes(32).toString('base64url')
const db = new pg.Pool({
  connectionString: DATABASE_URL,
  max: 2,
  options: `-c search_path=${schema}`,
})
let receiver: Receiver
let envA: Record<string, string>
let envB: Record<string, string>
let a: ServerProcess
let b: ServerProcess

async function env(shared: Record<string, string>): Promise<Record<string, string>> {
  const ports = {
    OPEN_PAYMENTS_PORT: String(await freePort()),
    AUTH_PORT: String(await freePort()),
    ADMIN_PORT: String(await freePort()),
    ILP_PORT: String(await freePort()),
  }
  return { ...shared, ...ports, DATA_DIR: mkdtempSync(join(tmpdir(), 'op-wh-')) }
}

const admin = (e: Record<string, string>, method: string, path: string, body?: unknown) =>
  request(`http://127.0.0.1:${e.ADMIN_PORT}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${key}`,
      ...(body !== undefined && { 'content-type': 'application/json' }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  })

const ok = (res: JsonResponse, status = 201) => {
  assert.equal(res.status, status, JSON.stringify(res.body))
  return res.body
}

/** A wallet address of `e` whose withdrawal takes it below the asset's threshold: one event. */
async function balanceLow(e: Record<string, string>, path: string): Promise<string> {
  const wa = ok(
    await admin(e, 'POST', '/wallet-addresses', { path, assetCode: 'USD', assetScale: 2 }),
  )
  ok(await admin(e, 'POST', `/wallet-addresses/${wa.id}/deposits`, { id: 'd', amount: '2000' }))
  ok(await admin(e, 'POST', `/wallet-addresses/${wa.id}/withdrawals`, { id: 'w', amount: '1500' }))
  return wa.id as string
}

before(async () => {
  receiver = await startReceiver()
  const publicPorts = { op: await freePort(), auth: await freePort() }
  const shared = {
    DATABASE_URL,
    DATABASE_SCHEMA: schema,
    DATABASE_POOL_SIZE: '4',
    ADMIN_API_KEY: key,
    AUTH_SECRET: randomBytes(32).toString('base64url'),
    STREAM_SECRET: randomBytes(32).toString('base64'),
    SERVER_PRIVATE_KEY: randomBytes(32).toString('base64'),
    DEV_SIGN_IN_PASSWORD: 'correct horse battery staple',
    // One public origin, as behind a load balancer: payloads are the same whoever renders them.
    OPEN_PAYMENTS_URL: `http://127.0.0.1:${publicPorts.op}`,
    AUTH_SERVER_URL: `http://127.0.0.1:${publicPorts.auth}`,
    WEBHOOK_POLL_MS: '50',
    WEBHOOK_CONCURRENCY: '4',
    WEBHOOK_TIMEOUT_MS: '2000',
    WEBHOOK_LEASE_SECONDS: '3',
    WEBHOOK_RETRY_BASE_MS: '200',
  }
  envA = await env(shared)
  envB = await env(shared)
  a = spawnServer(envA)
  b = spawnServer(envB)
  await Promise.all([waitReady(a), waitReady(b)])
  ok(await admin(envA, 'POST', '/assets', { code: 'USD', scale: 2 }))
  const usd = ok(await admin(envA, 'GET', '/assets'), 200).items[0]
  ok(await admin(envB, 'PUT', `/assets/${usd.id}/balance-threshold`, { threshold: '1000' }), 200)
  const endpoint = ok(
    await admin(envA, 'POST', '/webhook-endpoints', {
      url: receiver.url,
      eventTypes: ['wallet_address.balance_low'],
    }),
  )
  receiver.secrets = [endpoint.secret]
})
after(async () => {
  killAll()
  await receiver?.close()
  await db.end()
  await dropSchema(schema)
})

test('two processes on one database deliver each event exactly once', async () => {
  // Slow answers keep sending slots busy. One process sends at most 2 at once to one endpoint
  // (half of WEBHOOK_CONCURRENCY), so more than 2 at once means both were sending.
  receiver.delayMs = 150
  const ids = await Promise.all(
    Array.from({ length: 30 }, (_, i) => balanceLow(i % 2 ? envA : envB, `/two-${i}`)),
  )
  await eventually(async () => (receiver.accepted.length >= 30 ? true : undefined), 20_000)
  await new Promise((r) => setTimeout(r, 500))
  assert.equal(receiver.requests.length, 30)
  assert.ok(receiver.requests.every((r) => r.payload !== undefined && r.attempt === 1))
  assert.deepEqual(
    receiver.accepted.map((r) => r.payload.data.walletAddressId).sort(),
    [...ids].sort(),
  )
  assert.ok(receiver.maxInFlight > 2, `at most ${receiver.maxInFlight} requests at once`)
  const { rows } = await db.query(
    `SELECT status, attempts, count(*)::int AS n FROM webhook_deliveries GROUP BY status, attempts`,
  )
  assert.deepEqual(rows, [{ status: 'delivered', attempts: 1, n: 30 }])
})

test('a process killed with SIGKILL mid-delivery loses no event: another sends it, same webhook-id', async () => {
  receiver.delayMs = 0
  assert.equal(await stop(b), 0)
  const before = receiver.requests.length
  receiver.answer = () => 'hang'
  const ids = [
    await balanceLow(envA, '/kill-1'),
    await balanceLow(envA, '/kill-2'),
    await balanceLow(envA, '/kill-3'),
  ]
  // A is in the middle of sending (two of its slots hang at the receiver).
  await eventually(async () => (receiver.requests.length - before >= 2 ? true : undefined), 10_000)
  const hung = receiver.requests.slice(before).map((r) => r.webhookId)
  a.child.kill('SIGKILL')
  await a.exited
  receiver.answer = () => 200

  b = spawnServer(envB)
  await waitReady(b)
  const events = await eventually(async () => {
    const got = receiver.accepted.filter((r) => ids.includes(r.payload.data.walletAddressId))
    return got.length >= 3 ? got : undefined
  }, 20_000)
  assert.deepEqual(events.map((r) => r.payload.data.walletAddressId).sort(), [...ids].sort())
  for (const id of hung) {
    const again = events.find((r) => r.webhookId === id)
    assert.ok(again, `${id} was sent again`)
    assert.equal(again.attempt, 2)
  }
  const rows = await eventually(async () => {
    const { rows } = await db.query(
      `SELECT d.status, d.attempts, (SELECT count(*)::int FROM webhook_attempts t WHERE t.delivery_id = d.id) AS logged
         FROM webhook_deliveries d WHERE d.event_id = ANY ($1::uuid[])`,
      [hung],
    )
    return rows.every((r) => r.status === 'delivered') ? rows : undefined
  })
  // The killed attempt claimed the delivery but never recorded its end.
  assert.deepEqual(
    rows.map((r) => [r.status, r.attempts, r.logged]),
    hung.map(() => ['delivered', 2, 1]),
  )
  assert.equal(await stop(b), 0)
})

test('SIGTERM while a receiver hangs: the process stops at once, the attempt is recorded and retried later', async () => {
  // A timeout far longer than the shutdown allows (SHUTDOWN_TIMEOUT_MS, 10 s by default).
  const c = spawnServer({
    ...envB,
    WEBHOOK_TIMEOUT_MS: '30000',
    WEBHOOK_LEASE_SECONDS: '60',
  })
  await waitReady(c)
  const before = receiver.requests.length
  receiver.answer = () => 'hang'
  const id = await balanceLow(envB, '/term-1')
  await eventually(async () => (receiver.requests.length > before ? true : undefined), 10_000)
  const hung = receiver.requests.at(-1)!
  assert.equal(hung.payload.data.walletAddressId, id)
  const started = Date.now()
  c.child.kill('SIGTERM')
  assert.equal(await c.exited, 0)
  assert.ok(Date.now() - started < 5000, `stopped in ${Date.now() - started} ms`)
  const { rows } = await db.query(
    `SELECT d.status, t.error FROM webhook_deliveries d JOIN webhook_attempts t ON t.delivery_id = d.id
      WHERE d.event_id = $1`,
    [hung.webhookId],
  )
  assert.deepEqual(rows, [{ status: 'pending', error: 'interrupted by shutdown' }])
  receiver.answer = () => 200
})
