import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import type { IncomingPaymentWithPaymentMethods } from '@interledger/open-payments'
import { deserializeIlpPrepare, type IlpReply, isFulfill } from 'ilp-packet'
import pino from 'pino'
import type { Deps } from '../src/deps.ts'
import { bookingId, createBooker, type Packet } from '../src/ilp/receive.ts'
import { getIncomingPayment } from '../src/incoming-payments/service.ts'
import { checkBooks } from '../src/ledger/invariants.ts'
import { getPeer } from '../src/peers/service.ts'
import { getWalletAddress } from '../src/wallet-addresses/service.ts'
import type { ClientIdentity } from './helpers/clients.ts'
import {
  addPeer,
  peerDebt,
  sendPacket,
  startReceivingAse,
  streamPrepare,
  type TestPeer,
} from './helpers/ilp.ts'
import { balanceOf, type TestServer } from './helpers/server.ts'

/**
 * Packets that arrive together are booked together (group commit, src/ilp/receive.ts). Hammered
 * with concurrent packets, repeats of the same packet and more money than fits, every packet is
 * still booked at most once, a Fulfill means booked, and the books balance.
 */
let server: TestServer
let app: ClientIdentity
let bob: { id: string; url: string }
let token: string

before(async () => {
  ;({ server, app, bob, token } = await startReceivingAse())
})
after(() => server.close())

const createIncomingPayment = (incomingAmount?: bigint) =>
  app.client.incomingPayment.create(
    { url: server.openPaymentsUrl, accessToken: token },
    {
      walletAddress: bob.url,
      ...(incomingAmount !== undefined && {
        incomingAmount: { value: incomingAmount.toString(), assetCode: 'USD', assetScale: 2 },
      }),
    },
  )

const packetsFor = (ip: IncomingPaymentWithPaymentMethods, count: number, amount: bigint) => {
  const method = ip.methods[0] as { ilpAddress: string; sharedSecret: string }
  return Array.from({ length: count }, () => streamPrepare({ ...method, amount }))
}

/** What the ledger booked into the payment, counted from its transfers. */
async function bookedInto(ipUrl: string): Promise<{ count: number; sum: bigint }> {
  const id = ipUrl.split('/').at(-1)!
  const rows = await server.database.db
    .selectFrom('ledger_transfers')
    .select(['amount'])
    .where('reference', '=', `incoming_payment:${id}`)
    .execute()
  return { count: rows.length, sum: rows.reduce((s, r) => s + r.amount, 0n) }
}

async function received(ipUrl: string): Promise<{ amount: bigint; completed: boolean }> {
  const ip = (await getIncomingPayment(server.database.db, ipUrl.split('/').at(-1)!))!
  return { amount: ip.receivedAmount, completed: ip.completedAt !== null }
}

test('duplicates and concurrent packets over capacity: each booked once, never beyond the amount', async () => {
  const peer = await addPeer(server, { name: 'ase-a', creditLimit: 1_000_000n })
  const ip = await createIncomingPayment(1_000n)
  // 300 packets of 5 (1,500 for a payment of 1,000), each sent 3 times, all at once.
  const packets = packetsFor(ip, 300, 5n)
  const walletBefore = await balanceOf(server, bob.id)
  const sends = packets.flatMap((p, i) =>
    [0, 1, 2].map(async () => ({ i, reply: await sendPacket(server.ilpUrl, peer, p) })),
  )
  const replies = await Promise.all(sends)

  const fulfilled = new Set(replies.filter((r) => isFulfill(r.reply)).map((r) => r.i))
  // Every copy of a packet got the same answer.
  for (const [i] of packets.entries()) {
    const kinds = new Set(replies.filter((r) => r.i === i).map((r) => isFulfill(r.reply)))
    assert.equal(kinds.size, 1, `copies of packet ${i} were answered differently`)
  }
  const fulfilledSum = 5n * BigInt(fulfilled.size)
  const after = await received(ip.id)
  assert.equal(after.amount, fulfilledSum, 'receivedAmount is the sum of the fulfilled packets')
  assert.equal(after.amount, 1_000n, 'the payment is filled exactly')
  assert.equal(after.completed, true)
  assert.deepEqual(await bookedInto(ip.id), { count: fulfilled.size, sum: fulfilledSum })
  assert.equal((await balanceOf(server, bob.id)) - walletBefore, fulfilledSum)
  assert.equal(await peerDebt(server, peer), fulfilledSum)
  assert.equal((await checkBooks(server.database.db)).balanced, true)
})

