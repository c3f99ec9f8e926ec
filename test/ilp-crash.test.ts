import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { deserializeIlpPrepare, serializeIlpReject } from 'ilp-packet'
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
let b: TestServer
const schemas: string[] = []
const pools: pg.Pool[] = []
let proxy: Server | undefined

before(async () => {
  b = await startTestServer({ ILP_ADDRESS: 'test.ase-b' })
})
after(async () => {
  killAll()
  await Promise.all(pools.map((p) => p.end()))
  proxy?.close()
  await b?.close()
  for (const schema of schemas) await dropSchema(schema)
})

/**
 * B's ILP endpoint as another implementation shows it: replies come back late (so that, at any
 * moment, packets B has credited are still unanswered), and a packet repeated after its expiry gets
 * R00 as every connector but ours answers, not the Fulfill of the first copy.
 */
async function otherImplementationProxy(): Promise<{ url: string; repeats: () => number }> {
  let repeats = 0
  proxy = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', async () => {
      const body = Buffer.concat(chunks)
      const reply = (status: number, bytes: Buffer) => {
        res.writeHead(status, { 'content-type': 'application/octet-stream' })
        res.end(bytes)
      }
      if (deserializeIlpPrepare(body).expiresAt.getTime() <= Date.now()) {
        repeats++
        return reply(
          200,
          serializeIlpReject({
            code: 'R00',
            triggeredBy: 'test.other',
            message: 'expired',
            data: Buffer.alloc(0),
          }),
        )
      }
      const upstream = await fetch(b.ilpUrl, {
        method: 'POST',
        headers: {
          authorization: req.headers.authorization ?? '',
          'content-type': 'application/octet-stream',
        },
        body,
      })
      const bytes = Buffer.from(await upstream.arrayBuffer())
      setTimeout(() => reply(upstream.status, bytes), 150)
    })
  })
  const port = await freePort()
  await new Promise<void>((resolve) => proxy!.listen(port, '127.0.0.1', resolve))
  return { url: `http://127.0.0.1:${port}/ilp`, repeats: () => repeats }
}

const books = async (q: (sql: string) => Promise<any[]>) => {
  const rows = await q(
    'SELECT asset_id, sum(debits_posted) = sum(credits_posted) AND sum(debits_pending) = sum(credits_pending) AS ok FROM ledger_account_totals GROUP BY asset_id',
  )
  return rows.every((r) => r.ok)
}

/**
 * Starts A as a real process on its own schema, peers it with B (at `endpoint`), pays B in packets
 * of 10, kills A with SIGKILL mid-payment, starts it again and checks how the payment ended.
 */
async function crashMidPayment(name: string, endpoint: (b: TestServer) => string) {
  const schema = `crash_${randomBytes(6).toString('hex')}`
  schemas.push(schema)
  const db = new pg.Pool({
    connectionString: DATABASE_URL,
    options: `-c search_path=${schema}`,
    max: 2,
  })
  pools.push(db)
  const ports = {
    op: await freePort(),
    auth: await freePort(),
    admin: await freePort(),
    ilp: await freePort(),
  }
  const env: Record<string, string> = {
    DATABASE_URL,
    DATABASE_SCHEMA: schema,
    DATA_DIR: mkdtempSync(join(tmpdir(), 'op-crash-')),
    ILP_ADDRESS: `test.${name}`,
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
  const aAdmin = (method: string, path: string, body?: unknown) =>
    request(`http://127.0.0.1:${ports.admin}${path}`, {
      method,
      headers: { authorization: `Bearer ${env.ADMIN_API_KEY}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
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
  const bob = await createWalletAddress(b, { path: `/bob-${name}` })
  const tokens = { aToB: `${name}-to-b-secret-token`, bToA: `b-to-${name}-secret-token` }
  const peer = (
    from: { admin: typeof aAdmin },
    peerName: string,
    address: string,
    url: string,
    out: string,
    inc: string,
    maxPacketAmount?: string,
  ) =>
    from.admin('POST', '/peers', {
      name: peerName,
      assetCode: 'USD',
      assetScale: 2,
      ilpAddress: address,
      httpEndpoint: url,
      outgoingToken: out,
      incomingTokens: [inc],
      creditLimit: '100000000',
      ...(maxPacketAmount && { maxPacketAmount }),
    })
  const toB = await peer(aServer, 'bank-b', 'test.ase-b', endpoint(b), tokens.aToB, tokens.bToA)
  assert.equal(toB.status, 201)
  const aIlp = `http://127.0.0.1:${env.ILP_PORT}/ilp`
  const toA = await peer(b, name, `test.${name}`, aIlp, tokens.bToA, tokens.aToB, '10')
  assert.equal(toA.status, 201)

  const appB = await createClientIdentity(b, { path: `/app-${name}`, publicName: 'App' })
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
}

test('kill -9 the sender mid-payment: after restart the payment ends and both sides agree', async () => {
  await crashMidPayment('ase-a', (b) => b.ilpUrl)
})

test('the same towards a receiver that answers repeats with R00: its received amount decides', async () => {
  const other = await otherImplementationProxy()
  await crashMidPayment('ase-c', () => other.url)
  // The in-flight packets were repeated and refused as another implementation would.
  assert.ok(other.repeats() > 0)
})
