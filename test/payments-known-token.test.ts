import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, test } from 'node:test'
import { usd } from './helpers/amounts.ts'
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
  startTestServer,
  type TestServer,
} from './helpers/server.ts'

/**
 * A payment from a quote of this server, by a token the process already knows: the quote is read
 * by settlement at create's first statement, with the grant's lock and the token's check
 * (`createAndSettleUnread`), so nothing is read before the transaction. What that read decides
 * (the token, the quote, its owner) must be decided as the read before it decided.
 */
let server: TestServer
let app: ClientIdentity
let alice: { id: string; url: string }
let bob: { id: string; url: string }
let ipToken: string
let quoteToken: string
const rs = () => server.openPaymentsUrl

before(async () => {
  server = await startTestServer()
  app = await createClientIdentity(server, { path: '/app' })
  alice = await createWalletAddress(server, { path: '/alice' })
  bob = await createWalletAddress(server, { path: '/bob' })
  await deposit(server, alice.id, 100_000n)
  ipToken = await grantToken(server, app, [
    { type: 'incoming-payment', actions: ['create', 'read'], identifier: bob.url },
  ])
  quoteToken = await grantToken(server, app, [{ type: 'quote', actions: ['create', 'read'] }])
})
after(() => server?.close())

async function quoteFor(walletAddress: string, value = '100') {
  const receiver = await signedRequest(`${rs()}/incoming-payments`, {
    body: { walletAddress: bob.url },
    token: ipToken,
    identity: app,
  })
  const quote = await signedRequest(`${rs()}/quotes`, {
    body: { walletAddress, receiver: receiver.body.id, method: 'ilp', debitAmount: usd(value) },
    token: quoteToken,
    identity: app,
  })
  assert.equal(quote.status, 201)
  return quote.body.id as string
}

const pay = (token: string, quoteId: string, walletAddress = alice.url) =>
  signedRequest(`${rs()}/outgoing-payments`, {
    body: { walletAddress, quoteId },
    token,
    identity: app,
  })

const payments = async () =>
  (await server.database.db.selectFrom('outgoing_payments').select('id').execute()).length

/**
 * Five payments, each made ready by `next` and then sent, each settled at create; the fewest
 * statements and transactions one cost. The workers of the server count in the same pool
 * meanwhile: the fewest is the create's own.
 */
async function fewestRoundTrips(next: () => Promise<() => ReturnType<typeof pay>>) {
  const counted: { statements: number; transactions: number }[] = []
  for (let i = 0; i < 5; i++) {
    const send = await next()
    const before = server.database.poolStats()
    const res = await send()
    const after = server.database.poolStats()
    assert.equal(res.status, 201)
    // Settled at create: sent in full when it answers.
    assert.equal(res.body.failed, false)
    assert.equal(res.body.sentAmount.value, res.body.receiveAmount.value)
    counted.push({
      statements: after.statements! - before.statements!,
      transactions: after.transactions! - before.transactions!,
    })
  }
  return {
    min: {
      statements: Math.min(...counted.map((c) => c.statements)),
      transactions: Math.min(...counted.map((c) => c.transactions)),
    },
    counted: JSON.stringify(counted),
  }
}

test('a known token pays from a quote in settlement at create’s two round trips (the credit sent behind the lock), nothing before', async () => {
  const token = await outgoingPaymentToken(server, app, alice.url)
  // The first request reads the token; the process knows it from then on.
  assert.equal((await pay(token, await quoteFor(alice.url))).status, 201)
  const balance = await balanceOf(server, alice.id)
  const fewest = await fewestRoundTrips(async () => {
    const quoteId = await quoteFor(alice.url)
    return () => pay(token, quoteId)
  })
  assert.deepEqual(fewest.min, { statements: 2, transactions: 1 }, fewest.counted)
  assert.equal(await balanceOf(server, alice.id), balance - 5n * 100n)
})

test('unknown, another’s or a used quote: refused as before, and nothing is written', async () => {
  const token = await outgoingPaymentToken(server, app, alice.url)
  const used = await quoteFor(alice.url)
  assert.equal((await pay(token, used)).status, 201)
  const count = await payments()
  const balance = await balanceOf(server, alice.id)

  const unknown = await pay(token, `${rs()}/quotes/${randomUUID()}`)
  assert.equal(unknown.status, 404)
  const again = await pay(token, used)
  assert.equal(again.status, 400)
  assert.equal(again.body.error.description, 'invalid quote')
  const carol = await createWalletAddress(server, { path: '/carol' })
  const others = await pay(token, await quoteFor(carol.url))
  assert.equal(others.status, 400)
  assert.equal(others.body.error.description, 'invalid quote')

  assert.equal(await payments(), count)
  assert.equal(await balanceOf(server, alice.id), balance)
})

