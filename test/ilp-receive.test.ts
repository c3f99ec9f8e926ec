import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { deserializeIlpPrepare } from 'ilp-packet'
import { checkBooks } from '../src/ledger/invariants.ts'
import { usd } from './helpers/amounts.ts'
import type { ClientIdentity } from './helpers/clients.ts'
import {
  addPeer,
  payOverStream,
  peerDebt,
  peerPlugin,
  startReceivingAse,
  type TestPeer,
} from './helpers/ilp.ts'
import { balanceOf, type TestServer } from './helpers/server.ts'

/**
 * Another ASE's STREAM sender (`@interledger/pay`, as Rafiki runs it) pays incoming payments of
 * this server over ILP-over-HTTP, as one of its peers.
 */
let server: TestServer
let app: ClientIdentity
let bob: { id: string; url: string }
let token: string
let peer: TestPeer
let smallPackets: TestPeer
let euroPeer: TestPeer

const USD = { code: 'USD', scale: 2 }

before(async () => {
  ;({ server, app, bob, token } = await startReceivingAse({
    RATES: JSON.stringify({ EUR: { USD: '1.25' } }),
  }))
  const credit = 1_000_000n
  peer = await addPeer(server, { name: 'ase-a', creditLimit: credit })
  smallPackets = await addPeer(server, { name: 'ase-c', creditLimit: credit, maxPacketAmount: 10n })
  euroPeer = await addPeer(server, {
    name: 'ase-eu',
    assetCode: 'EUR',
    assetScale: 2,
    creditLimit: credit,
  })
})
after(() => server.close())

const createIncomingPayment = (incomingAmount?: bigint) =>
  app.client.incomingPayment.create(
    { url: server.openPaymentsUrl, accessToken: token },
    {
      walletAddress: bob.url,
      ...(incomingAmount !== undefined && { incomingAmount: usd(incomingAmount) }),
    },
  )
const read = (id: string) => app.client.incomingPayment.get({ url: id, accessToken: token })

describe('receiving STREAM payments from a peer', () => {
  test('fixed delivery: exact amount, completed, wallet and peer account move alike', async () => {
    const ip = await createIncomingPayment(12_345n)
    const [walletBefore, debtBefore] = [
      await balanceOf(server, bob.id),
      await peerDebt(server, peer),
    ]
    const progress = await payOverStream({
      plugin: peerPlugin(server.ilpUrl, peer),
      incomingPayment: ip,
      sourceAsset: USD,
      deliver: 12_345n,
    })
    assert.equal(progress.error, undefined)
    assert.equal(progress.amountDelivered, 12_345n)
    assert.equal(progress.amountSent, 12_345n)
    const done = await read(ip.id)
    assert.deepEqual(done.receivedAmount, usd(12_345n))
    assert.equal(done.completed, true)
    assert.equal((await balanceOf(server, bob.id)) - walletBefore, 12_345n)
    assert.equal((await peerDebt(server, peer)) - debtBefore, 12_345n)
    assert.equal((await checkBooks(server.database.db)).balanced, true)
  })

  test('a payment split into many packets by the peer’s maximum packet amount', async () => {
    const ip = await createIncomingPayment(500n)
    const debtBefore = await peerDebt(server, smallPackets)
    const plugin = peerPlugin(server.ilpUrl, smallPackets)
    const progress = await payOverStream({
      plugin,
      incomingPayment: ip,
      sourceAsset: USD,
      deliver: 500n,
    })
    assert.equal(progress.error, undefined)
    assert.equal(progress.amountDelivered, 500n)
    const amounts = plugin.sent.map((p) => BigInt(deserializeIlpPrepare(p).amount))
    assert.ok(amounts.filter((a) => a === 10n).length >= 50)
    assert.ok(plugin.sent.length <= 100, `${plugin.sent.length} packets`)
    const done = await read(ip.id)
    assert.deepEqual(done.receivedAmount, usd(500n))
    assert.equal(done.completed, true)
    assert.equal((await peerDebt(server, smallPackets)) - debtBefore, 500n)
  })

  test('paying more than incomingAmount stops exactly at it', async () => {
    const ip = await createIncomingPayment(100n)
    const walletBefore = await balanceOf(server, bob.id)
    const progress = await payOverStream({
      plugin: peerPlugin(server.ilpUrl, smallPackets),
      incomingPayment: ip,
      sourceAsset: USD,
      deliver: 150n,
    })
    assert.ok(progress.error, 'the sender is stopped')
    assert.equal(progress.amountDelivered, 100n)
    const done = await read(ip.id)
    assert.deepEqual(done.receivedAmount, usd(100n))
    assert.equal(done.completed, true)
    assert.equal((await balanceOf(server, bob.id)) - walletBefore, 100n)
    assert.equal((await checkBooks(server.database.db)).balanced, true)
  })

  test('a completed incoming payment cannot be paid', async () => {
    const ip = await createIncomingPayment(100n)
    const plugin = peerPlugin(server.ilpUrl, peer)
    await payOverStream({ plugin, incomingPayment: ip, sourceAsset: USD, deliver: 100n })
    const debt = await peerDebt(server, peer)
    await assert.rejects(
      payOverStream({ plugin, incomingPayment: ip, sourceAsset: USD, deliver: 1n }),
      (err) => err === 'ConnectorError',
    )
    assert.deepEqual((await read(ip.id)).receivedAmount, usd(100n))
    assert.equal(await peerDebt(server, peer), debt)
  })

  test('cross-currency: EUR from the peer, USD to the receiver, via settlement', async () => {
    const ip = await createIncomingPayment()
    const walletBefore = await balanceOf(server, bob.id)
    const progress = await payOverStream({
      plugin: peerPlugin(server.ilpUrl, euroPeer),
      incomingPayment: ip,
      sourceAsset: { code: 'EUR', scale: 2 },
      deliver: 1000n,
      prices: { EUR: 1.25, USD: 1 },
      slippage: 0.01,
    })
    assert.equal(progress.error, undefined)
    assert.ok(progress.amountDelivered >= 1000n)
    // 1 EUR = 1.25 USD, rounded down at the receiver.
    assert.equal(progress.amountDelivered, (progress.amountSent * 5n) / 4n)
    assert.deepEqual((await read(ip.id)).receivedAmount, usd(progress.amountDelivered))
    assert.equal((await balanceOf(server, bob.id)) - walletBefore, progress.amountDelivered)
    assert.equal(await peerDebt(server, euroPeer), progress.amountSent)
    assert.equal((await checkBooks(server.database.db)).balanced, true)
  })
})
