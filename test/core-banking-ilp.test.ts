import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { checkBooks } from '../src/ledger/invariants.ts'
import { usd } from './helpers/amounts.ts'
import { grantToken } from './helpers/clients.ts'
import {
  balanceOf,
  createWalletAddress,
  deposit,
  eventually,
  startTestServer,
  type TestServer,
} from './helpers/server.ts'
import { type Ase, pay, peer, peerPosition, walletApp } from './helpers/two-ases.ts'
import {
  type Answer,
  type Received,
  type Receiver,
  startReceiver,
} from './helpers/webhook-receiver.ts'

/**
 * Core banking at the receiving ASE of an Interledger payment: B asks its core banking once per
 * incoming payment, however many packets arrive, and a decline rejects the packets with a final
 * error so that A's sender stops, with nothing credited and both ledgers balanced.
 */
let a: TestServer
let b: TestServer
let core: Receiver
/** A's core banking: approves every outgoing payment, accepts posts and releases. */
let coreA: Receiver
let atA: Ase
let atB: Ase
let alice: { id: string; url: string } // at A
let bob: { id: string; url: string } // at B

const json = (body: unknown): Answer => ({
  status: 200,
  body: JSON.stringify(body),
  headers: { 'content-type': 'application/json' },
})
const lastSegment = (url: string) => url.split('/').at(-1)!

before(async () => {
  core = await startReceiver((r) => {
    const msg = r.payload
    if (msg?.type !== 'incoming_payment.approve') return 401
    return msg.data.incomingPayment.metadata?.compliance === 'refuse'
      ? json({ decision: 'decline', reason: 'sanctions screening' })
      : json({ decision: 'approve' })
  })
  core.secrets = [`whsec_${randomBytes(32).toString('base64')}`]
  coreA = await startReceiver((r) =>
    r.payload?.type === 'outgoing_payment.approve' ? json({ decision: 'approve' }) : 204,
  )
  coreA.secrets = [`whsec_${randomBytes(32).toString('base64')}`]
  a = await startTestServer({
    ILP_ADDRESS: 'test.ase-a',
    CORE_BANKING_URL: coreA.url,
    CORE_BANKING_SECRET: coreA.secrets[0]!,
    CORE_BANKING_POLL_MS: '50',
  })
  b = await startTestServer({
    ILP_ADDRESS: 'test.ase-b',
    CORE_BANKING_URL: core.url,
    CORE_BANKING_SECRET: core.secrets[0]!,
    CORE_BANKING_TIMEOUT_MS: '2000',
  })
  alice = await createWalletAddress(a, { path: '/alice' })
  bob = await createWalletAddress(b, { path: '/bob' })
  await peer(a, b, 'bank-b', { out: 'a-to-b-secret-token', in: 'b-to-a-secret-token' })
  await peer(b, a, 'bank-a', { out: 'b-to-a-secret-token', in: 'a-to-b-secret-token' })
  await deposit(a, alice.id, 1_000_000n)
  atA = await walletApp(a)
  atB = await walletApp(b)
})
after(async () => {
  await a?.close()
  await b?.close()
  await core?.close()
  await coreA?.close()
})

/** The post or release A's core banking accepted for a payment of A's, once it arrived. */
async function endOf(paymentUrl: string) {
  const id = lastSegment(paymentUrl)
  const of = (r: Received) =>
    r.payload?.data?.paymentId === id && r.payload.type !== 'outgoing_payment.approve'
  await eventually(async () => (coreA.accepted.some(of) ? true : undefined))
  await new Promise((r) => setTimeout(r, 200))
  const ends = coreA.requests.filter(of)
  assert.equal(ends.length, 1)
  return ends[0]!.payload
}

