import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { OutgoingPayment } from '@interledger/open-payments'
import { checkBooks } from '../src/ledger/invariants.ts'
import { usd } from './helpers/amounts.ts'
import {
  type ClientIdentity,
  createClientIdentity,
  grantToken,
  outgoingPaymentToken,
} from './helpers/clients.ts'
import {
  balanceOf,
  createWalletAddress,
  deposit,
  eventually,
  startTestServer,
  type TestServer,
} from './helpers/server.ts'

/**
 * The whole Open Payments flow with the official client (responses validated against the spec):
 * Alice's client pays Bob (same asset) and Carol (another asset) from Alice's wallet address.
 */
let server: TestServer
let app: ClientIdentity
let alice: { id: string; url: string }
let bob: { id: string; url: string }
let carol: { id: string; url: string }
let rs: string

const eur = (value: string) => ({ value, assetCode: 'EUR', assetScale: 2 })

before(async () => {
  server = await startTestServer({ RATES: JSON.stringify({ USD: { EUR: '0.9' } }) })
  rs = server.openPaymentsUrl
  app = await createClientIdentity(server, { path: '/wallet-app', publicName: 'Wallet App' })
  alice = await createWalletAddress(server, { path: '/alice', publicName: 'Alice' })
  bob = await createWalletAddress(server, { path: '/bob', publicName: 'Bob' })
  carol = await createWalletAddress(server, { path: '/carol', assetCode: 'EUR', assetScale: 2 })
  await deposit(server, alice.id, 100_000n)
  // Sending fee on USD: 0.10 fixed + 1 %.
  const assets = (await server.admin('GET', '/assets')).body.items
  const usdAsset = assets.find((a: any) => a.code === 'USD')
  const fee = await server.admin('PUT', `/assets/${usdAsset.id}/fees`, {
    fixed: '10',
    basisPoints: 100,
  })
  assert.equal(fee.status, 200)
})
after(() => server.close())

const settled = (token: string, id: string) =>
  eventually(async () => {
    const p = await app.client.outgoingPayment.get({ url: id, accessToken: token })
    return p.failed || p.sentAmount.value !== '0' ? p : undefined
  })

