import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { checkBooks } from '../src/ledger/invariants.ts'
import {
  type ClientIdentity,
  createClientIdentity,
  grantToken,
  outgoingPaymentToken,
  signedRequest,
} from './helpers/clients.ts'
import {
  balanceOf,
  createWalletAddress,
  deposit,
  eventually,
  startTestServer,
  type TestServer,
} from './helpers/server.ts'

/** Races of real HTTP requests against real PostgreSQL. */
let server: TestServer
let app: ClientIdentity
let rs: string
let ipToken: string
let quoteToken: string

const gbp = (value: string) => ({ value, assetCode: 'GBP', assetScale: 2 })

before(async () => {
  server = await startTestServer()
  rs = server.openPaymentsUrl
  app = await createClientIdentity(server, { path: '/app', publicName: 'App' })
  quoteToken = await grantToken(server, app, [{ type: 'quote', actions: ['create'] }])
})
after(() => server.close())

async function setup(name: string, funds: bigint) {
  const sender = await createWalletAddress(server, { path: `/${name}-sender`, assetCode: 'GBP' })
  const receiver = await createWalletAddress(server, {
    path: `/${name}-receiver`,
    assetCode: 'GBP',
  })
  await deposit(server, sender.id, funds)
  ipToken = await grantToken(server, app, [
    { type: 'incoming-payment', actions: ['create', 'read'], identifier: receiver.url },
  ])
  return { sender, receiver }
}

const incomingPayment = (walletAddress: string, incomingAmount?: string) =>
  app.client.incomingPayment.create(
    { url: rs, accessToken: ipToken },
    { walletAddress, ...(incomingAmount && { incomingAmount: gbp(incomingAmount) }) },
  )
const quote = (walletAddress: string, receiver: string, debit: string) =>
  app.client.quote.create(
    { url: rs, accessToken: quoteToken },
    { walletAddress, receiver, method: 'ilp', debitAmount: gbp(debit) },
  )
const paymentsOf = async (walletAddressId: string) =>
  server.database.db
    .selectFrom('outgoing_payments')
    .selectAll()
    .where('wallet_address_id', '=', walletAddressId)
    .execute()

test('20 concurrent outgoing payments under a grant limit that covers 5: exactly 5 are created', async () => {
  const { sender, receiver } = await setup('limit', 100_000n)
  const token = await outgoingPaymentToken(server, app, sender.url, { debitAmount: gbp('5000') })
  const ip = await incomingPayment(receiver.url)
  const quotes = await Promise.all(
    Array.from({ length: 20 }, () => quote(sender.url, ip.id, '1000')),
  )
  const results = await Promise.all(
    quotes.map((q) =>
      signedRequest(`${rs}/outgoing-payments`, {
        body: { walletAddress: sender.url, quoteId: q.id },
        token,
        identity: app,
      }),
    ),
  )
  assert.equal(results.filter((r) => r.status === 201).length, 5)
  const refused = results.filter((r) => r.status !== 201)
  assert.equal(refused.length, 15)
  assert.ok(refused.every((r) => r.status === 403 && r.body.error.description === 'unauthorized'))
  assert.equal((await paymentsOf(sender.id)).length, 5)
  await eventually(async () =>
    (await balanceOf(server, receiver.id)) === 5000n ? true : undefined,
  )
  assert.equal(await balanceOf(server, sender.id), 95_000n)
  assert.ok((await checkBooks(server.database.db)).balanced)
})

test('one quote sent six times at once (settled at create): one payment, the others invalid quote', async () => {
  const { sender, receiver } = await setup('one-quote', 100_000n)
  const token = await outgoingPaymentToken(server, app, sender.url)
  const q = await quote(sender.url, (await incomingPayment(receiver.url)).id, '1000')
  const answers = await Promise.all(
    Array.from({ length: 6 }, () =>
      signedRequest(`${rs}/outgoing-payments`, {
        body: { walletAddress: sender.url, quoteId: q.id },
        token,
        identity: app,
      }),
    ),
  )
  assert.deepEqual(answers.map((a) => a.status).sort(), [201, 400, 400, 400, 400, 400])
  for (const a of answers.filter((x) => x.status === 400)) {
    assert.equal(a.body.error.description, 'invalid quote')
  }
  assert.equal((await paymentsOf(sender.id)).length, 1)
  assert.equal(await balanceOf(server, receiver.id), 1000n)
  assert.equal(await balanceOf(server, sender.id), 99_000n)
  assert.ok((await checkBooks(server.database.db)).balanced)
})

