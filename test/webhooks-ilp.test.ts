import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { checkBooks } from '../src/ledger/invariants.ts'
import { usd } from './helpers/amounts.ts'
import {
  createWalletAddress,
  deposit,
  eventually,
  startTestServer,
  type TestServer,
} from './helpers/server.ts'
import { type Ase, incomingPayment, pay, peer, walletApp } from './helpers/two-ases.ts'
import { type Receiver, startReceiver } from './helpers/webhook-receiver.ts'

/**
 * Webhooks of payments between two ASEs over Interledger: B's incoming payment is completed by
 * ILP packets (many of them), A's outgoing payment is sent by STREAM, and B's peer account for A
 * runs below its liquidity threshold.
 */
let a: TestServer
let b: TestServer
let atA: Ase
let atB: Ase
let alice: { id: string; url: string }
let bob: { id: string; url: string }
let atAReceiver: Receiver
let atBReceiver: Receiver
const fast = {
  WEBHOOK_POLL_MS: '50',
  WEBHOOK_RETRY_BASE_MS: '100',
  WEBHOOK_TIMEOUT_MS: '2000',
}

async function endpoint(server: TestServer, types: string[]): Promise<Receiver> {
  const receiver = await startReceiver()
  const res = await server.admin('POST', '/webhook-endpoints', {
    url: receiver.url,
    eventTypes: types,
  })
  assert.equal(res.status, 201)
  receiver.secrets = [res.body.secret]
  return receiver
}

before(async () => {
  a = await startTestServer({ ILP_ADDRESS: 'test.ase-a', ...fast })
  b = await startTestServer({ ILP_ADDRESS: 'test.ase-b', ...fast })
  alice = await createWalletAddress(a, { path: '/alice' })
  bob = await createWalletAddress(b, { path: '/bob' })
  await peer(a, b, 'bank-b', { out: 'a-to-b-secret-token', in: 'b-to-a-secret-token' })
  const toA = await peer(b, a, 'bank-a', { out: 'b-to-a-secret-token', in: 'a-to-b-secret-token' })
  // Packets of at most 1.00: a payment of 50.00 is credited in at least 50 packets.
  assert.equal((await b.admin('PATCH', `/peers/${toA}`, { maxPacketAmount: '100' })).status, 200)
  // The helper gives A a credit line of 100000000 at B: warn when less than 3000 of it is left.
  const threshold = await b.admin('PUT', `/peers/${toA}/liquidity-threshold`, {
    threshold: '99997000',
  })
  assert.equal(threshold.status, 200)
  await deposit(a, alice.id, 100_000n)
  atA = await walletApp(a)
  atB = await walletApp(b)
  atAReceiver = await endpoint(a, ['outgoing_payment.created', 'outgoing_payment.completed'])
  atBReceiver = await endpoint(b, [
    'incoming_payment.created',
    'incoming_payment.completed',
    'peer.liquidity_low',
  ])
})
after(async () => {
  await a?.close()
  await b?.close()
  await atAReceiver?.close()
  await atBReceiver?.close()
})

test('an incoming payment completed by ILP packets, its payment and the peer running low: each event once, in order', async () => {
  const { ip } = await incomingPayment(atB, bob.url, usd('5000'))
  const { payment } = await pay(atA, alice.url, ip.id)
  assert.equal(payment.failed, false)
  const booked = await b.database.db
    .selectFrom('ledger_transfers')
    .select((eb) => eb.fn.countAll<bigint>().as('n'))
    .where('reference', '=', `incoming_payment:${ip.id.split('/').at(-1)}`)
    .executeTakeFirstOrThrow()
  assert.ok(booked.n >= 50n, `${booked.n} packets`)
  // A second payment keeps the peer below its threshold: no second warning.
  const second = await incomingPayment(atB, bob.url, usd('1000'))
  assert.equal((await pay(atA, alice.url, second.ip.id)).payment.failed, false)

  await eventually(async () => (atBReceiver.accepted.length >= 5 ? true : undefined), 10_000)
  await eventually(async () => (atAReceiver.accepted.length >= 4 ? true : undefined), 10_000)
  await new Promise((r) => setTimeout(r, 300))
  for (const r of [atAReceiver, atBReceiver]) {
    assert.ok(
      r.requests.every((x) => x.payload !== undefined),
      'every signature verifies',
    )
    assert.equal(new Set(r.requests.map((x) => x.webhookId)).size, r.requests.length)
  }
  const atBTypes = (id: string) =>
    atBReceiver.accepted.filter((x) => x.payload.data.id === id).map((x) => x.payload.type)
  assert.deepEqual(atBTypes(ip.id), ['incoming_payment.created', 'incoming_payment.completed'])
  assert.deepEqual(atBTypes(second.ip.id), [
    'incoming_payment.created',
    'incoming_payment.completed',
  ])
  const completed = atBReceiver.accepted.find(
    (x) => x.payload.data.id === ip.id && x.payload.type === 'incoming_payment.completed',
  )!.payload.data
  assert.deepEqual(completed.receivedAmount, usd('5000'))
  assert.equal(completed.walletAddressId, bob.id)

  const low = atBReceiver.accepted.filter((x) => x.payload.type === 'peer.liquidity_low')
  assert.equal(low.length, 1)
  const data = low[0]!.payload.data
  assert.equal(data.name, 'bank-a')
  assert.deepEqual(data.creditLimit, usd('100000000'))
  assert.deepEqual(data.threshold, usd('99997000'))
  assert.ok(BigInt(data.remaining.value) < 99_997_000n)
  assert.equal(BigInt(data.owed.value) + BigInt(data.remaining.value), 100_000_000n)

  const atATypes = atAReceiver.accepted
    .filter((x) => x.payload.data.id === payment.id)
    .map((x) => x.payload.type)
  assert.deepEqual(atATypes, ['outgoing_payment.created', 'outgoing_payment.completed'])
  const sent = atAReceiver.accepted.find(
    (x) => x.payload.data.id === payment.id && x.payload.type === 'outgoing_payment.completed',
  )!.payload.data
  assert.deepEqual(sent.sentAmount, payment.sentAmount)
  assert.equal(sent.receiver, ip.id)
  assert.ok((await checkBooks(a.database.db)).balanced)
  assert.ok((await checkBooks(b.database.db)).balanced)
})
