import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { checkBooks } from '../src/ledger/invariants.ts'
import { usd } from './helpers/amounts.ts'
import { grantToken, outgoingPaymentToken } from './helpers/clients.ts'
import {
  balanceOf,
  createWalletAddress,
  deposit,
  eventually,
  startTestServer,
  type TestServer,
} from './helpers/server.ts'
import {
  type Ase,
  incomingPayment,
  pay,
  peer,
  peerPosition,
  walletApp,
} from './helpers/two-ases.ts'

/**
 * Two ASEs on loopback, each a whole server with its own database schema, ILP address and STREAM
 * secret, peered with crossed tokens. Everything a wallet does goes through the official client.
 */
let a: TestServer
let b: TestServer
const rates = JSON.stringify({ USD: { EUR: '0.9' } })

const eur = (value: string) => ({ value, assetCode: 'EUR', assetScale: 2 })

async function peerAt(server: TestServer, name: string): Promise<string> {
  return (await server.admin('GET', '/peers')).body.items.find((p: any) => p.name === name).id
}

/** How many ILP packets B has booked (one transfer each, same asset). */
async function packetsBooked(server: TestServer): Promise<number> {
  const rows = await server.database.db
    .selectFrom('ledger_transfers')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .where('id', 'like', 'ilp:%')
    .executeTakeFirstOrThrow()
  return Number(rows.n)
}

let atA: Ase
let atB: Ase
let alice: { id: string; url: string } // at A
let bob: { id: string; url: string } // at B
let carol: { id: string; url: string } // at B, in EUR
let dave: { id: string; url: string } // at A, receives from B
let erin: { id: string; url: string } // at B, pays A

before(async () => {
  a = await startTestServer({ ILP_ADDRESS: 'test.ase-a', RATES: rates, SERVER_NAME: 'Bank A' })
  b = await startTestServer({ ILP_ADDRESS: 'test.ase-b', RATES: rates, SERVER_NAME: 'Bank B' })
  alice = await createWalletAddress(a, { path: '/alice', publicName: 'Alice' })
  dave = await createWalletAddress(a, { path: '/dave', publicName: 'Dave' })
  bob = await createWalletAddress(b, { path: '/bob', publicName: 'Bob' })
  carol = await createWalletAddress(b, { path: '/carol', assetCode: 'EUR', assetScale: 2 })
  erin = await createWalletAddress(b, { path: '/erin' })
  await peer(a, b, 'bank-b', { out: 'a-to-b-secret-token', in: 'b-to-a-secret-token' })
  await peer(b, a, 'bank-a', { out: 'b-to-a-secret-token', in: 'a-to-b-secret-token' })
  await deposit(a, alice.id, 1_000_000n)
  atA = await walletApp(a)
  atB = await walletApp(b)
})
after(async () => {
  await a?.close()
  await b?.close()
})

