import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { DATABASE_URL, dropSchema } from './helpers/db.ts'
import { killAll, spawnServer, stop, waitReady } from './helpers/process.ts'
import { eventually, freePort, request } from './helpers/server.ts'
import { startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.ts'

/**
 * Issue 8, point 5: the database goes away under a running server (a TCP proxy between them is
 * cut). Every listener answers 503 with Retry-After in its own error format, the log says so once
 * when the outage starts and once when it ends, without stack traces, and the server recovers by
 * itself with the books balanced.
 */
const schema = `o_${randomBytes(6).toString('hex')}`
let proxy: TcpProxy | undefined
after(async () => {
  killAll()
  await proxy?.close()
  await dropSchema(schema)
})

test('a database outage: 503 with Retry-After everywhere, one warning each way, recovery', async () => {
  const target = new URL(DATABASE_URL)
  proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) })
  const viaProxy = new URL(DATABASE_URL)
  viaProxy.host = `127.0.0.1:${proxy.port}`
  const key = randomBytes(32).toString('base64url')
  const peerToken = randomBytes(24).toString('base64url')
  const env = {
    DATABASE_URL: viaProxy.href,
    DATABASE_SCHEMA: schema,
    ADMIN_API_KEY: key,
    DATA_DIR: mkdtempSync(join(tmpdir(), 'op-outage-')),
    // Every request is logged: the test reads the whole log for stack traces.
    LOG_LEVEL: 'info',
    OPEN_PAYMENTS_PORT: String(await freePort()),
    AUTH_PORT: String(await freePort()),
    ADMIN_PORT: String(await freePort()),
    ILP_PORT: String(await freePort()),
    WEBHOOK_POLL_MS: '200',
  }
  const server = spawnServer(env)
  await waitReady(server)
  const url = (port: string, path: string) => `http://127.0.0.1:${port}${path}`
  const admin = (method: string, path: string, body?: unknown) =>
    request(url(env.ADMIN_PORT, path), {
      method,
      headers: {
        authorization: `Bearer ${key}`,
        ...(body !== undefined && { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    })

  assert.equal((await admin('POST', '/assets', { code: 'USD', scale: 2 })).status, 201)
  const alice = await admin('POST', '/wallet-addresses', {
    path: '/alice',
    assetCode: 'USD',
    assetScale: 2,
  })
  assert.equal(alice.status, 201)
  const deposit = (id: string) =>
    admin('POST', `/wallet-addresses/${alice.body.id}/deposits`, { id, amount: '1000' })
  assert.equal((await deposit('before')).status, 201)
  const peer = await admin('POST', '/peers', {
    name: 'peer',
    assetCode: 'USD',
    assetScale: 2,
    ilpAddress: 'test.peer',
    httpEndpoint: 'http://127.0.0.1:9/ilp',
    outgoingToken: randomBytes(24).toString('base64url'),
    incomingTokens: [peerToken],
  })
  assert.equal(peer.status, 201)
  const signIn = await fetch(url(env.ADMIN_PORT, '/console/sign-in'), {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ key }).toString(),
  })
  const cookie = signIn.headers.get('set-cookie')!.split(';')[0]!

  /** One request per listener (and the console), each needing the database. */
  const calls: [string, () => Promise<Response>, string | undefined][] = [
    ['wallet address', () => fetch(url(env.OPEN_PAYMENTS_PORT, '/alice')), '503'],
    [
      'interaction page',
      () => fetch(url(env.AUTH_PORT, `/interact/${randomUUID()}/nonce`)),
      'service_unavailable',
    ],
    [
      'grant continuation',
      () =>
        fetch(url(env.AUTH_PORT, `/continue/${randomUUID()}`), {
          method: 'POST',
          headers: { authorization: 'GNAP x', 'content-type': 'application/json' },
          body: '{}',
        }),
      'service_unavailable',
    ],
    [
      'admin API',
      () => fetch(url(env.ADMIN_PORT, '/assets'), { headers: { authorization: `Bearer ${key}` } }),
      'service_unavailable',
    ],
    [
      'ILP',
      () =>
        fetch(url(env.ILP_PORT, '/ilp'), {
          method: 'POST',
          headers: {
            authorization: `Bearer ${peerToken}`,
            'content-type': 'application/octet-stream',
          },
          body: Buffer.from([12, 1, 0]),
        }),
      'service_unavailable',
    ],
    ['console', () => fetch(url(env.ADMIN_PORT, '/console'), { headers: { cookie } }), undefined],
  ]

  await proxy.cut()
  const cutAt = Date.now()
  for (let round = 0; round < 5; round++) {
    for (const [name, call, code] of calls) {
      // fetch may reuse a keep-alive connection the server is closing at that moment: once more.
      const res = await call().catch(call)
      assert.equal(res.status, 503, `${name} during the outage`)
      assert.equal(res.headers.get('retry-after'), '5', name)
      const text = await res.text()
      if (code === undefined) {
        assert.match(res.headers.get('content-type') ?? '', /text\/html/, name)
      } else {
        const body = JSON.parse(text)
        assert.equal(body.error.code, code, name)
        assert.equal(typeof body.error.description, 'string', name)
      }
    }
  }
  assert.ok(Date.now() - cutAt < 30_000, 'requests fail fast during the outage')
  // The workers keep polling meanwhile; they must not fill the log either.
  await new Promise((r) => setTimeout(r, 2_000))

  await proxy.restore()
  await eventually(async () => {
    const res = await request(url(env.OPEN_PAYMENTS_PORT, '/alice'))
    return res.status === 200 ? true : undefined
  }, 20_000)
  for (const [name, call] of calls) {
    const res = await call()
    await res.arrayBuffer()
    assert.notEqual(res.status, 503, `${name} after recovery`)
    assert.ok(res.status < 500, `${name} after recovery: ${res.status}`)
  }
  assert.equal((await deposit('after')).status, 201)
  const balance = await admin('GET', `/wallet-addresses/${alice.body.id}/balance`)
  assert.equal(balance.body.balance, '2000')
  const books = await admin('GET', '/ledger/check')
  assert.equal(books.body.balanced, true, JSON.stringify(books.body))
  // The "reachable again" line comes from the probe, at most a second after the database is back.
  await eventually(
    async () => (server.output().includes('database reachable again') ? true : undefined),
    5_000,
  )
  assert.equal(await stop(server), 0)

  const log = server.output()
  const lines = log.split('\n').filter(Boolean)
  const count = (msg: string) => lines.filter((l) => l.includes(`"msg":"${msg}`)).length
  assert.equal(count('database unreachable'), 1, 'one warning when the outage starts')
  assert.equal(count('database reachable again'), 1, 'one warning when it ends')
  assert.doesNotMatch(log, /"stack"|\n\s+at /, 'no stack trace in the log')
  assert.doesNotMatch(log, /unhandled error|"level":50/, 'no error logged')
  const warning = JSON.parse(lines.find((l) => l.includes('"msg":"database unreachable'))!)
  assert.equal(warning.level, 40)
})
