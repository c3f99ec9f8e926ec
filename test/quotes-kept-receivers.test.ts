import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { sql } from 'kysely'
import { incomingFacts } from '../src/incoming-payments/facts.ts'
import { getIncomingPayment } from '../src/incoming-payments/service.ts'
import { usd } from './helpers/amounts.ts'
import {
  type ClientIdentity,
  createClientIdentity,
  grantToken,
  outgoingPaymentToken,
  signedRequest,
} from './helpers/clients.ts'
import { createWalletAddress, deposit, startTestServer, type TestServer } from './helpers/server.ts'

/**
 * A quote to an incoming payment this process created or read is priced from the payment's kept
 * facts (`incoming-payments/facts.ts`) and written by one statement that checks the payment's row
 * and the token. Nothing kept is trusted: every answer below is the one a read would give.
 */
let server: TestServer
let app: ClientIdentity
let alice: { id: string; url: string }
let bob: { id: string; url: string }
let ipToken: string
let quoteToken: string
let rs: string

before(async () => {
  server = await startTestServer()
  rs = server.openPaymentsUrl
  app = await createClientIdentity(server, { path: '/app' })
  alice = await createWalletAddress(server, { path: '/alice' })
  bob = await createWalletAddress(server, { path: '/bob' })
  await deposit(server, alice.id, 100_000n)
  ipToken = await grantToken(server, app, [
    { type: 'incoming-payment', actions: ['create', 'read', 'complete'], identifier: bob.url },
  ])
  quoteToken = await grantToken(server, app, [{ type: 'quote', actions: ['create', 'read'] }])
})
after(() => server?.close())

const createIp = async (incomingAmount?: string) => {
  const ip = await app.client.incomingPayment.create(
    { url: rs, accessToken: ipToken },
    { walletAddress: bob.url, ...(incomingAmount && { incomingAmount: usd(incomingAmount) }) },
  )
  return { url: ip.id, id: ip.id.split('/').at(-1)! }
}
const quote = (receiver: string, amount: Record<string, unknown>, token = quoteToken) =>
  signedRequest(`${rs}/quotes`, {
    body: { walletAddress: alice.url, receiver, method: 'ilp', ...amount },
    token,
    identity: app,
  })
const quoteCount = async () =>
  (await server.database.db.selectFrom('quotes').select('id').execute()).length

test('a revoked token is refused on the very next quote, and nothing is written', async () => {
  const token = await grantToken(server, app, [{ type: 'quote', actions: ['create'] }])
  const ip = await createIp()
  assert.ok(incomingFacts.get(ip.id))
  // The token's grant is known to this process after its first use.
  assert.equal((await quote(ip.url, { debitAmount: usd('100') }, token)).status, 201)
  assert.equal((await quote(ip.url, { debitAmount: usd('100') }, token)).status, 201)
  const { body } = await server.admin('POST', '/introspect', { access_token: token })
  await server.admin('POST', `/grants/${body.grant}/revoke`)
  const before = await quoteCount()
  // A request the route refuses before its write (a debit amount in another asset) is answered
  // as the token's state requires, and so is one it would write.
  const eur = await quote(ip.url, { debitAmount: { ...usd('100'), assetCode: 'EUR' } }, token)
  const refused = await quote(ip.url, { debitAmount: usd('100') }, token)
  for (const res of [eur, refused]) {
    assert.equal(res.status, 403)
    assert.equal(res.body.error.description, 'Inactive Token')
  }
  assert.equal(await quoteCount(), before)
})

test('a revoked token is refused by the quote’s write itself, on the very next request', async () => {
  const token = await grantToken(server, app, [{ type: 'quote', actions: ['create'] }])
  const ip = await createIp()
  assert.equal((await quote(ip.url, { debitAmount: usd('100') }, token)).status, 201)
  const { body } = await server.admin('POST', '/introspect', { access_token: token })
  await server.admin('POST', `/grants/${body.grant}/revoke`)
  const refused = await quote(ip.url, { debitAmount: usd('100') }, token)
  assert.equal(refused.status, 403)
  assert.equal(refused.body.error.description, 'Inactive Token')
})