describe('payments between two ASEs over Interledger', () => {
  test('A → B, receiver amount: the incoming payment completes, both ledgers balance', async () => {
    const { ip, read } = await incomingPayment(atB, bob.url, usd('5000'))
    const before = await balanceOf(a, alice.id)
    const { quote, payment } = await pay(atA, alice.url, ip.id)
    assert.deepEqual(quote.receiveAmount, usd('5000'))
    assert.ok(BigInt(quote.debitAmount.value) >= 5000n)
    assert.equal(payment.failed, false)
    assert.deepEqual(payment.sentAmount, usd('5000'))
    const received = await read()
    assert.equal(received.completed, true)
    assert.deepEqual(received.receivedAmount, usd('5000'))
    // What left Alice is what reached Bob; the peers' accounts mirror each other.
    assert.equal(before - (await balanceOf(a, alice.id)), 5000n)
    assert.equal(await balanceOf(b, bob.id), 5000n)
    assert.equal(await peerPosition(a), 5000n)
    assert.equal(await peerPosition(b), -5000n)
    // The operators see the same through the admin API.
    const atBankA = await a.admin('GET', `/peers/${await peerAt(a, 'bank-b')}/balance`)
    assert.deepEqual(
      [atBankA.body.balance, atBankA.body.assetCode, atBankA.body.creditLimit],
      ['5000', 'USD', '100000000'],
    )
    const atBankB = await b.admin('GET', `/peers/${await peerAt(b, 'bank-a')}/balance`)
    assert.equal(atBankB.body.balance, '-5000')
    assert.equal((await b.admin('GET', `/peers/${crypto.randomUUID()}/balance`)).status, 404)
    assert.ok((await checkBooks(a.database.db)).balanced)
    assert.ok((await checkBooks(b.database.db)).balanced)
  })

  test('A → B, fixed send: the receiver gets at least the quoted amount', async () => {
    const { ip, read } = await incomingPayment(atB, bob.url)
    const { quote, payment } = await pay(atA, alice.url, ip.id, { debitAmount: usd('1000') })
    assert.deepEqual(quote.debitAmount, usd('1000'))
    assert.equal(payment.failed, false)
    const received = BigInt((await read()).receivedAmount.value)
    assert.ok(received >= BigInt(quote.receiveAmount.value))
    assert.equal(BigInt(payment.sentAmount.value), received) // one asset, rate 1
    // All of it leaves, not just the 990 that 1 % slippage promises.
    assert.deepEqual(payment.sentAmount, usd('1000'))
  })

  test('B → A: the other direction works the same', async () => {
    await deposit(b, erin.id, 10_000n)
    const { ip, read } = await incomingPayment(atA, dave.url, usd('700'))
    const { payment } = await pay(atB, erin.url, ip.id)
    assert.equal(payment.failed, false)
    assert.deepEqual((await read()).receivedAmount, usd('700'))
    assert.equal(await balanceOf(a, dave.id), 700n)
  })

  test('A (USD) → B (EUR) at 0.9 with slippage: the receiver gets exactly the amount', async () => {
    const { ip, read } = await incomingPayment(atB, carol.url, eur('9000'))
    const before = await balanceOf(a, alice.id)
    const { quote, payment } = await pay(atA, alice.url, ip.id)
    assert.deepEqual(quote.receiveAmount, eur('9000'))
    // At most 90.00 / (0.9 × 0.99) USD, plus one unit of rounding: 101.01 USD.
    assert.ok(BigInt(quote.debitAmount.value) <= 10_102n)
    assert.equal(payment.failed, false)
    const received = await read()
    assert.deepEqual(received.receivedAmount, eur('9000'))
    assert.equal(received.completed, true)
    const paid = before - (await balanceOf(a, alice.id))
    assert.equal(BigInt(payment.sentAmount.value), paid)
    assert.ok(paid >= 10_000n && paid <= 10_002n, `paid ${paid}`)
    assert.ok((await checkBooks(a.database.db)).balanced)
    assert.ok((await checkBooks(b.database.db)).balanced)
  })

  test('A → B, fixed receive', async () => {
    const { ip, read } = await incomingPayment(atB, bob.url)
    const { quote, payment } = await pay(atA, alice.url, ip.id, { receiveAmount: usd('1234') })
    assert.deepEqual(quote.receiveAmount, usd('1234'))
    assert.equal(payment.failed, false)
    assert.deepEqual((await read()).receivedAmount, usd('1234'))
  })

  test('a payment split into many packets by the path’s maximum packet amount', async () => {
    const toA = await peerAt(b, 'bank-a')
    await b.admin('PATCH', `/peers/${toA}`, { maxPacketAmount: '50' })
    try {
      const { ip, read } = await incomingPayment(atB, bob.url, usd('5000'))
      const bookedBefore = await packetsBooked(b)
      const { payment } = await pay(atA, alice.url, ip.id)
      assert.equal(payment.failed, false)
      assert.deepEqual((await read()).receivedAmount, usd('5000'))
      const packets = (await packetsBooked(b)) - bookedBefore
      assert.ok(packets >= 100 && packets < 200, `${packets} packets`)
    } finally {
      await b.admin('PATCH', `/peers/${toA}`, { maxPacketAmount: null })
    }
  })

  test('the incoming payment expires mid-payment: partial delivery, failed, the rest released, and only the rest given back to the grant', async () => {
    const toA = await peerAt(b, 'bank-a')
    await b.admin('PATCH', `/peers/${toA}`, { maxPacketAmount: '10' })
    try {
      const grant = await outgoingPaymentToken(a, atA.app, alice.url, {
        debitAmount: usd('100000'),
      })
      const token = await grantToken(b, atB.app, [
        { type: 'incoming-payment', actions: ['create', 'read'], identifier: bob.url },
      ])
      const ip = await atB.app.client.incomingPayment.create(
        { url: b.openPaymentsUrl, accessToken: token },
        // Long enough for the quote to arrive on a loaded machine, far too short for 10,000 packets.
        { walletAddress: bob.url, expiresAt: new Date(Date.now() + 3000).toISOString() },
      )
      const before = await balanceOf(a, alice.id)
      const position = await peerPosition(a)
      const { payment } = await pay(atA, alice.url, ip.id, { debitAmount: usd('100000') }, grant)
      assert.equal(payment.failed, true, JSON.stringify(payment))
      const sent = BigInt(payment.sentAmount.value)
      assert.ok(sent > 0n && sent < 100_000n, `sent ${sent}`)
      const received = await atB.app.client.incomingPayment.get({ url: ip.id, accessToken: token })
      assert.equal(BigInt(received.receivedAmount.value), sent)
      assert.equal(before - (await balanceOf(a, alice.id)), sent) // the rest of the reservation is back
      assert.equal((await peerPosition(a)) - position, sent)
      assert.ok((await checkBooks(a.database.db)).balanced)
      assert.ok((await checkBooks(b.database.db)).balanced)

      // What was sent stays spent under the grant; only the rest is given back.
      const spent = await atA.app.client.outgoingPayment.getGrantSpentAmounts({
        url: a.openPaymentsUrl,
        accessToken: grant,
      })
      assert.equal(spent.spentDebitAmount?.value, String(sent))
      const rest = 100_000n - sent
      await assert.rejects(
        pay(
          atA,
          alice.url,
          (await incomingPayment(atA, dave.url)).ip.id,
          {
            debitAmount: usd(String(rest + 1n)),
          },
          grant,
        ),
        (err: any) => err.status === 403,
      )
      const { payment: last } = await pay(
        atA,
        alice.url,
        (await incomingPayment(atA, dave.url)).ip.id,
        { debitAmount: usd(String(rest)) },
        grant,
      )
      assert.equal(last.failed, false)
      // Alice paid no more than the grant allows.
      assert.equal(before - (await balanceOf(a, alice.id)), 100_000n)
    } finally {
      await b.admin('PATCH', `/peers/${toA}`, { maxPacketAmount: null })
    }
  })

  test('two payments racing into one incoming payment: the receiver is capped at its amount', async () => {
    const { ip, read } = await incomingPayment(atB, bob.url, usd('1000'))
    const before = await balanceOf(a, alice.id)
    const [one, two] = await Promise.all([pay(atA, alice.url, ip.id), pay(atA, alice.url, ip.id)])
    const received = await read()
    assert.deepEqual(received.receivedAmount, usd('1000'))
    assert.equal(received.completed, true)
    const sent = BigInt(one.payment.sentAmount.value) + BigInt(two.payment.sentAmount.value)
    assert.equal(sent, 1000n)
    assert.equal(before - (await balanceOf(a, alice.id)), 1000n)
    assert.ok([one, two].some((r) => !r.payment.failed))
    assert.ok((await checkBooks(a.database.db)).balanced)
  })

  test('a path that goes quiet: nothing sent, the payment is retried and then completes', async () => {
    const { ip, read } = await incomingPayment(atB, bob.url, usd('300'))
    const quote = await atA.app.client.quote.create(
      { url: a.openPaymentsUrl, accessToken: atA.quoteToken },
      { walletAddress: alice.url, receiver: ip.id, method: 'ilp' },
    )
    const token = await outgoingPaymentToken(a, atA.app, alice.url)
    const toB = await peerAt(a, 'bank-b')
    await a.admin('PATCH', `/peers/${toB}`, { httpEndpoint: 'http://127.0.0.1:9/ilp' })
    const created = await atA.app.client.outgoingPayment.create(
      { url: a.openPaymentsUrl, accessToken: token },
      { walletAddress: alice.url, quoteId: quote.id },
    )
    const id = created.id.split('/').at(-1)!
    const row = () =>
      a.database.db
        .selectFrom('outgoing_payments')
        .selectAll()
        .where('id', '=', id)
        .executeTakeFirstOrThrow()
    // The first attempt gives up when the path stays silent, and schedules another.
    await eventually(async () => ((await row()).failure ? true : undefined), 30_000)
    assert.equal((await row()).state, 'sending')
    await a.admin('PATCH', `/peers/${toB}`, { httpEndpoint: b.ilpUrl })
    await eventually(async () => ((await row()).state === 'completed' ? true : undefined), 30_000)
    assert.deepEqual((await read()).receivedAmount, usd('300'))
  })

  test('a completed incoming payment at B cannot be quoted', async () => {
    const token = await grantToken(b, atB.app, [
      { type: 'incoming-payment', actions: ['create', 'complete'], identifier: bob.url },
    ])
    const ip = await atB.app.client.incomingPayment.create(
      { url: b.openPaymentsUrl, accessToken: token },
      { walletAddress: bob.url },
    )
    await atB.app.client.incomingPayment.complete({ url: ip.id, accessToken: token })
    await assert.rejects(
      atA.app.client.quote.create(
        { url: a.openPaymentsUrl, accessToken: atA.quoteToken },
        { walletAddress: alice.url, receiver: ip.id, method: 'ilp', debitAmount: usd('100') },
      ),
      (err: any) => err.status === 400 && err.description === 'invalid receiver',
    )
  })
})
