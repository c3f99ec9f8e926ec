import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { deserializeIlpReply, isFulfill } from 'ilp-packet'
import { pino } from 'pino'
import { packetId } from '../src/ilp/outgoing.ts'
import { checkBooks } from '../src/ledger/invariants.ts'
import { type PaymentWorker, startPaymentWorker } from '../src/outgoing-payments/worker.ts'
import { createDeps } from '../src/server.ts'
import { usd } from './helpers/amounts.ts'
import { outgoingPaymentToken } from './helpers/clients.ts'
import { type IlpProxy, peerThroughProxy } from './helpers/ilp-proxy.ts'
import {
  balanceOf,
  createWalletAddress,
  deposit,
  eventually,
  startTestServer,
  type TestServer,
} from './helpers/server.ts'
import { type Ase, incomingPayment, peer, walletApp } from './helpers/two-ases.ts'

/**
 * The lease on a payment sent over Interledger, and the fencing behind it. A's payments to B go in
 * packets of 10 through a proxy that sees every packet, so that one payment lasts several leases;
 * a second payment worker on A's database stands ready to take any payment whose lease runs out.
 */
const LEASE_SECONDS = 2
let a: TestServer
let b: TestServer
let atA: Ase
let atB: Ase
let alice: { id: string; url: string }
let bob: { id: string; url: string }
let proxy: IlpProxy
let second: PaymentWorker
let toB: string
let toA: string
/** Packets that crossed the proxy, with whether they were fulfilled. */
let crossed: { id: string; fulfilled: boolean }[] = []

before(async () => {
  a = await startTestServer({
    ILP_ADDRESS: 'test.ase-a',
    PAYMENT_SEND_LEASE_SECONDS: String(LEASE_SECONDS),
    ILP_PACKET_EXPIRY_SECONDS: '3',
  })
  b = await startTestServer({ ILP_ADDRESS: 'test.ase-b' })
  alice = await createWalletAddress(a, { path: '/alice', publicName: 'Alice' })
  bob = await createWalletAddress(b, { path: '/bob', publicName: 'Bob' })
  proxy = await peerThroughProxy(a, b, 'bank-b', {
    out: 'a-to-b-secret-token',
    in: 'b-to-a-secret-token',
  })
  proxy.onPacket = (prepare, reply) =>
    crossed.push({ id: packetId(prepare), fulfilled: isFulfill(deserializeIlpReply(reply)) })
  toA = await peer(b, a, 'bank-a', { out: 'b-to-a-secret-token', in: 'a-to-b-secret-token' })
  toB = (await a.admin('GET', '/peers')).body.items.find((p: any) => p.name === 'bank-b').id
  // B takes packets of at most 10 from A: a payment of 300.00 is 3000 packets.
  assert.equal((await b.admin('PATCH', `/peers/${toA}`, { maxPacketAmount: '10' })).status, 200)
  await deposit(a, alice.id, 1_000_000n)
  atA = await walletApp(a)
  atB = await walletApp(b)
  second = startPaymentWorker(
    createDeps({
      config: a.config,
      db: a.database.db,
      poolStats: a.database.poolStats,
      logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    }),
    { pollMs: 100 },
  )
})
after(async () => {
  await second?.stop()
  await a?.close()
  await b?.close()
  await proxy?.close()
})

/** Quotes and creates a payment of `debit` cents from Alice to a new incoming payment of Bob's. */
async function payBob(debit: string) {
  const { ip, read } = await incomingPayment(atB, bob.url)
  const quote = await atA.app.client.quote.create(
    { url: a.openPaymentsUrl, accessToken: atA.quoteToken },
    { walletAddress: alice.url, receiver: ip.id, method: 'ilp', debitAmount: usd(debit) } as never,
  )
  const token = await outgoingPaymentToken(a, atA.app, alice.url)
  const created = await atA.app.client.outgoingPayment.create(
    { url: a.openPaymentsUrl, accessToken: token },
    { walletAddress: alice.url, quoteId: quote.id },
  )
  return {
    id: created.id.split('/').at(-1)!,
    received: async () => BigInt((await read()).receivedAmount.value),
  }
}

const payment = (id: string) =>
  a.database.db
    .selectFrom('outgoing_payments')
    .selectAll()
    .where('id', '=', id)
    .executeTakeFirstOrThrow()

