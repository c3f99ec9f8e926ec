import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import pg from 'pg'
import { checkBooks } from '../src/ledger/invariants.ts'
import { createClientIdentity, grantToken, outgoingPaymentToken } from './helpers/clients.ts'
import { DATABASE_URL, dropSchema } from './helpers/db.ts'
import { killAll, spawnServer, waitReady } from './helpers/process.ts'
import {
  createWalletAddress,
  deposit,
  eventually,
  freePort,
  request,
  startTestServer,
  type TestServer,
} from './helpers/server.ts'

/**
 * Crash safety of sending: the sending ASE is a real process, killed with SIGKILL in the middle of
 * a payment split into many packets, then started again. The payment must end (completed or
 * failed), both ledgers must balance, and what the sender was debited must equal what the
 * receiver was credited.
 */
const schema = `crash_${randomBytes(6).toString('hex')}`
let b: TestServer
let env: Record<string, string>
let aAdmin: (method: string, path: string, body?: unknown) => Promise<{ status: number; body: any }>
const db = new pg.Pool({ connectionString: DATABASE_URL, options: `-c search_path=${schema}` })

before(async () => {
  b = await startTestServer({ ILP_ADDRESS: 'test.ase-b' })
  const ports = {
    op: await freePort(),
    auth: await freePort(),
    admin: await freePort(),
    ilp: await freePort(),
  }
  env = {
    DATABASE_URL,
    DATABASE_SCHEMA: schema,
    DATA_DIR: mkdtempSync(join(tmpdir(), 'op-crash-')),
    ILP_ADDRESS: 'test.ase-a',
    OPEN_PAYMENTS_PORT: String(ports.op),
    AUTH_PORT: String(ports.auth),
    ADMIN_PORT: String(ports.admin),
    ILP_PORT: String(ports.ilp),
    OPEN_PAYMENTS_URL: `http://127.0.0.1:${ports.op}`,
    AUTH_SERVER_URL: `http://127.0.0.1:${ports.auth}`,
    ADMIN_API_KEY: randomBytes(32).toString('base64url'),
    AUTH_SECRET: randomBytes(32).toString('base64url'),
    STREAM_SECRET: randomBytes(32).toString('base64'),
    SERVER_PRIVATE_KEY: randomBytes(32).toString('base64'),
    DEV_SIGN_IN_PASSWORD: 'correct horse battery staple',
    PAYMENT_SEND_LEASE_SECONDS: '2',
    // In-flight packets are checked only once expired: keep that wait short here.
    ILP_PACKET_EXPIRY_SECONDS: '3',
  }
  aAdmin = (method, path, body) =>
    request(`http://127.0.0.1:${ports.admin}${path}`, {
      method,
      headers: { authorization: `Bearer ${env.ADMIN_API_KEY}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
})
after(async () => {
  killAll()
  await db.end()
  await b?.close()
  await dropSchema(schema)
})

const books = async (q: (sql: string) => Promise<any[]>) => {
  const rows = await q(
    'SELECT asset_id, sum(debits_posted) = sum(credits_posted) AND sum(debits_pending) = sum(credits_pending) AS ok FROM ledger_accounts GROUP BY asset_id',
  )
  return rows.every((r) => r.ok)
}

test('kill -9 the sender mid-payment: after restart the payment ends and both sides agree', async () => {
  let a = spawnServer(env)
  await waitReady(a)
  const aServer = {
    admin: aAdmin,
    authUrl: env.AUTH_SERVER_URL!,
    openPaymentsUrl: env.OPEN_PAYMENTS_URL!,
  } as unknown as TestServer
  assert.equal((await aAdmin('POST', '/assets', { code: 'USD', scale: 2 })).status, 201)
  const alice = await createWalletAddress(aServer, { path: '/alice' })
  await deposit(aServer, alice.id, 1_000_000n)
  const bob = await createWalletAddress(b, { path: '/bob' })
  const peer = (
    from: { admin: typeof aAdmin },
    name: string,
    address: string,
    endpoint: string,
    out: string,
    inc: string,
  ) =>
    from.admin('POST', '/peers', {
      name,
      assetCode: 'USD',
      assetScale: 2,
      ilpAddress: address,
      httpEndpoint: endpoint,
      outgoingToken: out,
      incomingTokens: [inc],
      creditLimit: '100000000',
      ...(name === 'bank-a' && { maxPacketAmount: '10' }),
    })
  assert.equal(
    (
      await peer(
        aServer,
        'bank-b',
        'test.ase-b',
        b.ilpUrl,
        'a-to-b-secret-token',
        'b-to-a-secret-token',
      )
    ).status,
    201,
  )
  assert.equal(
    (
      await peer(
        b,
        'bank-a',
        'test.ase-a',
        `http://127.0.0.1:${env.ILP_PORT}/ilp`,
        'b-to-a-secret-token',
        'a-to-b-secret-token',
      )
    ).status,
    201,
  )

  const appB = await createClientIdentity(b, { path: '/app', publicName: 'App' })
  const ipToken = await grantToken(b, appB, [
    { type: 'incoming-payment', actions: ['create', 'read'], identifier: bob.url },
  ])
  const ip = await appB.client.incomingPayment.create(
    { url: b.openPaymentsUrl, accessToken: ipToken },
    { walletAddress: bob.url },
  )

  const appA = await createClientIdentity(aServer, { path: '/app', publicName: 'App' })
  const quoteToken = await grantToken(aServer, appA, [{ type: 'quote', actions: ['create'] }])
  const quote = await appA.client.quote.create(
    { url: env.OPEN_PAYMENTS_URL!, accessToken: quoteToken },
    {
      walletAddress: alice.url,
      receiver: ip.id,
      method: 'ilp',
      debitAmount: { value: '20000', assetCode: 'USD', assetScale: 2 },
    },
  )
  const opToken = await outgoingPaymentToken(aServer, appA, alice.url)
  const created = await appA.client.outgoingPayment.create(
    { url: env.OPEN_PAYMENTS_URL!, accessToken: opToken },
    { walletAddress: alice.url, quoteId: quote.id },
  )
  const id = created.id.split('/').at(-1)!

  // Mid-payment: some packets through, far from all (2000 packets of 10 would be needed).
  await eventually(async () => {
    const { rows } = await db.query('SELECT sent_amount FROM outgoing_payments WHERE id = $1', [id])
    return BigInt(rows[0].sent_amount) >= 500n ? true : undefined
  }, 15_000)
  a.child.kill('SIGKILL')
  await a.exited

  a = spawnServer(env)
  await waitReady(a)
  const final = await eventually(async () => {
    const { rows } = await db.query(
      'SELECT state, sent_amount FROM outgoing_payments WHERE id = $1',
      [id],
    )
    return rows[0].state === 'sending' ? undefined : rows[0]
  }, 20_000)
  assert.ok(['completed', 'failed'].includes(final.state))
  const sent = BigInt(final.sent_amount)

  const received = await appB.client.incomingPayment.get({ url: ip.id, accessToken: ipToken })
  const { rows: wallet } = await db.query(
    "SELECT l.credits_posted - l.debits_posted AS balance, l.debits_pending FROM ledger_accounts l JOIN wallet_addresses w ON w.ledger_account_id = l.id WHERE w.path = '/alice'",
  )
  assert.equal(BigInt(wallet[0].debits_pending), 0n) // nothing left reserved
  assert.equal(1_000_000n - BigInt(wallet[0].balance), sent) // the sender paid what it sent
  assert.equal(BigInt(received.receivedAmount.value), sent) // …which is what the receiver got
  assert.ok(await books(async (sql) => (await db.query(sql)).rows))
  assert.ok((await checkBooks(b.database.db)).balanced)
  a.child.kill('SIGTERM')
  await a.exited
})