test('more than the peer’s credit line, concurrently: what fits is booked, the rest refused', async () => {
  const peer = await addPeer(server, { name: 'ase-small', creditLimit: 100n })
  const ip = await createIncomingPayment()
  const packets = packetsFor(ip, 60, 7n)
  const replies = await Promise.all(packets.map((p) => sendPacket(server.ilpUrl, peer, p)))
  const fulfilled = replies.filter(isFulfill).length
  for (const r of replies.filter((r) => !isFulfill(r))) {
    assert.equal((r as { code: string }).code, 'T04', 'refused for the peer’s liquidity')
  }
  // 14 packets of 7 fit in a credit line of 100, whatever the order.
  assert.equal(fulfilled, 14)
  assert.equal((await received(ip.id)).amount, 7n * 14n)
  assert.equal(await peerDebt(server, peer), 7n * 14n)
  assert.equal((await checkBooks(server.database.db)).balanced, true)
})

test('the same packets through two bookers at once (two processes): each booked once', async () => {
  const db = server.database.db
  const deps = { db, logger: pino({ level: 'silent' }) } as unknown as Deps
  const [one, two] = [createBooker(deps), createBooker(deps)]
  const testPeer: TestPeer = await addPeer(server, { name: 'ase-twice', creditLimit: 1_000_000n })
  const from = (await getPeer(db, { id: testPeer.id }))!
  const ip = await createIncomingPayment(500n)
  const payment = (await getIncomingPayment(db, ip.id.split('/').at(-1)!))!
  const owner = (await getWalletAddress(db, { id: payment.walletAddressId }))!
  const wallet = { ledgerAccountId: owner.ledgerAccountId, assetId: owner.assetId }
  // 150 packets of 4 (600 for 500): every packet goes to both bookers, and twice to the first.
  const packets: Packet[] = packetsFor(ip, 150, 4n).map((bytes) => {
    const prepare = deserializeIlpPrepare(bytes)
    return {
      bookingId: bookingId(prepare, from),
      from,
      payment,
      wallet,
      sent: 4n,
      received: 4n,
      expiresAt: prepare.expiresAt,
    }
  })
  const outcomes = await Promise.all(
    packets.flatMap((p, i) =>
      [one(p), two(p), one(p)].map(async (o) => ({
        i,
        booked: ['booked', 'completed'].includes(await o),
      })),
    ),
  )
  for (const [i] of packets.entries()) {
    const answers = new Set(outcomes.filter((o) => o.i === i).map((o) => o.booked))
    assert.equal(answers.size, 1, `packet ${i} was answered differently`)
  }
  const booked = new Set(outcomes.filter((o) => o.booked).map((o) => o.i)).size
  assert.equal(booked, 125)
  assert.deepEqual(await received(ip.id), { amount: 500n, completed: true })
  assert.deepEqual(await bookedInto(ip.id), { count: 125, sum: 500n })
  assert.equal(await peerDebt(server, testPeer), 500n)
  assert.equal((await checkBooks(db)).balanced, true)
})

