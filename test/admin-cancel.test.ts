import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { getAccount } from '../src/ledger/accounts.ts'
import { checkBooks } from '../src/ledger/invariants.ts'
import { type AdminContract, adminContract } from './helpers/admin-contract.ts'
import { usd } from './helpers/amounts.ts'
import {
  type ClientIdentity,
  createClientIdentity,
  grantToken,
  outgoingPaymentToken,
} from './helpers/clients.ts'
import { type IlpProxy, peerThroughProxy } from './helpers/ilp-proxy.ts'
import {
  createWalletAddress,
  deposit,
  eventually,
  startTestServer,
  type TestServer,
} from './helpers/server.ts'
import { type Ase, incomingPayment, peer, walletApp } from './helpers/two-ases.ts'

/**
 * Cancelling outgoing payments through the admin API: before anything is sent (the reservation is
 * released in the same transaction), against the payment worker (exactly one wins), and once
 * sending has started (409).
 */
const idOf = (url: string) => url.split('/').at(-1)!

interface Side {
  server: TestServer
  api: AdminContract
  app: ClientIdentity
  alice: { id: string; url: string }
  bob: { id: string; url: string }
  ipToken: string
  quoteToken: string
}

async function side(env: Record<string, string> = {}): Promise<Side> {
  const server = await startTestServer(env)
  const app = await createClientIdentity(server, { path: '/app' })
  const alice = await createWalletAddress(server, { path: '/alice' })
  const bob = await createWalletAddress(server, { path: '/bob' })
  await deposit(server, alice.id, 10_000n)
  return {
    server,
    api: await adminContract(server),
    app,
    alice,
    bob,
    ipToken: await grantToken(server, app, [
      { type: 'incoming-payment', actions: ['create', 'read'], identifier: bob.url },
    ]),
    quoteToken: await grantToken(server, app, [{ type: 'quote', actions: ['create'] }]),
  }
}

/** Alice pays Bob `amount` with the official client; returns the payment's id and Bob's payment. */
async function createPayment(s: Side, token: string, amount: string) {
  const ip = await s.app.client.incomingPayment.create(
    { url: s.server.openPaymentsUrl, accessToken: s.ipToken },
    { walletAddress: s.bob.url, incomingAmount: usd(amount) },
  )
  const quote = await s.app.client.quote.create(
    { url: s.server.openPaymentsUrl, accessToken: s.quoteToken },
    { walletAddress: s.alice.url, receiver: ip.id, method: 'ilp' },
  )
  const op = await s.app.client.outgoingPayment.create(
    { url: s.server.openPaymentsUrl, accessToken: token },
    { walletAddress: s.alice.url, quoteId: quote.id },
  )
  return { id: idOf(op.id), url: op.id, ip }
}

async function walletTotals(s: Side, walletAddressId: string) {
  const wa = await s.api.call('GET', `/wallet-addresses/${walletAddressId}`)
  return (await getAccount(s.server.database.db, wa.body.ledgerAccountId))!
}

async function reservationState(s: Side, paymentId: string) {
  const row = await s.server.database.db
    .selectFrom('ledger_transfers')
    .select('state')
    .where('id', '=', `outgoing:${paymentId}:reserve`)
    .executeTakeFirstOrThrow()
  return row.state
}