test('a revoked token is refused by the create itself: 403 Inactive Token, nothing written', async () => {
  const token = await outgoingPaymentToken(server, app, alice.url)
  assert.equal((await pay(token, await quoteFor(alice.url))).status, 201)
  const quoteId = await quoteFor(alice.url)
  const { body } = await server.admin('POST', '/introspect', { access_token: token })
  assert.equal((await server.admin('POST', `/grants/${body.grant}/revoke`)).status, 200)
  const count = await payments()
  const balance = await balanceOf(server, alice.id)
  for (let i = 0; i < 2; i++) {
    const res = await pay(token, quoteId)
    assert.equal(res.status, 403)
    assert.equal(res.body.error.description, 'Inactive Token')
    assert.equal(res.headers.get('www-authenticate'), `GNAP as_uri=${server.authUrl}/`)
  }
  assert.equal(await payments(), count)
  assert.equal(await balanceOf(server, alice.id), balance)
})

/**
 * Straight from an incoming payment whose facts the process keeps (it created it), by a known
 * token: the receiver is not read either (`createAndSettleFromFacts`); the settlement checks the
 * token, and holds the receiver to the facts the payment was priced from.
 */
async function incomingPayment(incomingAmount?: string) {
  const res = await signedRequest(`${rs()}/incoming-payments`, {
    body: {
      walletAddress: bob.url,
      ...(incomingAmount && { incomingAmount: usd(incomingAmount) }),
    },
    token: ipToken,
    identity: app,
  })
  assert.equal(res.status, 201)
  return res.body.id as string
}

const payStraight = (token: string, receiver: string, value = '100') =>
  signedRequest(`${rs()}/outgoing-payments`, {
    body: { walletAddress: alice.url, incomingPayment: receiver, debitAmount: usd(value) },
    token,
    identity: app,
  })

const quotes = async () =>
  (await server.database.db.selectFrom('quotes').select('id').execute()).length

test('a known token pays straight from a kept incoming payment in two round trips (the credit sent behind the lock), nothing before', async () => {
  const token = await outgoingPaymentToken(server, app, alice.url)
  assert.equal((await payStraight(token, await incomingPayment())).status, 201)
  const balance = await balanceOf(server, alice.id)
  const fewest = await fewestRoundTrips(async () => {
    const receiver = await incomingPayment()
    return () => payStraight(token, receiver)
  })
  assert.deepEqual(fewest.min, { statements: 2, transactions: 1 }, fewest.counted)
  assert.equal(await balanceOf(server, alice.id), balance - 5n * 100n)
})

test('straight from a kept incoming payment: completed, less left than paid, a revoked token — refused as before, nothing written', async () => {
  const token = await outgoingPaymentToken(server, app, alice.url)
  const full = await incomingPayment('100')
  assert.equal((await payStraight(token, full)).status, 201)
  const partly = await incomingPayment('150')
  assert.equal((await payStraight(token, partly)).status, 201)
  const count = await payments()
  const quoteCount = await quotes()
  const balance = await balanceOf(server, alice.id)

  const completed = await payStraight(token, full)
  assert.equal(completed.status, 400)
  assert.equal(completed.body.error.description, 'invalid receiver')
  // The kept facts say 150 expected and nothing received; the row says 50 left.
  const over = await payStraight(token, partly)
  assert.equal(over.status, 400)
  assert.equal(over.body.error.description, 'invalid amount')
  assert.equal((await payStraight(token, partly, '50')).status, 201)

  const open = await incomingPayment()
  const { body } = await server.admin('POST', '/introspect', { access_token: token })
  assert.equal((await server.admin('POST', `/grants/${body.grant}/revoke`)).status, 200)
  for (let i = 0; i < 2; i++) {
    const res = await payStraight(token, open)
    assert.equal(res.status, 403)
    assert.equal(res.body.error.description, 'Inactive Token')
  }
  assert.equal(await payments(), count + 1)
  assert.equal(await quotes(), quoteCount + 1)
  assert.equal(await balanceOf(server, alice.id), balance - 50n)
})
