import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { sql } from 'kysely'
import { checkBooks } from '../src/ledger/invariants.ts'
import { usd } from './helpers/amounts.ts'
import { outgoingPaymentToken } from './helpers/clients.ts'
import {
  balanceOf,
  createWalletAddress,
  deposit,
  eventually,
  startTestServer,
  type TestServer,
} from './helpers/server.ts'
import {
  type Amount,
  type Ase,
  incomingPayment,
  pay,
  peer,
  peerPosition,
  walletApp,
} from './helpers/two-ases.ts'

/**
 * Payments between two ASEs where the sender's asset, the asset the peers settle in (USD) and the
 * receiver's asset differ, in every combination. Whatever the assets, the sender is debited what
 * left, the peers' accounts mirror each other to the unit, the receiver is credited what arrived,
 * and both ledgers balance.
 */
let a: TestServer
let b: TestServer
let atA: Ase
let atB: Ase
// USD→EUR 0.8 (EUR→USD 1.25), USD→GBP 0.5, EUR→GBP 0.625: the cross rates agree.
const rates = JSON.stringify({ USD: { EUR: '0.8', GBP: '0.5' }, EUR: { GBP: '0.625' } })

type Wallet = { id: string; url: string }
let frank: Wallet // at A, EUR
let alice: Wallet // at A, USD
let bob: Wallet // at B, USD
let gina: Wallet // at B, GBP

const eur = (value: string): Amount => ({ value, assetCode: 'EUR', assetScale: 2 })
const gbp = (value: string): Amount => ({ value, assetCode: 'GBP', assetScale: 2 })

before(async () => {
  a = await startTestServer({ ILP_ADDRESS: 'test.ase-a', RATES: rates })
  b = await startTestServer({ ILP_ADDRESS: 'test.ase-b', RATES: rates })
  frank = await createWalletAddress(a, { path: '/frank', assetCode: 'EUR' })
  alice = await createWalletAddress(a, { path: '/alice', assetCode: 'USD' })
  bob = await createWalletAddress(b, { path: '/bob', assetCode: 'USD' })
  gina = await createWalletAddress(b, { path: '/gina', assetCode: 'GBP' })
  await peer(a, b, 'bank-b', { out: 'a-to-b-token-0123456789', in: 'b-to-a-token-0123456789' })
  await peer(b, a, 'bank-a', { out: 'b-to-a-token-0123456789', in: 'a-to-b-token-0123456789' })
  await deposit(a, frank.id, 1_000_000n)
  await deposit(a, alice.id, 1_000_000n)
  atA = await walletApp(a)
  atB = await walletApp(b)
})
after(async () => {
  await a?.close()
  await b?.close()
})

/**
 * Pays from `sender` at A into a new incoming payment of `receiver` at B and checks the books of
 * both ASEs against each other. Returns what moved, for the caller's own checks.
 */
async function payAcross(
  sender: Wallet,
  receiver: Wallet,
  opts: { incomingAmount?: Amount; debitAmount?: Amount; receiveAmount?: Amount },
) {
  const { ip, read } = await incomingPayment(atB, receiver.url, opts.incomingAmount)
  const before = {
    sender: await balanceOf(a, sender.id),
    receiver: await balanceOf(b, receiver.id),
    peerA: await peerPosition(a),
    peerB: await peerPosition(b),
  }
  const { quote, payment } = await pay(atA, sender.url, ip.id, {
    ...(opts.debitAmount && { debitAmount: opts.debitAmount }),
    ...(opts.receiveAmount && { receiveAmount: opts.receiveAmount }),
  })
  assert.equal(payment.failed, false, JSON.stringify(payment))
  const debited = before.sender - (await balanceOf(a, sender.id))
  const credited = (await balanceOf(b, receiver.id)) - before.receiver
  const peerOut = (await peerPosition(a)) - before.peerA
  const peerIn = before.peerB - (await peerPosition(b))
  // No fees are set: the sender is debited exactly what was sent.
  assert.equal(debited, BigInt(payment.sentAmount.value))
  assert.ok(debited > 0n && debited <= BigInt(quote.debitAmount.value))
  // What A owes B for the packets is what B holds A to owe it.
  assert.equal(peerOut, peerIn)
  assert.ok(peerOut > 0n)
  const received = await read()
  assert.equal(credited, BigInt(received.receivedAmount.value))
  assert.ok(credited >= BigInt(quote.receiveAmount.value))
  for (const server of [a, b]) {
    const books = await checkBooks(server.database.db)
    assert.ok(
      books.balanced,
      JSON.stringify(books, (_k, v) => (typeof v === 'bigint' ? `${v}` : v)),
    )
  }
  return { quote, payment, debited, credited, peerOut }
}