describe('the full flow', () => {
  let ipToken: string
  let quoteToken: string
  let opToken: string

  test('grants: incoming payment and quote without interaction, outgoing payment with consent', async () => {
    ipToken = await grantToken(server, app, [
      { type: 'incoming-payment', actions: ['create', 'read', 'complete'], identifier: bob.url },
      { type: 'incoming-payment', actions: ['create', 'read'], identifier: carol.url },
    ])
    quoteToken = await grantToken(server, app, [{ type: 'quote', actions: ['create', 'read'] }])
    opToken = await outgoingPaymentToken(server, app, alice.url, { debitAmount: usd('20000') })
  })

  test('quotes: receiver amount, fixed receive, fixed send; fees included in the debit amount', async () => {
    const ip = await app.client.incomingPayment.create(
      { url: rs, accessToken: ipToken },
      { walletAddress: bob.url, incomingAmount: usd('5000') },
    )
    const quote = (body: Record<string, unknown>) =>
      app.client.quote.create({ url: rs, accessToken: quoteToken }, {
        walletAddress: alice.url,
        receiver: ip.id,
        method: 'ilp',
        ...body,
      } as never)

    const byReceiver = await quote({})
    assert.deepEqual(byReceiver.receiveAmount, usd('5000'))
    assert.deepEqual(byReceiver.debitAmount, usd('5060')) // 5000 + 10 + 1 % of 5000
    assert.equal(byReceiver.receiver, ip.id)
    assert.equal(byReceiver.method, 'ilp')
    assert.ok(new Date(byReceiver.expiresAt!).getTime() <= Date.now() + 300_000)

    const fixedReceive = await quote({ receiveAmount: usd('2000') })
    assert.deepEqual(fixedReceive.debitAmount, usd('2030'))
    const fixedSend = await quote({ debitAmount: usd('1000') })
    // Principal 980 + fee 10 + 1 % of 980 (9.8, rounded up to 10) = 1000.
    assert.deepEqual(fixedSend.receiveAmount, usd('980'))
    assert.deepEqual(fixedSend.debitAmount, usd('1000'))
    const read = await app.client.quote.get({ url: byReceiver.id, accessToken: quoteToken })
    assert.deepEqual(read, byReceiver)
  })

  test('an outgoing payment from a quote pays Bob; balances, fees and sentAmount are right to the unit', async () => {
    const ip = await app.client.incomingPayment.create(
      { url: rs, accessToken: ipToken },
      { walletAddress: bob.url, incomingAmount: usd('5000') },
    )
    const q = await app.client.quote.create(
      { url: rs, accessToken: quoteToken },
      { walletAddress: alice.url, receiver: ip.id, method: 'ilp' },
    )
    const created = await app.client.outgoingPayment.create(
      { url: rs, accessToken: opToken },
      { walletAddress: alice.url, quoteId: q.id, metadata: { note: 'rent' } },
    )
    assert.equal(created.failed, false)
    assert.deepEqual(created.debitAmount, usd('5060'))
    assert.deepEqual(created.receiveAmount, usd('5000'))
    assert.deepEqual(created.grantSpentDebitAmount, usd('5060'))
    assert.deepEqual(created.metadata, { note: 'rent' })
    assert.equal(created.quoteId, q.id)
    // This process runs the payment worker: the payment was settled in its create's transaction,
    // the reservation recorded as made and posted in full, beside the fee and the delivery.
    assert.deepEqual(created.sentAmount, usd('5000'))
    const id = created.id.split('/').at(-1)!
    const transfers = await server.database.db
      .selectFrom('ledger_transfers')
      .select(['id', 'two_phase', 'state', 'amount', 'posted_amount'])
      .where('reference', '=', `outgoing_payment:${id}`)
      .orderBy('id')
      .execute()
    assert.deepEqual(
      transfers.map((t) => [t.id, t.two_phase, t.state, t.amount, t.posted_amount]),
      [
        [`outgoing:${id}:deliver`, false, 'posted', 5000n, 5000n],
        [`outgoing:${id}:fee`, false, 'posted', 60n, 60n],
        [`outgoing:${id}:reserve`, true, 'posted', 5060n, 5060n],
      ],
    )

    const done = await settled(opToken, created.id)
    assert.equal(done.failed, false)
    assert.deepEqual(done.sentAmount, usd('5000'))
    const received = await app.client.incomingPayment.get({ url: ip.id, accessToken: ipToken })
    assert.equal(received.completed, true)
    assert.deepEqual(received.receivedAmount, usd('5000'))

    assert.equal(await balanceOf(server, alice.id), 100_000n - 5060n)
    assert.equal(await balanceOf(server, bob.id), 5000n)
    const fees = await server.database.db
      // The fee account is limit-free: its totals include the deltas not yet folded.
      .selectFrom('ledger_account_totals as l')
      .innerJoin('assets as a', 'a.id', 'l.asset_id')
      .select(['l.credits_posted', 'l.debits_posted'])
      .where('a.code', '=', 'USD')
      .where('l.kind', '=', 'fees')
      .executeTakeFirstOrThrow()
    assert.equal(fees.credits_posted - fees.debits_posted, 60n)
    assert.ok((await checkBooks(server.database.db)).balanced)
  })

  test('cross currency USD → EUR at 0.9: the receiver gets exactly the amount, the sender pays the rounded-up price', async () => {
    const ip = await app.client.incomingPayment.create(
      { url: rs, accessToken: ipToken },
      { walletAddress: carol.url, incomingAmount: eur('9000') },
    )
    const q = await app.client.quote.create(
      { url: rs, accessToken: quoteToken },
      { walletAddress: alice.url, receiver: ip.id, method: 'ilp' },
    )
    // 90.00 EUR / 0.9 = 100.00 USD principal, + 0.10 + 1.00 fee.
    assert.deepEqual(q.receiveAmount, eur('9000'))
    assert.deepEqual(q.debitAmount, usd('10110'))
    const before = await balanceOf(server, alice.id)
    const created = await app.client.outgoingPayment.create(
      { url: rs, accessToken: opToken },
      { walletAddress: alice.url, quoteId: q.id },
    )
    assert.deepEqual(created.grantSpentDebitAmount, usd('15170'))
    assert.deepEqual(created.grantSpentReceiveAmount, eur('9000'))
    const done = await settled(opToken, created.id)
    assert.deepEqual(done.sentAmount, usd('10000'))
    assert.equal(await balanceOf(server, alice.id), before - 10110n)
    assert.equal(await balanceOf(server, carol.id), 9000n)
    const received = await app.client.incomingPayment.get({ url: ip.id, accessToken: ipToken })
    assert.equal(received.completed, true)
    assert.ok((await checkBooks(server.database.db)).balanced)
  })

  test('from an incoming payment and a debit amount, without a quote', async () => {
    const ip = await app.client.incomingPayment.create(
      { url: rs, accessToken: ipToken },
      { walletAddress: bob.url },
    )
    const created = await app.client.outgoingPayment.create(
      { url: rs, accessToken: opToken },
      { walletAddress: alice.url, incomingPayment: ip.id, debitAmount: usd('1000') },
    )
    assert.deepEqual(created.receiveAmount, usd('980'))
    // The quote made on the spot is stored with the payment (by the statement that settled it).
    const quote = await server.database.db
      .selectFrom('quotes')
      .selectAll()
      .where('id', '=', created.quoteId!.split('/').at(-1)!)
      .executeTakeFirstOrThrow()
    assert.deepEqual(
      [quote.debit_amount, quote.fee_amount, quote.receive_amount, quote.receiver],
      [1000n, 20n, 980n, ip.id],
    )
    const done = await settled(opToken, created.id)
    assert.deepEqual(done.sentAmount, usd('980'))
    const received = await app.client.incomingPayment.get({ url: ip.id, accessToken: ipToken })
    assert.deepEqual(received.receivedAmount, usd('980'))
    assert.equal(received.completed, false) // no incomingAmount: open until completed
    const completed = await app.client.incomingPayment.complete({
      url: ip.id,
      accessToken: ipToken,
    })
    assert.equal(completed.completed, true)
  })

  test('grant spending and the list of payments', async () => {
    const spent = await app.client.outgoingPayment.getGrantSpentAmounts({
      url: rs,
      accessToken: opToken,
    })
    assert.deepEqual(spent.spentDebitAmount, usd('16170'))
    const list = await app.client.outgoingPayment.list(
      { url: rs, walletAddress: alice.url, accessToken: opToken },
      { first: 10 } as never,
    )
    assert.equal(list.result.length, 3)
    assert.ok(list.result.every((p: OutgoingPayment) => !p.failed && p.sentAmount.value !== '0'))
    // The grant's limit (200.00 USD) is nearly spent: 38.31 more would exceed it.
    const ip = await app.client.incomingPayment.create(
      { url: rs, accessToken: ipToken },
      { walletAddress: bob.url },
    )
    await assert.rejects(
      app.client.outgoingPayment.create(
        { url: rs, accessToken: opToken },
        { walletAddress: alice.url, incomingPayment: ip.id, debitAmount: usd('3831') },
      ),
      (err: any) => err.status === 403 && err.description === 'unauthorized',
    )
    const fits = await app.client.outgoingPayment.create(
      { url: rs, accessToken: opToken },
      { walletAddress: alice.url, incomingPayment: ip.id, debitAmount: usd('3830') },
    )
    assert.deepEqual(fits.grantSpentDebitAmount, usd('20000'))
  })
})