test('20 concurrent payments into one incoming payment: it never receives more than its amount', async () => {
  const { sender, receiver } = await setup('cap', 100_000n)
  const token = await outgoingPaymentToken(server, app, sender.url)
  const ip = await incomingPayment(receiver.url, '5000')
  const quotes = await Promise.all(
    Array.from({ length: 20 }, () => quote(sender.url, ip.id, '1000')),
  )
  const created = await Promise.allSettled(
    quotes.map((q) =>
      app.client.outgoingPayment.create(
        { url: rs, accessToken: token },
        { walletAddress: sender.url, quoteId: q.id },
      ),
    ),
  )
  // Local payments settle right after their create: once five have filled the incoming payment,
  // a create whose quote names it is refused (its receiver is no longer payable).
  const refused = created.filter((c) => c.status === 'rejected')
  for (const r of refused) assert.equal((r.reason as { status: number }).status, 400)
  const final = await eventually(async () => {
    const all = await paymentsOf(sender.id)
    return all.every((p) => p.state !== 'sending') ? all : undefined
  }, 15_000)
  assert.equal(final.length, 20 - refused.length)
  assert.equal(final.filter((p) => p.state === 'completed').length, 5)
  assert.equal(final.filter((p) => p.state === 'failed').length, 15 - refused.length)
  const received = await app.client.incomingPayment.get({ url: ip.id, accessToken: ipToken })
  assert.deepEqual(received.receivedAmount, gbp('5000'))
  assert.equal(received.completed, true)
  // Failed payments released their reservations: the sender paid exactly what arrived.
  assert.equal(await balanceOf(server, sender.id), 95_000n)
  assert.equal(await balanceOf(server, receiver.id), 5000n)
  for (const p of final.filter((p) => p.state === 'failed')) {
    const failed = await app.client.outgoingPayment.get({
      url: `${rs}/outgoing-payments/${p.id}`,
      accessToken: token,
    })
    assert.equal(failed.failed, true)
    assert.deepEqual(failed.sentAmount, gbp('0'))
  }
  assert.ok((await checkBooks(server.database.db)).balanced)
})

test('concurrent creates with one Idempotency-Key make one payment', async () => {
  const { sender, receiver } = await setup('idem', 100_000n)
  const token = await outgoingPaymentToken(server, app, sender.url)
  const ip = await incomingPayment(receiver.url)
  const body = { walletAddress: sender.url, incomingPayment: ip.id, debitAmount: gbp('700') }
  const send = () =>
    signedRequest(`${rs}/outgoing-payments`, {
      body,
      token,
      identity: app,
      tamper: (h) => {
        h['idempotency-key'] = 'pay-rent-2026-11'
      },
    })
  const results = await Promise.all(Array.from({ length: 10 }, send))
  const ok = results.filter((r) => r.status === 201)
  assert.ok(ok.length >= 1)
  assert.ok(results.every((r) => r.status === 201 || r.status === 409))
  assert.equal(new Set(ok.map((r) => r.body.id)).size, 1)
  assert.equal((await paymentsOf(sender.id)).length, 1)
  // Once done, a retry replays the first response.
  const replay = await send()
  assert.equal(replay.status, 201)
  assert.equal(replay.headers.get('idempotent-replayed'), 'true')
  assert.equal(replay.body.id, ok[0]!.body.id)
  // The same key with another body is refused.
  const other = await signedRequest(`${rs}/outgoing-payments`, {
    body: { ...body, debitAmount: gbp('701') },
    token,
    identity: app,
    tamper: (h) => {
      h['idempotency-key'] = 'pay-rent-2026-11'
    },
  })
  assert.equal(other.status, 422)
  await eventually(async () => ((await balanceOf(server, receiver.id)) === 700n ? true : undefined))
  assert.equal(await balanceOf(server, sender.id), 99_300n)
})