describe('payments across assets between two ASEs', () => {
  test('sender in EUR, peer and receiver in USD (as reported): booked on both sides', async () => {
    const r = await payAcross(frank, bob, { incomingAmount: usd('1000') })
    assert.equal(r.credited, 1000n)
    // One packet: A's peer account carries the sent euros at 1.25, rounded down.
    assert.equal(r.peerOut, (r.debited * 125n) / 100n)
    assert.equal(r.peerOut, r.credited)
  })

  test('sender in EUR, peer and receiver in USD, fixed send', async () => {
    const r = await payAcross(frank, bob, { debitAmount: eur('1000') })
    assert.equal(r.peerOut, (r.debited * 125n) / 100n)
    assert.equal(r.credited, r.peerOut)
  })

  test('sender and peer in USD, receiver in GBP, fixed receive', async () => {
    const r = await payAcross(alice, gina, { receiveAmount: gbp('500') })
    assert.equal(r.credited, 500n)
    assert.equal(r.peerOut, r.debited)
    assert.equal(r.credited, r.peerOut / 2n)
  })

  test('all three differ: EUR sender, USD peer, GBP receiver, fixed send', async () => {
    const r = await payAcross(frank, gina, { debitAmount: eur('2000') })
    assert.equal(r.peerOut, (r.debited * 125n) / 100n)
    assert.equal(r.credited, r.peerOut / 2n)
  })

  test('all three differ: EUR sender, USD peer, GBP receiver, fixed receive', async () => {
    const r = await payAcross(frank, gina, {
      incomingAmount: gbp('700'),
      receiveAmount: gbp('700'),
    })
    assert.equal(r.credited, 700n)
    assert.equal(r.credited, r.peerOut / 2n)
  })
})

describe('a remote payment whose booking fails', () => {
  test('is retried until booked, never failed with the money gone', async () => {
    const db = a.database.db
    // A fault in booking (a bug, a constraint): every delivery transfer is refused for a while.
    await sql`CREATE FUNCTION refuse_delivery() RETURNS trigger AS $$
      BEGIN RAISE EXCEPTION 'injected booking fault'; END $$ LANGUAGE plpgsql`.execute(db)
    await sql`CREATE TRIGGER refuse_delivery BEFORE INSERT ON ledger_transfers FOR EACH ROW
      WHEN (NEW.id LIKE 'outgoing:%:deliver%') EXECUTE FUNCTION refuse_delivery()`.execute(db)
    const { ip, read } = await incomingPayment(atB, bob.url, usd('400'))
    const quote = await atA.app.client.quote.create(
      { url: a.openPaymentsUrl, accessToken: atA.quoteToken },
      { walletAddress: frank.url, receiver: ip.id, method: 'ilp' },
    )
    const token = await outgoingPaymentToken(a, atA.app, frank.url)
    const created = await atA.app.client.outgoingPayment.create(
      { url: a.openPaymentsUrl, accessToken: token },
      { walletAddress: frank.url, quoteId: quote.id },
    )
    const id = created.id.split('/').at(-1)!
    const row = () =>
      db.selectFrom('outgoing_payments').selectAll().where('id', '=', id).executeTakeFirstOrThrow()
    // The receiver was paid; A cannot book it. Attempts go past the limit that fails other errors.
    await eventually(async () => ((await read()).completed ? true : undefined), 10_000)
    for (let i = 0; i < 10; i++) {
      await db
        .updateTable('outgoing_payments')
        .set({ next_attempt_at: new Date() })
        .where('id', '=', id)
        .where('state', '=', 'sending')
        .execute()
      const attempts = (await row()).attempts
      await eventually(async () => ((await row()).attempts > attempts ? true : undefined), 5000)
    }
    // Each attempt counts twice, when claimed and when its failed booking is put off: wait for an
    // even count, so that no attempt is in flight (and none can put the retry below off).
    const stuck = await eventually(async () => {
      const r = await row()
      return r.attempts % 2 === 0 ? r : undefined
    })
    assert.equal(stuck.state, 'sending')
    assert.ok(stuck.attempts >= 10)
    assert.equal(stuck.stream_outcome, 'delivered')
    // The fault is mended: the next attempt books what left, once.
    await sql`DROP TRIGGER refuse_delivery ON ledger_transfers`.execute(db)
    await db
      .updateTable('outgoing_payments')
      .set({ next_attempt_at: new Date() })
      .where('id', '=', id)
      .execute()
    await eventually(async () => ((await row()).state === 'completed' ? true : undefined), 5000)
    const payment = await atA.app.client.outgoingPayment.get({
      url: created.id,
      accessToken: token,
    })
    assert.equal(payment.failed, false)
    assert.equal(-(await peerPosition(b)), await peerPosition(a))
    assert.ok((await checkBooks(db)).balanced)
  })
})

