import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { isFulfill } from 'ilp-packet'
import { incomingFacts } from '../src/incoming-payments/facts.ts'
import { usd } from './helpers/amounts.ts'
import {
  type ClientIdentity,
  createClientIdentity,
  grantToken,
  outgoingPaymentToken,
  signedRequest,
} from './helpers/clients.ts'
import { addPeer, sendPacket, streamPrepare } from './helpers/ilp.ts'
import { createWalletAddress, deposit, startTestServer, type TestServer } from './helpers/server.ts'

/**
 * Database round trips per signed request, as the bench counts them (issue 9: at most one read and
 * one write per signed create, one read per signed GET), pinned so that a change adding one fails
 * here. Workers are off, so the pool's counters move only for the request measured; each request
 * is sent once before it is counted, so that the client's key is in the cache (5 s). The token's
 * state is read for every request all the same, never cached: by the read, or by the write itself.
 */
let server: TestServer
let app: ClientIdentity
let bob: { id: string; url: string }
let ipToken: string
let quoteToken: string
let rs: string

before(async () => {
  server = await startTestServer({
    ROLES: 'open-payments,auth,admin,ilp',
    ILP_ADDRESS: 'test.ase-b',
  })
  rs = server.openPaymentsUrl
  app = await createClientIdentity(server, { path: '/app' })
  bob = await createWalletAddress(server, { path: '/bob' })
  ipToken = await grantToken(server, app, [
    { type: 'incoming-payment', actions: ['create', 'read'], identifier: bob.url },
  ])
  quoteToken = await grantToken(server, app, [{ type: 'quote', actions: ['create', 'read'] }])
})
after(() => server?.close())

/** The statements and transactions `send` cost, and its status; `send` runs twice, counted once. */
async function roundTrips(send: () => Promise<{ status: number }>) {
  await send()
  const before = server.database.poolStats()
  const { status } = await send()
  const after = server.database.poolStats()
  return {
    status,
    statements: after.statements! - before.statements!,
    transactions: after.transactions! - before.transactions!,
  }
}

const createIp = () =>
  signedRequest(`${rs}/incoming-payments`, {
    body: { walletAddress: bob.url, incomingAmount: usd('500') },
    token: ipToken,
    identity: app,
  })

test('signed create of an incoming payment: one write, which checks the token itself', async () => {
  // The first create read the token's grant; its unchanging facts are kept (token-grants.ts), and
  // the token's state is checked by the write.
  assert.deepEqual(await roundTrips(createIp), { status: 201, statements: 1, transactions: 1 })
})

test('signed GET of an incoming payment: one read (the payment and the introspection)', async () => {
  const id = (await createIp()).body.id
  const get = () => signedRequest(id, { method: 'GET', token: ipToken, identity: app })
  assert.deepEqual(await roundTrips(get), { status: 200, statements: 1, transactions: 1 })
  const unsigned = () => fetch(id).then((res) => ({ status: res.status }))
  assert.deepEqual(await roundTrips(unsigned), { status: 200, statements: 1, transactions: 1 })
})

test('signed quote to a local incoming payment: one write, which checks the receiver and the token; its GET one read', async () => {
  const receiver = (await createIp()).body.id
  const quote = () =>
    signedRequest(`${rs}/quotes`, {
      body: { walletAddress: bob.url, receiver, method: 'ilp', debitAmount: usd('100') },
      token: quoteToken,
      identity: app,
    })
  // This process created the receiver, so it knows its facts.
  assert.deepEqual(await roundTrips(quote), { status: 201, statements: 1, transactions: 1 })
  // One it does not know (another process created it, or it was forgotten): one read (receiver and
  // introspection), one write; the read keeps its facts for the next quote.
  incomingFacts.delete(receiver.split('/').at(-1)!)
  const before = server.database.poolStats()
  assert.equal((await quote()).status, 201)
  const after = server.database.poolStats()
  assert.deepEqual(
    [after.statements! - before.statements!, after.transactions! - before.transactions!],
    [2, 2],
  )
  assert.deepEqual(await roundTrips(quote), { status: 201, statements: 1, transactions: 1 })
  const id = (await quote()).body.id
  const get = () => signedRequest(id, { method: 'GET', token: quoteToken, identity: app })
  assert.deepEqual(await roundTrips(get), { status: 200, statements: 1, transactions: 1 })
})

test('signed create of an outgoing payment from a quote: one read (quote and introspection), then its transaction', async () => {
  const alice = await createWalletAddress(server, { path: '/alice' })
  await deposit(server, alice.id, 100_000n)
  const opToken = await outgoingPaymentToken(server, app, alice.url)
  const quotes: string[] = []
  for (let i = 0; i < 2; i++) {
    const receiver = (await createIp()).body.id
    const quote = await signedRequest(`${rs}/quotes`, {
      body: { walletAddress: alice.url, receiver, method: 'ilp', debitAmount: usd('100') },
      token: quoteToken,
      identity: app,
    })
    quotes.push(quote.body.id)
  }
  const create = () =>
    signedRequest(`${rs}/outgoing-payments`, {
      body: { walletAddress: alice.url, quoteId: quotes.shift() },
      token: opToken,
      identity: app,
    })
  // Without the workers role the payment is reserved for the worker, in one transaction: BEGIN
  // sent with the grant's lock (which returns its spending), the reservation (its accounts locked, the
  // transfer, the deltas), the payment's row, the grant's new spending, its event, COMMIT. Before
  // it, the one read.
  assert.deepEqual(await roundTrips(create), { status: 201, statements: 9, transactions: 2 })
})

test('signed create of an outgoing payment straight from a local incoming payment: one read (receiver and introspection), the quote, then its transaction', async () => {
  const carol = await createWalletAddress(server, { path: '/carol' })
  await deposit(server, carol.id, 100_000n)
  const opToken = await outgoingPaymentToken(server, app, carol.url)
  const receivers = [(await createIp()).body.id, (await createIp()).body.id]
  const create = () =>
    signedRequest(`${rs}/outgoing-payments`, {
      body: {
        walletAddress: carol.url,
        incomingPayment: receivers.shift(),
        debitAmount: usd('100'),
      },
      token: opToken,
      identity: app,
    })
  // The read, the quote's write, and the payment's transaction as above.
  assert.deepEqual(await roundTrips(create), { status: 201, statements: 10, transactions: 3 })
})

test('an ILP packet booked alone: one transaction of two round trips, the writes carrying COMMIT; one that completes its payment, a statement more', async () => {
  const peer = await addPeer(server, { name: 'ase-a', creditLimit: 1_000_000n })
  // 500 to receive: two packets of 100, then one of 300 that completes it.
  const method = (await createIp()).body.methods[0] as { ilpAddress: string; sharedSecret: string }
  const pay = async (amount: bigint) => {
    const before = server.database.poolStats()
    const reply = await sendPacket(server.ilpUrl, peer, streamPrepare({ ...method, amount }))
    const after = server.database.poolStats()
    assert.ok(isFulfill(reply))
    return [after.statements! - before.statements!, after.transactions! - before.transactions!]
  }
  await pay(100n)
  // BEGIN with the locks and reads; the transfer, the credit and the peer's account with COMMIT.
  assert.deepEqual(await pay(100n), [2, 1])
  // The same, then the payment's `incoming_payment.completed` (read as credited, then written),
  // and COMMIT on its own.
  assert.deepEqual(await pay(300n), [5, 1])
})