const ended = (id: string) =>
  eventually(async () => {
    const row = await payment(id)
    return row.state === 'sending' ? undefined : row
  }, 120_000)

/** Both banks' books balance, and what A owes B over the link is what B says A is owed. */
async function booksAgree() {
  assert.ok((await checkBooks(a.database.db)).balanced, 'A’s books balance')
  assert.ok((await checkBooks(b.database.db)).balanced, 'B’s books balance')
  const owedByA = BigInt((await a.admin('GET', `/peers/${toB}/balance`)).body.balance)
  const owedToB = BigInt((await b.admin('GET', `/peers/${toA}/balance`)).body.balance)
  assert.equal(owedByA, -owedToB, 'both sides of the link agree')
}

test('a payment outliving its lease is not taken over while its attempt is alive', async () => {
  crossed = []
  const start = await balanceOf(a, alice.id)
  const began = Date.now()
  const { id, received } = await payBob('30000')
  const end = await ended(id)
  const took = Date.now() - began
  // Otherwise this shows nothing: the payment must have lasted beyond several leases.
  assert.ok(took > 2 * LEASE_SECONDS * 1000, `the payment took ${took} ms`)
  assert.equal(end.state, 'completed', end.failure ?? '')
  assert.equal(end.attempts, 1, 'one attempt, never taken over: its lease was renewed')
  assert.equal(end.sent_amount, 30000n)
  assert.equal(await received(), 30000n)
  assert.equal(start - (await balanceOf(a, alice.id)), 30000n + end.fee_amount)
  assert.equal(crossed.filter((k) => k.fulfilled).length, 3000)
  await booksAgree()
})

test('an attempt whose payment was taken over sends nothing more and books nothing', async () => {
  crossed = []
  const start = await balanceOf(a, alice.id)
  const { id, received } = await payBob('30000')
  await eventually(
    async () => ((await payment(id)).sent_amount >= 3000n ? true : undefined),
    60_000,
  )
  // What a worker taking the payment over does to the claim (a stalled attempt whose lease ran
  // out), under the payment's row lock, so that the packets recorded by then are all there are.
  const recorded = await a.database.db.transaction().execute(async (trx) => {
    const row = await trx
      .selectFrom('outgoing_payments')
      .select(['state', 'attempts'])
      .where('id', '=', id)
      .forUpdate()
      .executeTakeFirstOrThrow()
    assert.deepEqual(row, { state: 'sending', attempts: 1 })
    const packets = await trx
      .selectFrom('outgoing_packets')
      .select(['id', 'amount'])
      .where('payment_id', '=', id)
      .execute()
    // Another claim (the attempt number raised) whose lease is over at once: a worker takes it.
    await trx
      .updateTable('outgoing_payments')
      .set({ attempts: row.attempts + 1, next_attempt_at: new Date() })
      .where('id', '=', id)
      .execute()
    return packets
  })
  const end = await ended(id)
  assert.equal(end.state, 'failed')
  assert.equal(end.failure, 'interrupted while sending')
  // The claim moved once, then a worker took the payment (and again, if it had to wait for
  // packets still in flight to expire).
  assert.ok(end.attempts >= 3, `attempts: ${end.attempts}`)
  // Whatever the first attempt still had in flight was recorded before it lost the payment.
  const ids = new Set(recorded.map((k) => k.id))
  const unrecorded = crossed.filter((k) => k.fulfilled && !ids.has(k.id))
  assert.equal(unrecorded.length, 0, 'no packet recorded after the claim moved was paid')
  const recordedSum = recorded.reduce((sum, k) => sum + k.amount, 0n)
  assert.ok(end.sent_amount <= recordedSum, `${end.sent_amount} booked of ${recordedSum} recorded`)
  assert.ok(end.sent_amount < 30000n, 'the payment stopped part way')
  // Nothing leaves afterwards either.
  const fulfilled = crossed.filter((k) => k.fulfilled).length
  await sleep(1500)
  assert.equal(crossed.filter((k) => k.fulfilled).length, fulfilled)
  // Everything Bob got was charged to Alice (no fee on a failed payment), and nothing more.
  const got = await received()
  assert.equal(got, end.sent_amount)
  assert.equal(start - (await balanceOf(a, alice.id)), got)
  assert.equal(BigInt(fulfilled) * 10n, got)
  await booksAgree()
})