describe('before sending (no payment worker runs in this process)', () => {
  let s: Side
  let token: string
  before(async () => {
    s = await side({ ROLES: 'open-payments,auth,admin,ilp' })
    token = await outgoingPaymentToken(s.server, s.app, s.alice.url, {
      debitAmount: usd('1500'),
    })
  })
  after(() => s.server.close())

  test('cancel releases the reservation in the same transaction; clients see failed', async () => {
    const p = await createPayment(s, token, '1000')
    const sending = await s.api.call('GET', `/outgoing-payments/${p.id}`)
    assert.equal(sending.body.state, 'sending')
    assert.equal(sending.body.attempts, 0)
    assert.deepEqual((await s.api.call('GET', `/wallet-addresses/${s.alice.id}/balance`)).body, {
      walletAddressId: s.alice.id,
      assetCode: 'USD',
      assetScale: 2,
      balance: '10000',
      reserved: '1000',
      available: '9000',
    })

    const cancelled = await s.api.call('POST', `/outgoing-payments/${p.id}/cancel`, {
      reason: 'suspected fraud',
    })
    assert.equal(cancelled.status, 200)
    assert.equal(cancelled.body.state, 'cancelled')
    assert.equal(cancelled.body.failure, 'suspected fraud')
    assert.equal(cancelled.body.sentAmount, '0')
    assert.deepEqual(
      cancelled.body.transfers.map((t: any) => [t.id, t.state]),
      [[`outgoing:${p.id}:reserve`, 'voided']],
    )
    const balance = (await s.api.call('GET', `/wallet-addresses/${s.alice.id}/balance`)).body
    assert.equal(balance.reserved, '0')
    assert.equal(balance.available, '10000')
    assert.ok((await checkBooks(s.server.database.db)).balanced)

    const seen = await s.app.client.outgoingPayment.get({ url: p.url, accessToken: token })
    assert.equal(seen.failed, true)
    assert.equal(seen.sentAmount.value, '0')
    const ip = await s.app.client.incomingPayment.get({ url: p.ip.id, accessToken: s.ipToken })
    assert.equal(ip.receivedAmount.value, '0')
    // A cancelled payment no longer counts against the grant's debit limit of 1500.
    const next = await createPayment(s, token, '1000')
    assert.equal((await s.api.call('GET', `/outgoing-payments/${next.id}`)).body.state, 'sending')
    await s.api.call('POST', `/outgoing-payments/${next.id}/cancel`, { reason: 'cleanup' })
  })

  test('ten concurrent cancels: all answer the cancelled payment, the reservation is released once', async () => {
    const p = await createPayment(s, token, '700')
    const before = await walletTotals(s, s.alice.id)
    assert.equal(before.debitsPending, 700n)
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        s.api.call('POST', `/outgoing-payments/${p.id}/cancel`, { reason: `cancel ${i}` }),
      ),
    )
    for (const r of results) {
      assert.equal(r.status, 200)
      assert.equal(r.body.state, 'cancelled')
    }
    // One of them cancelled; the others found it cancelled and got that payment back.
    assert.equal(new Set(results.map((r) => r.body.failure)).size, 1)
    // …and that one cancellation is one webhook event, with the reason that won.
    const events = await s.server.database.db
      .selectFrom('webhook_events')
      .select(['id', 'data'])
      .where('type', '=', 'outgoing_payment.cancelled')
      .where('resource', '=', `outgoing_payment:${p.id}`)
      .execute()
    assert.equal(events.length, 1)
    assert.equal((events[0]!.data as any).outgoingPayment.failure, results[0]!.body.failure)
    const rendered = (await s.api.call('GET', `/webhook-events/${events[0]!.id}`)).body.payload
    assert.equal(rendered.type, 'outgoing_payment.cancelled')
    assert.equal(rendered.data.failed, true)
    assert.equal(rendered.data.cancelReason, results[0]!.body.failure)
    const after = await walletTotals(s, s.alice.id)
    assert.equal(after.debitsPending, 0n)
    assert.equal(after.debitsPosted, before.debitsPosted)
    assert.equal(after.creditsPosted, before.creditsPosted)
    assert.equal(await reservationState(s, p.id), 'voided')
    assert.ok((await checkBooks(s.server.database.db)).balanced)
  })
})