async function incomingPayment(metadata?: Record<string, unknown>) {
  const token = await grantToken(b, atB.app, [
    { type: 'incoming-payment', actions: ['create', 'read'], identifier: bob.url },
  ])
  const ip = await atB.app.client.incomingPayment.create(
    { url: b.openPaymentsUrl, accessToken: token },
    { walletAddress: bob.url, incomingAmount: usd('1000'), ...(metadata && { metadata }) },
  )
  return { ip, read: () => atB.app.client.incomingPayment.get({ url: ip.id, accessToken: token }) }
}

const asked = (ipUrl: string) =>
  core.requests.filter(
    (r) =>
      r.payload?.type === 'incoming_payment.approve' &&
      r.payload.data.incomingPayment.paymentId === lastSegment(ipUrl),
  ).length

const packetsBooked = async () =>
  Number(
    (
      await b.database.db
        .selectFrom('ledger_transfers')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .where('id', 'like', 'ilp:%')
        .executeTakeFirstOrThrow()
    ).n,
  )

describe('incoming money over Interledger', () => {
  test('approved: asked once for a payment of many packets, which completes', async () => {
    // B takes at most 50 per packet from A.
    const fromA = (await b.admin('GET', '/peers')).body.items[0].id
    await b.admin('PATCH', `/peers/${fromA}`, { maxPacketAmount: '50' })
    try {
      const { ip, read } = await incomingPayment()
      const booked = await packetsBooked()
      const { quote, payment } = await pay(atA, alice.url, ip.id)
      assert.equal(payment.failed, false)
      assert.deepEqual((await read()).receivedAmount, usd('1000'))
      const packets = (await packetsBooked()) - booked
      assert.ok(packets >= 20, `${packets} packets`)
      assert.equal(asked(ip.id), 1)
      // A's core banking approved the quote's debit amount (with its slippage margin) and is told
      // to post what was sent and release the rest.
      const post = await endOf(payment.id)
      const approved = BigInt(quote.debitAmount.value)
      assert.deepEqual(
        [post.type, post.data.state, post.data.approvedAmount, post.data.postAmount],
        ['outgoing_payment.post', 'completed', String(approved), payment.sentAmount.value],
      )
      assert.equal(BigInt(post.data.releaseAmount), approved - BigInt(payment.sentAmount.value))
      const metrics = (await b.admin('GET', '/metrics')).body as string
      assert.match(
        metrics,
        /op_core_banking_callouts_total\{kind="incoming",outcome="approved"\} 1/,
      )
    } finally {
      await b.admin('PATCH', `/peers/${fromA}`, { maxPacketAmount: null })
    }
  })

  test('declined: the sender’s payment fails, nothing is credited, both ledgers balance', async () => {
    const { ip, read } = await incomingPayment({ compliance: 'refuse' })
    const [aliceBefore, bobBefore] = [await balanceOf(a, alice.id), await balanceOf(b, bob.id)]
    const [positionA, positionB] = [await peerPosition(a), await peerPosition(b)]
    const { payment } = await pay(atA, alice.url, ip.id)
    assert.equal(payment.failed, true)
    assert.deepEqual(payment.sentAmount, usd('0'))
    const failure = await a.database.db
      .selectFrom('outgoing_payments')
      .select('failure')
      .where('id', '=', lastSegment(payment.id))
      .executeTakeFirstOrThrow()
    assert.ok(failure.failure)
    assert.deepEqual((await read()).receivedAmount, usd('0'))
    assert.equal(await balanceOf(a, alice.id), aliceBefore)
    assert.equal(await balanceOf(b, bob.id), bobBefore)
    assert.equal(await peerPosition(a), positionA)
    assert.equal(await peerPosition(b), positionB)
    const release = await endOf(payment.id)
    assert.deepEqual(
      [release.type, release.data.state, release.data.postAmount],
      ['outgoing_payment.release', 'failed', '0'],
    )
    // A second try is refused by the stored decision, without asking again.
    const again = await pay(atA, alice.url, ip.id)
    assert.equal(again.payment.failed, true)
    assert.equal(asked(ip.id), 1)
    assert.ok((await checkBooks(a.database.db)).balanced)
    assert.ok((await checkBooks(b.database.db)).balanced)
  })
})