test('a receiver paid in part, or completed, since its facts were kept: the quote sees it as it is', async () => {
  const ip = await createIp('500')
  assert.ok(incomingFacts.get(ip.id))
  // Alice pays 4.00 of its 5.00.
  const opToken = await outgoingPaymentToken(server, app, alice.url)
  const paid = await signedRequest(`${rs}/outgoing-payments`, {
    body: { walletAddress: alice.url, incomingPayment: ip.url, debitAmount: usd('400') },
    token: opToken,
    identity: app,
  })
  assert.equal(paid.status, 201)
  assert.equal((await getIncomingPayment(server.database.db, ip.id))?.receivedAmount, 400n)
  // 1.00 remains: more is refused, as a read would refuse it, and exactly 1.00 is quoted.
  for (const amount of [{ debitAmount: usd('200') }, { receiveAmount: usd('101') }]) {
    const res = await quote(ip.url, amount)
    assert.equal(res.status, 400, JSON.stringify(amount))
    assert.equal(res.body.error.description, 'invalid amount')
  }
  const exact = await quote(ip.url, { receiveAmount: usd('100') })
  assert.equal(exact.status, 201)
  assert.deepEqual(exact.body.receiveAmount, usd('100'))
  // Completed by its owner: the receiver can no longer be quoted.
  const done = await signedRequest(`${ip.url}/complete`, { token: ipToken, identity: app })
  assert.equal(done.status, 200)
  const res = await quote(ip.url, { debitAmount: usd('50') })
  assert.equal(res.status, 400)
  assert.equal(res.body.error.description, 'invalid receiver')
  // The read that found it closed forgot its facts.
  assert.equal(incomingFacts.get(ip.id), undefined)
})

test('a receiver whose expiry has microseconds is still quoted in one statement', async () => {
  const ip = await createIp()
  await server.database.db
    .updateTable('incoming_payments')
    .set((eb) => ({ expires_at: eb('expires_at', '+', sql<Date>`interval '1 microsecond'`) }))
    .where('id', '=', ip.id)
    .execute()
  await quote(ip.url, { debitAmount: usd('100') })
  // The workers run in this process too: their statements can only add to a request's count.
  const counts: number[] = []
  for (let i = 0; i < 5; i++) {
    const before = server.database.poolStats()
    assert.equal((await quote(ip.url, { debitAmount: usd('100') })).status, 201)
    counts.push(server.database.poolStats().statements! - before.statements!)
  }
  assert.equal(Math.min(...counts), 1)
})

test('kept facts that are wrong cost a read, never a wrong quote', async () => {
  const ip = await createIp('500')
  const real = (await getIncomingPayment(server.database.db, ip.id))!
  // As if the facts had been kept wrong: no amount expected, and a later expiry.
  incomingFacts.remember({
    ...real,
    incomingAmount: null,
    expiresAt: new Date(real.expiresAt.getTime() + 3_600_000),
  })
  const before = await quoteCount()
  const tooMuch = await quote(ip.url, { debitAmount: usd('600') })
  assert.equal(tooMuch.status, 400)
  assert.equal(tooMuch.body.error.description, 'invalid amount')
  assert.equal(await quoteCount(), before)
  // The read kept the real facts, and the quote expires no later than the receiver does.
  assert.deepEqual(incomingFacts.get(ip.id)?.incomingAmount, 500n)
  incomingFacts.remember({ ...real, expiresAt: new Date(real.expiresAt.getTime() + 3_600_000) })
  const ok = await quote(ip.url, { debitAmount: usd('100') })
  assert.equal(ok.status, 201)
  assert.ok(new Date(ok.body.expiresAt) <= real.expiresAt)
  assert.equal(incomingFacts.get(ip.id)?.expiresAt.getTime(), real.expiresAt.getTime())
  // Another asset scale: the quote is in the receiver's real asset.
  incomingFacts.remember({ ...real, assetScale: 3 })
  const scaled = await quote(ip.url, { debitAmount: usd('100') })
  assert.equal(scaled.status, 201)
  assert.deepEqual(scaled.body.receiveAmount, usd('100'))
})