describe('against the payment worker', () => {
  let s: Side
  let token: string
  before(async () => {
    s = await side()
    token = await outgoingPaymentToken(s.server, s.app, s.alice.url)
  })
  after(() => s.server.close())

  test('cancel races settlement: exactly one wins, the reservation is resolved once, books balance', async (t) => {
    const outcomes = { cancelled: 0, completed: 0 }
    for (let i = 0; i < 12; i++) {
      const before = await walletTotals(s, s.alice.id)
      const bobBefore = await walletTotals(s, s.bob.id)
      const p = await createPayment(s, token, '100')
      // The create kicked the worker; the cancel races it.
      const cancel = await s.api.call('POST', `/outgoing-payments/${p.id}/cancel`, {
        reason: 'race',
      })
      const final = await eventually(async () => {
        const r = await s.api.call('GET', `/outgoing-payments/${p.id}`)
        return r.body.state === 'sending' ? undefined : r.body
      })
      const after = await walletTotals(s, s.alice.id)
      const bobAfter = await walletTotals(s, s.bob.id)
      const ip = await s.app.client.incomingPayment.get({ url: p.ip.id, accessToken: s.ipToken })
      assert.equal(after.debitsPending, 0n, 'no reservation left')
      if (cancel.status === 200) {
        outcomes.cancelled++
        assert.equal(final.state, 'cancelled')
        assert.equal(await reservationState(s, p.id), 'voided')
        assert.equal(after.debitsPosted, before.debitsPosted)
        assert.equal(bobAfter.creditsPosted, bobBefore.creditsPosted)
        assert.equal(ip.receivedAmount.value, '0')
      } else {
        outcomes.completed++
        assert.equal(cancel.status, 409, JSON.stringify(cancel.body))
        assert.equal(cancel.body.error.code, 'wrong_state')
        assert.equal(final.state, 'completed')
        assert.equal(await reservationState(s, p.id), 'posted')
        assert.equal(after.debitsPosted - before.debitsPosted, 100n)
        assert.equal(bobAfter.creditsPosted - bobBefore.creditsPosted, 100n)
        assert.equal(ip.receivedAmount.value, '100')
      }
    }
    t.diagnostic(`cancel won ${outcomes.cancelled}, the worker won ${outcomes.completed}`)
    assert.equal(outcomes.cancelled + outcomes.completed, 12)
    assert.ok((await checkBooks(s.server.database.db)).balanced)
  })
})

describe('once sending has started (another ASE, packets held on the way)', () => {
  let a: TestServer
  let b: TestServer
  let atA: Ase
  let atB: Ase
  let proxy: IlpProxy
  let alice: { id: string; url: string }
  let bob: { id: string; url: string }
  before(async () => {
    a = await startTestServer({ ILP_ADDRESS: 'test.ase-a' })
    b = await startTestServer({ ILP_ADDRESS: 'test.ase-b' })
    alice = await createWalletAddress(a, { path: '/alice' })
    bob = await createWalletAddress(b, { path: '/bob' })
    proxy = await peerThroughProxy(a, b, 'bank-b', {
      out: 'a-to-b-secret-token',
      in: 'b-to-a-secret-token',
    })
    await peer(b, a, 'bank-a', { out: 'b-to-a-secret-token', in: 'a-to-b-secret-token' })
    await deposit(a, alice.id, 100_000n)
    atA = await walletApp(a)
    atB = await walletApp(b)
  })
  after(async () => {
    proxy?.release()
    await a?.close()
    await b?.close()
    await proxy?.close()
  })

  test('a payment whose packets are on their way is 409 and completes unharmed', async () => {
    const api = await adminContract(a)
    const { ip } = await incomingPayment(atB, bob.url, usd('2500'))
    const quote = await atA.app.client.quote.create(
      { url: a.openPaymentsUrl, accessToken: atA.quoteToken },
      { walletAddress: alice.url, receiver: ip.id, method: 'ilp' },
    )
    const token = await outgoingPaymentToken(a, atA.app, alice.url)
    proxy.mode = 'hold'
    const op = await atA.app.client.outgoingPayment.create(
      { url: a.openPaymentsUrl, accessToken: token },
      { walletAddress: alice.url, quoteId: quote.id },
    )
    await eventually(async () => (proxy.held() > 0 ? true : undefined), 10_000)
    const sending = await api.call('GET', `/outgoing-payments/${idOf(op.id)}`)
    assert.equal(sending.body.state, 'sending')
    assert.ok(sending.body.sendingSince)
    const refused = await api.call('POST', `/outgoing-payments/${idOf(op.id)}/cancel`, {
      reason: 'too late',
    })
    assert.equal(refused.status, 409)
    assert.equal(refused.body.error.code, 'already_sending')

    proxy.release()
    const done = await eventually(async () => {
      const r = await api.call('GET', `/outgoing-payments/${idOf(op.id)}`)
      return r.body.state === 'sending' ? undefined : r.body
    }, 20_000)
    assert.equal(done.state, 'completed')
    assert.equal(done.sentAmount, '2500')
    assert.ok((await checkBooks(a.database.db)).balanced)
    assert.ok((await checkBooks(b.database.db)).balanced)
  })
})