describe('exact amounts across a rate that rounds (EUR → USD at 1.1)', () => {
  let c: TestServer
  let d: TestServer
  let atC: Ase
  let atD: Ase
  let erin: Wallet // at C, EUR
  let hugo: Wallet // at D, USD
  before(async () => {
    const rounding = JSON.stringify({ EUR: { USD: '1.1' } })
    c = await startTestServer({ ILP_ADDRESS: 'test.ase-c', RATES: rounding })
    d = await startTestServer({ ILP_ADDRESS: 'test.ase-d', RATES: rounding })
    erin = await createWalletAddress(c, { path: '/erin', assetCode: 'EUR' })
    hugo = await createWalletAddress(d, { path: '/hugo', assetCode: 'USD' })
    await peer(c, d, 'bank-d', { out: 'c-to-d-token-0123456789', in: 'd-to-c-token-0123456789' })
    await peer(d, c, 'bank-c', { out: 'd-to-c-token-0123456789', in: 'c-to-d-token-0123456789' })
    await deposit(c, erin.id, 1_000_000n)
    atC = await walletApp(c)
    atD = await walletApp(d)
  })
  after(async () => {
    await c?.close()
    await d?.close()
  })

  test('fixed receive of 1000 USD completes exactly: 909 EUR deliver 999, one more delivers 1', async () => {
    const { ip, read } = await incomingPayment(atD, hugo.url, usd('1000'))
    const before = await balanceOf(c, erin.id)
    const { quote, payment } = await pay(atC, erin.url, ip.id, { receiveAmount: usd('1000') })
    assert.deepEqual(quote.receiveAmount, usd('1000'))
    assert.equal(payment.failed, false, JSON.stringify(payment))
    const received = await read()
    assert.deepEqual(received.receivedAmount, usd('1000'))
    assert.equal(received.completed, true)
    // 1000 / 1.1 = 909.09…: no single amount lands on 1000, 909 + 1 = 910 EUR does.
    assert.deepEqual(payment.sentAmount, eur('910'))
    assert.equal(before - (await balanceOf(c, erin.id)), 910n)
    assert.ok(910n <= BigInt(quote.debitAmount.value))
    assert.equal(await balanceOf(d, hugo.id), 1000n)
    assert.equal(-(await peerPosition(d)), await peerPosition(c))
  })

  test('a fixed send debits the whole amount and sends all of it less the fee', async () => {
    const eurAsset = (await c.admin('GET', '/assets')).body.items.find((x: any) => x.code === 'EUR')
    await c.admin('PUT', `/assets/${eurAsset.id}/fees`, { fixed: '5', basisPoints: 100 })
    try {
      const { ip, read } = await incomingPayment(atD, hugo.url)
      const before = await balanceOf(c, erin.id)
      const { quote, payment } = await pay(atC, erin.url, ip.id, { debitAmount: eur('1000') })
      assert.equal(payment.failed, false, JSON.stringify(payment))
      // 5 + 1 % of the principal, rounded up: 985 + 15 = 1000.
      assert.equal(before - (await balanceOf(c, erin.id)), 1000n)
      assert.deepEqual(payment.sentAmount, eur('985'))
      const received = BigInt((await read()).receivedAmount.value)
      assert.equal(received, 1083n) // floor(985 × 1.1)
      assert.ok(received >= BigInt(quote.receiveAmount.value))
    } finally {
      await c.admin('PUT', `/assets/${eurAsset.id}/fees`, { fixed: '0', basisPoints: 0 })
    }
  })

  test('a fixed send into an incoming payment never delivers beyond its amount', async () => {
    // 100 EUR would deliver 110 USD, but the receiver asks for 108 and the 1 % slippage quote
    // promises only 108: the payment stops on 108 exactly, sending what that takes.
    const { ip, read } = await incomingPayment(atD, hugo.url, usd('108'))
    const { quote, payment } = await pay(atC, erin.url, ip.id, { debitAmount: eur('100') })
    assert.deepEqual(quote.receiveAmount, usd('108'))
    assert.equal(payment.failed, false, JSON.stringify(payment))
    assert.deepEqual((await read()).receivedAmount, usd('108'))
    assert.ok(BigInt(payment.sentAmount.value) < 100n)
  })

  test('a fixed send too small to deliver anything is refused with the least amount that would', async () => {
    const eurAsset = (await c.admin('GET', '/assets')).body.items.find((x: any) => x.code === 'EUR')
    await c.admin('PUT', `/assets/${eurAsset.id}/fees`, { fixed: '3', basisPoints: 0 })
    try {
      const { ip } = await incomingPayment(atD, hugo.url)
      const quote = (debitAmount: Amount) =>
        atC.app.client.quote.create(
          { url: c.openPaymentsUrl, accessToken: atC.quoteToken },
          { walletAddress: erin.url, receiver: ip.id, method: 'ilp', debitAmount },
        )
      let minSendAmount: string | undefined
      await assert.rejects(quote(eur('3')), (err: any) => {
        assert.equal(err.status, 400)
        assert.equal(err.description, 'non-positive receive amount')
        minSendAmount = err.details?.minSendAmount
        return true
      })
      // 1 EUR cent delivers floor(1.1 × 0.99) = 1 US cent at the minimum rate; the fee is 3.
      assert.equal(minSendAmount, '4')
      const ok = await quote(eur(minSendAmount!))
      assert.deepEqual(ok.debitAmount, eur('4'))
      assert.deepEqual(ok.receiveAmount, usd('1'))
    } finally {
      await c.admin('PUT', `/assets/${eurAsset.id}/fees`, { fixed: '0', basisPoints: 0 })
    }
  })
})
