import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import type { IncomingPaymentWithPaymentMethods } from '@interledger/open-payments'
import {
  deserializeIlpPrepare,
  deserializeIlpReply,
  type IlpFulfill,
  type IlpReject,
  isFulfill,
  serializeIlpPrepare,
  serializeIlpReject,
} from 'ilp-packet'
import { pino } from 'pino'
import { createIlpApp } from '../src/ilp/http-server.ts'
import { createStreamReceiver } from '../src/ilp/stream-receiver.ts'
import { checkBooks } from '../src/ledger/invariants.ts'
import { createDeps } from '../src/server.ts'
import { usd } from './helpers/amounts.ts'
import { type ClientIdentity, createClientIdentity, grantToken } from './helpers/clients.ts'
import {
  addPeer,
  peerDebt,
  postIlp,
  sendPacket,
  streamPrepare,
  type TestPeer,
} from './helpers/ilp.ts'
import { createWalletAddress, startTestServer, type TestServer } from './helpers/server.ts'

/** The ILP-over-HTTP endpoint and the packet pipeline, packet by packet. */
let server: TestServer
let app: ClientIdentity
let bob: { id: string; url: string }
let token: string
let peer: TestPeer
let noCredit: TestPeer

before(async () => {
  server = await startTestServer({ ILP_ADDRESS: 'test.ase-b' })
  app = await createClientIdentity(server, { path: '/app' })
  bob = await createWalletAddress(server, { path: '/bob' })
  token = await grantToken(server, app, [
    { type: 'incoming-payment', actions: ['create', 'read', 'complete'], identifier: bob.url },
  ])
  peer = await addPeer(server, { name: 'ase-a', creditLimit: 1_000_000n, maxPacketAmount: 1000n })
  noCredit = await addPeer(server, { name: 'ase-broke' })
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
const received = async (id: string) =>
  BigInt(
    (await app.client.incomingPayment.get({ url: id, accessToken: token })).receivedAmount.value,
  )
const packetFor = (ip: IncomingPaymentWithPaymentMethods, amount: bigint, expiresAt?: Date) =>
  streamPrepare({ ...ip.methods[0]!, amount, ...(expiresAt && { expiresAt }) })
const prepare = (fields: { amount?: string; destination: string; expiresAt?: Date }) =>
  serializeIlpPrepare({
    amount: fields.amount ?? '1',
    expiresAt: fields.expiresAt ?? new Date(Date.now() + 30_000),
    executionCondition: randomBytes(32),
    destination: fields.destination,
    data: Buffer.alloc(0),
  })
const rejected = async (packet: Buffer, from = peer) => {
  const reply = await sendPacket(server.ilpUrl, from, packet)
  assert.ok(!isFulfill(reply), 'expected a Reject')
  return reply as IlpReject
}

describe('ILP over HTTP: transport', () => {
  test('a missing or unknown bearer token is 401, before anything else', async () => {
    const body = prepare({ destination: 'test.ase-b.x' })
    for (const t of [undefined, 'not-a-peer-token-at-all']) {
      const res = await postIlp(server.ilpUrl, body, t === undefined ? {} : { token: t })
      assert.equal(res.status, 401)
      assert.equal(JSON.parse(res.body.toString()).error.code, 'unauthorized')
    }
    const wrongType = await postIlp(server.ilpUrl, body, {
      token: 'unknown-token-unknown',
      contentType: 'application/json',
    })
    assert.equal(wrongType.status, 401)
  })

  test('content type other than application/octet-stream is 400', async () => {
    const body = prepare({ destination: 'test.ase-b.x' })
    for (const contentType of ['application/json', 'text/plain', '']) {
      const res = await postIlp(server.ilpUrl, body, { token: peer.token, contentType })
      assert.equal(res.status, 400, contentType)
      assert.equal(JSON.parse(res.body.toString()).error.code, 'invalid_request')
    }
  })

  test('an oversized body is 413, garbage is 400', async () => {
    const big = await postIlp(server.ilpUrl, randomBytes(70 * 1024), { token: peer.token })
    assert.equal(big.status, 413)
    for (const garbage of [randomBytes(40), Buffer.alloc(0), Buffer.from([12, 200, 1])]) {
      const res = await postIlp(server.ilpUrl, garbage, { token: peer.token })
      assert.equal(res.status, 400)
      assert.equal(JSON.parse(res.body.toString()).error.description, 'body is not an ILP Prepare')
    }
    // A well-formed packet, but not a Prepare.
    const reject = serializeIlpReject({
      code: 'F00',
      triggeredBy: '',
      message: '',
      data: Buffer.alloc(0),
    })
    assert.equal((await postIlp(server.ilpUrl, reject, { token: peer.token })).status, 400)
  })

  test('every ILP outcome is a 200 with the packet; POST / is accepted too', async () => {
    const res = await postIlp(
      server.ilpUrl.replace(/\/ilp$/, '/'),
      prepare({ destination: 'test.nowhere.x' }),
      { token: peer.token },
    )
    assert.equal(res.status, 200)
    assert.equal(res.contentType, 'application/octet-stream')
    const reply = deserializeIlpReply(res.body) as IlpReject
    assert.equal(reply.code, 'F02')
    assert.equal(reply.triggeredBy, 'test.ase-b')
  })
})

describe('ILP pipeline: rejects', () => {
  test('an expired packet is R00', async () => {
    const ip = await createIncomingPayment()
    const reply = await rejected(packetFor(ip, 5n, new Date(Date.now() - 1)))
    assert.equal(reply.code, 'R00')
    assert.equal(await received(ip.id), 0n)
  })

  test('above the peer’s maximum packet amount is F08 with both amounts', async () => {
    const reply = await rejected(prepare({ amount: '1001', destination: 'test.ase-b.x' }))
    assert.equal(reply.code, 'F08')
    assert.equal(reply.data.readBigUInt64BE(0), 1001n)
    assert.equal(reply.data.readBigUInt64BE(8), 1000n)
  })

  test('an address we did not issue or for no payment is F02, tampered data F06', async () => {
    assert.equal((await rejected(prepare({ destination: 'test.ase-b.garbage' }))).code, 'F02')
    const stream = createStreamReceiver({
      secret: server.config.openPayments.streamSecret,
      ilpAddress: 'test.ase-b',
    })
    const unknown = stream.credentials(randomUUID(), { code: 'USD', scale: 2 })
    assert.equal(
      (await rejected(streamPrepare({ ...unknown, amount: 5n }))).code,
      'F02',
      'authentic address, no such payment',
    )
    const ip = await createIncomingPayment()
    const packet = deserializeIlpPrepare(packetFor(ip, 5n))
    packet.data[packet.data.length - 1]! ^= 0xff
    assert.equal((await rejected(serializeIlpPrepare(packet))).code, 'F06')
    assert.equal(await received(ip.id), 0n)
  })

  test('a completed or expired incoming payment is F02', async () => {
    const completed = await createIncomingPayment()
    await app.client.incomingPayment.complete({ url: completed.id, accessToken: token })
    assert.equal((await rejected(packetFor(completed, 5n))).code, 'F02')
    const expiring = await app.client.incomingPayment.create(
      { url: server.openPaymentsUrl, accessToken: token },
      { walletAddress: bob.url, expiresAt: new Date(Date.now() + 500).toISOString() },
    )
    await new Promise((r) => setTimeout(r, 550))
    assert.equal((await rejected(packetFor(expiring, 5n))).code, 'F02')
  })

  test('more than the amount still due: declined with a STREAM close, nothing booked', async () => {
    const ip = await createIncomingPayment(100n)
    const debt = await peerDebt(server, peer)
    const reply = await rejected(packetFor(ip, 101n))
    assert.equal(reply.code, 'F99')
    assert.equal(await received(ip.id), 0n)
    assert.equal(await peerDebt(server, peer), debt)
  })

  test('a peer beyond its credit line is T04 and nothing is credited', async () => {
    const ip = await createIncomingPayment()
    const reply = await rejected(packetFor(ip, 5n), noCredit)
    assert.equal(reply.code, 'T04')
    assert.equal(await received(ip.id), 0n)
    assert.equal(await peerDebt(server, noCredit), 0n)
    assert.equal((await checkBooks(server.database.db)).balanced, true)
  })
})

describe('ILP pipeline: fulfilled once', () => {
  test('the same packet posted twice gets the same reply and is credited once', async () => {
    const ip = await createIncomingPayment()
    const debt = await peerDebt(server, peer)
    const packet = packetFor(ip, 50n)
    const [first, second] = await Promise.all([
      postIlp(server.ilpUrl, packet, { token: peer.token }),
      postIlp(server.ilpUrl, packet, { token: peer.token }),
    ])
    const third = await postIlp(server.ilpUrl, packet, { token: peer.token })
    assert.ok(isFulfill(deserializeIlpReply(first.body)))
    assert.deepEqual(second.body, first.body)
    assert.deepEqual(third.body, first.body)
    assert.equal(await received(ip.id), 50n)
    assert.equal((await peerDebt(server, peer)) - debt, 50n)
  })

  test('a packet replayed on another process (no shared reply cache) is booked once', async () => {
    const other = createIlpApp(
      createDeps({
        config: server.config,
        db: server.database.db,
        logger: pino({ enabled: false }),
      }),
      createStreamReceiver({
        secret: server.config.openPayments.streamSecret,
        ilpAddress: server.config.openPayments.ilpAddress,
      }),
    )
    after(() => other.close())
    const replay = async (packet: Buffer) => {
      const res = await other.inject({
        method: 'POST',
        url: '/ilp',
        headers: {
          authorization: `Bearer ${peer.token}`,
          'content-type': 'application/octet-stream',
        },
        payload: packet,
      })
      assert.equal(res.statusCode, 200)
      return deserializeIlpReply(res.rawPayload)
    }
    const ip = await createIncomingPayment(80n)
    const debt = await peerDebt(server, peer)
    // Still open, then completed by the second packet: both replays must fulfill, neither credit.
    for (const packet of [packetFor(ip, 30n), packetFor(ip, 50n)]) {
      const first = (await sendPacket(server.ilpUrl, peer, packet)) as IlpFulfill
      const again = await replay(packet)
      assert.ok(isFulfill(again))
      assert.deepEqual(again.fulfillment, first.fulfillment)
    }
    assert.equal(await received(ip.id), 80n)
    assert.equal((await peerDebt(server, peer)) - debt, 80n)
    assert.equal((await checkBooks(server.database.db)).balanced, true)
  })
})