test('a packet alone is booked, and its repeat later gets its Fulfill, booked once', async () => {
  const peer = await addPeer(server, { name: 'ase-alone', creditLimit: 1_000_000n })
  const ip = await createIncomingPayment()
  const [first] = packetsFor(ip, 1, 3n)
  const reply: IlpReply = await sendPacket(server.ilpUrl, peer, first!)
  assert.equal(isFulfill(reply), true)
  assert.equal((await received(ip.id)).amount, 3n)
  // Sent again later (its answer lost): the same Fulfill, nothing booked twice.
  const again = await sendPacket(server.ilpUrl, peer, first!)
  assert.equal(isFulfill(again), true)
  assert.deepEqual(await bookedInto(ip.id), { count: 1, sum: 3n })
})

test('a packet refused for its peer’s credit takes no room: the rest of its batch is answered as alone', async () => {
  const db = server.database.db
  // A batch that fails as a whole is booked one by one (and would pass for the wrong reason).
  const warnings: unknown[] = []
  const logger = { warn: (...args: unknown[]) => warnings.push(args) }
  const deps = { db, logger } as unknown as Deps
  const rich = await addPeer(server, { name: 'ase-room-rich', creditLimit: 1_000_000n })
  const asPacket = async (
    ip: IncomingPaymentWithPaymentMethods,
    peer: TestPeer,
    amount: bigint,
  ) => {
    const from = (await getPeer(db, { id: peer.id }))!
    const payment = (await getIncomingPayment(db, ip.id.split('/').at(-1)!))!
    const owner = (await getWalletAddress(db, { id: payment.walletAddressId }))!
    const [bytes] = packetsFor(ip, 1, amount)
    const prepare = deserializeIlpPrepare(bytes!)
    return {
      bookingId: bookingId(prepare, from),
      from,
      payment,
      wallet: { ledgerAccountId: owner.ledgerAccountId, assetId: owner.assetId },
      sent: amount,
      received: amount,
      expiresAt: prepare.expiresAt,
    } satisfies Packet
  }
  // Into a payment of 100, in this order: 80 from a peer whose credit line is 50 (refused, T04),
  // then a packet that fits the 100 only if the refused one took none of it.
  const cases = [
    { name: 'two peers', second: { peer: 'b', amount: 60n } },
    { name: 'one peer', second: { peer: 'a', amount: 40n } },
  ]
  let n = 0
  const run = async (second: { peer: string; amount: bigint }, batched: boolean) => {
    n += 1
    const book = createBooker(deps)
    const a = await addPeer(server, { name: `ase-room-a${n}`, creditLimit: 50n })
    const b = await addPeer(server, { name: `ase-room-b${n}`, creditLimit: 1_000_000n })
    const ip = await createIncomingPayment(100n)
    const packets = [
      await asPacket(ip, a, 80n),
      await asPacket(ip, second.peer === 'a' ? a : b, second.amount),
    ]
    // The blocker goes alone; the packets queue behind it and share the next batch.
    const blocker = await asPacket(await createIncomingPayment(), rich, 1n)
    let outcomes: string[]
    if (batched) [, ...outcomes] = await Promise.all([book(blocker), ...packets.map(book)])
    else {
      await book(blocker)
      outcomes = []
      for (const p of packets) outcomes.push(await book(p))
    }
    return { outcomes, ip, debts: [await peerDebt(server, a), await peerDebt(server, b)] }
  }
  for (const { name, second } of cases) {
    const alone = await run(second, false)
    const together = await run(second, true)
    assert.deepEqual(alone.outcomes, ['peer_out_of_credit', 'booked'], name)
    assert.deepEqual(together.outcomes, alone.outcomes, `${name}: in one batch as alone`)
    for (const { ip, debts } of [alone, together]) {
      // Only the second packet is booked, once; the refused one moved nothing.
      assert.deepEqual(await received(ip.id), { amount: second.amount, completed: false })
      assert.deepEqual(await bookedInto(ip.id), { count: 1, sum: second.amount })
      assert.deepEqual(debts, second.peer === 'a' ? [second.amount, 0n] : [0n, second.amount])
    }
  }
  assert.deepEqual(warnings, [], 'every batch was booked as a batch')
  assert.equal((await checkBooks(db)).balanced, true)
})
