import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { after, before, describe, test } from 'node:test'
import {
  deserializeIlpPrepare,
  type IlpPrepare,
  serializeIlpFulfill,
  serializeIlpPrepare,
  serializeIlpReject,
  serializeIlpReply,
} from 'ilp-packet'
import { createStreamSender, type IlpDestination, type SendData } from '../src/ilp/sender.ts'
import { Writer } from '../src/ilp/stream/oer.ts'
import { parseRate } from '../src/rates/ratio.ts'
import { addPeer, postIlp, type TestPeer } from './helpers/ilp.ts'
import { createWalletAddress, startTestServer, type TestServer } from './helpers/server.ts'
import { type Ase, incomingPayment, walletApp } from './helpers/two-ases.ts'

/**
 * The interoperability matrix: our STREAM sender against receivers built on other STREAM
 * implementations, and our receiver (the server's ILP endpoint) against other senders. The other
 * versions are installed under npm aliases as development dependencies. Each pairing runs a fixed
 * send, a fixed receive, a payment split into many packets by the path, and a cross-currency
 * payment with 1 % slippage, and checks every amount to the unit.
 */
const require = createRequire(import.meta.url)
const receiverAlpha3 = require('@interledger/stream-receiver')
const receiverAlpha4 = require('interledger-stream-receiver-alpha.4')
const stream271 = require('ilp-protocol-stream-2.7.1')
// ilp-protocol-stream 2.7.1 keeps its own `closed` flag on a Duplex, whose `closed` has been a
// getter since Node 18: `new DataAndMoneyStream()` throws on Node 20. Its own flag is given back to
// it (2.7.2 renamed the field); nothing else of the library is touched.
Object.defineProperty(
  require('ilp-protocol-stream-2.7.1/dist/src/stream').DataAndMoneyStream.prototype,
  'closed',
  {
    configurable: true,
    get(this: { _closedFlag?: boolean }) {
      return this._closedFlag ?? false
    },
    set(this: { _closedFlag?: boolean }, value: boolean) {
      this._closedFlag = value
    },
  },
)
const payAlpha9 = require('interledger-pay-alpha.9')
const payAlpha8 = require('interledger-pay-alpha.8')

const usd = { code: 'USD', scale: 2 }
const show = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `${x}` : x))
const eur = { code: 'EUR', scale: 2 }

/** An IL-DCP answer (what a parent connector tells a child about itself), built by hand. */
function ildcpFulfill(address: string, asset: { code: string; scale: number }): Buffer {
  const data = new Writer().utf8(address).u8(asset.scale).utf8(asset.code).toBuffer()
  return serializeIlpFulfill({ fulfillment: Buffer.alloc(32), data })
}

/** A plugin (the ILP link interface ilp-protocol-stream and pay use) around two functions. */
function plugin(opts: {
  address: string
  asset: { code: string; scale: number }
  send: (prepare: Buffer) => Promise<Buffer>
}) {
  let handler: ((data: Buffer) => Promise<Buffer>) | undefined
  return {
    connect: async () => {},
    disconnect: async () => {},
    isConnected: () => true,
    registerDataHandler: (h: (data: Buffer) => Promise<Buffer>) => {
      handler = h
    },
    deregisterDataHandler: () => {
      handler = undefined
    },
    sendData: async (data: Buffer) =>
      deserializeIlpPrepare(data).destination === 'peer.config'
        ? ildcpFulfill(opts.address, opts.asset)
        : opts.send(data),
    /** What a connector delivering a packet to this plugin's owner calls. */
    deliver: (prepare: Buffer) => handler!(prepare),
  }
}

/** A receiving end: credentials per connection, and everything it credited. */
interface Receiver {
  name: string
  credentials(limit?: bigint): Promise<IlpDestination>
  handle(prepare: IlpPrepare): Promise<Buffer>
  received: () => bigint
}

/** A receiver as Rafiki builds one on stream-receiver: it books what arrives, with no cap. */
function streamReceiver(name: string, lib: any): Receiver {
  const server = new lib.StreamServer({
    serverSecret: randomBytes(32),
    serverAddress: 'test.receiver',
  })
  let received = 0n
  return {
    name,
    credentials: async () => {
      const c = server.generateCredentials({ paymentTag: 'p', asset: usd })
      return {
        ilpAddress: c.ilpAddress,
        sharedSecret: c.sharedSecret.toString('base64url'),
        asset: usd,
      }
    },
    handle: async (prepare) => {
      const r = server.createReply(prepare)
      if (!('accept' in r)) return serializeIlpReply(r)
      received += BigInt(prepare.amount)
      return serializeIlpReply(r.accept())
    },
    received: () => received,
  }
}

/** ilp-protocol-stream 2.7.1's server: stateful, with a receive maximum per stream. */
async function streamServer(): Promise<Receiver> {
  let received = 0n
  let limit = 2n ** 64n - 1n
  const link = plugin({ address: 'test.receiver', asset: usd, send: async () => Buffer.alloc(0) })
  const server = await stream271.createServer({ plugin: link, serverSecret: randomBytes(32) })
  server.on('connection', (conn: any) => {
    conn.on('stream', (s: any) => {
      s.setReceiveMax(limit.toString())
      s.on('money', (amount: string) => {
        received += BigInt(amount)
      })
    })
  })
  return {
    name: 'ilp-protocol-stream 2.7.1 server',
    // A connection per payment: this server remembers connections, and closes them for good.
    credentials: async (max) => {
      limit = max ?? 2n ** 64n - 1n
      const c = server.generateAddressAndSecret()
      return {
        ilpAddress: c.destinationAccount,
        sharedSecret: c.sharedSecret.toString('base64url'),
        asset: usd,
      }
    },
    handle: (prepare) => link.deliver(serializeIlpPrepare(prepare)),
    received: () => received,
  }
}

/**
 * A connector between our sender and a receiver: it converts at `rate` (rounding down) and
 * refuses packets above `maxPacket` with F08 and the amounts, as Interledger connectors do.
 */
function path(receiver: Receiver, opts: { rate?: string; maxPacket?: bigint } = {}) {
  const rate = parseRate(opts.rate ?? '1')!
  let fulfilled = 0
  const sendData: SendData = async (bytes) => {
    const prepare = deserializeIlpPrepare(bytes)
    const amount = BigInt(prepare.amount)
    if (opts.maxPacket !== undefined && amount > opts.maxPacket) {
      const data = Buffer.alloc(16)
      data.writeBigUInt64BE(amount, 0)
      data.writeBigUInt64BE(opts.maxPacket, 8)
      return serializeIlpReject({ code: 'F08', triggeredBy: 'test.connector', message: '', data })
    }
    const reply = await receiver.handle({
      ...prepare,
      amount: ((amount * rate.num) / rate.den).toString(),
    })
    if (reply[0] === 13) fulfilled++
    return reply
  }
  return { sendData, fulfilled: () => fulfilled }
}

describe('our STREAM sender pays receivers of other implementations', () => {
  const sender = createStreamSender({ packetExpirySeconds: 10 })
  const receivers: [string, () => Promise<Receiver>][] = [
    ['stream-receiver 0.3.3-alpha.3', async () => streamReceiver('alpha.3', receiverAlpha3)],
    ['stream-receiver 0.3.3-alpha.4', async () => streamReceiver('alpha.4', receiverAlpha4)],
    ['ilp-protocol-stream 2.7.1 server', streamServer],
  ]
  const one = { num: 1n, den: 1n }

  for (const [name, make] of receivers) {
    describe(name, () => {
      test('fixed send: all of it leaves and arrives', async () => {
        const receiver = await make()
        const { sendData } = path(receiver)
        const destination = await receiver.credentials()
        const quote = { sendData, destination, sourceAsset: usd, rate: one, slippage: 0.01 }
        const terms = await sender.quote({ ...quote, amount: { send: 10_000n } })
        assert.ok(!('error' in terms), show(terms))
        assert.equal(terms.minDeliveryAmount, 9900n)
        const paid = await sender.pay({
          sendData,
          destination: await receiver.credentials(),
          terms,
        })
        assert.deepEqual(paid, { amountSent: 10_000n, amountDelivered: 10_000n })
        assert.equal(receiver.received(), 10_000n)
      })

      test('fixed receive: exactly the amount, though the receiver would take more', async () => {
        const receiver = await make()
        const { sendData } = path(receiver)
        const destination = await receiver.credentials()
        const terms = await sender.quote({
          sendData,
          destination,
          sourceAsset: usd,
          rate: one,
          slippage: 0.01,
          amount: { deliver: 12_345n },
        })
        assert.ok(!('error' in terms), show(terms))
        const paid = await sender.pay({
          sendData,
          destination: await receiver.credentials(12_345n),
          terms,
        })
        assert.deepEqual(paid, { amountSent: 12_345n, amountDelivered: 12_345n })
        assert.equal(receiver.received(), 12_345n)
      })

      test('many packets: the path’s maximum (F08) splits the payment', async () => {
        const receiver = await make()
        const p = path(receiver, { maxPacket: 100n })
        const destination = await receiver.credentials()
        const terms = await sender.quote({
          sendData: p.sendData,
          destination,
          sourceAsset: usd,
          rate: one,
          slippage: 0.01,
          amount: { deliver: 5_050n },
        })
        assert.ok(!('error' in terms), show(terms))
        assert.equal(terms.maxPacketAmount, 100n)
        const paid = await sender.pay({
          sendData: p.sendData,
          destination: await receiver.credentials(5_050n),
          terms,
        })
        assert.deepEqual(paid, { amountSent: 5_050n, amountDelivered: 5_050n })
        assert.equal(receiver.received(), 5_050n)
        assert.equal(p.fulfilled(), 51)
      })

      test('cross-currency with slippage: EUR → USD at 1.1 lands on the amount', async () => {
        const receiver = await make()
        const { sendData } = path(receiver, { rate: '1.1' })
        const destination = await receiver.credentials()
        const terms = await sender.quote({
          sendData,
          destination,
          sourceAsset: eur,
          rate: parseRate('1.1')!,
          slippage: 0.01,
          amount: { deliver: 1_000n },
        })
        assert.ok(!('error' in terms), show(terms))
        assert.ok(terms.maxSourceAmount >= 910n && terms.maxSourceAmount <= 921n)
        const paid = await sender.pay({
          sendData,
          destination: await receiver.credentials(1_000n),
          terms,
        })
        // 909 EUR deliver 999 USD and 910 would deliver 1001: 909, then 1.
        assert.deepEqual(paid, { amountSent: 910n, amountDelivered: 1_000n })
        assert.equal(receiver.received(), 1_000n)
      })
    })
  }
})

describe('our receiver is paid by other STREAM senders', () => {
  let b: TestServer
  let atB: Ase
  let bob: { id: string; url: string }
  let usdPeer: TestPeer
  let smallPeer: TestPeer
  let eurPeer: TestPeer
  before(async () => {
    b = await startTestServer({ ILP_ADDRESS: 'test.ase-b', RATES: '{"EUR":{"USD":"1.1"}}' })
    bob = await createWalletAddress(b, { path: '/bob' })
    const credit = 100_000_000n
    usdPeer = await addPeer(b, { name: 'usd-peer', creditLimit: credit })
    smallPeer = await addPeer(b, { name: 'small-peer', creditLimit: credit, maxPacketAmount: 100n })
    eurPeer = await addPeer(b, { name: 'eur-peer', assetCode: 'EUR', creditLimit: credit })
    atB = await walletApp(b)
  })
  after(() => b?.close())

  /** A link to B's ILP endpoint as one of its peers. */
  const linkAs = (peer: TestPeer, asset = usd) =>
    plugin({
      address: 'test.sender',
      asset,
      send: async (data) => {
        const res = await postIlp(b.ilpUrl, data, { token: peer.token })
        if (res.status !== 200) throw new Error(`ILP over HTTP: ${res.status}`)
        return res.body
      },
    })

  const value = (v: string) => ({ value: v, assetCode: 'USD', assetScale: 2 })
  const receivedAt = async (read: () => Promise<{ receivedAmount: { value: string } }>) =>
    BigInt((await read()).receivedAmount.value)

  const pays: [string, any][] = [
    ['@interledger/pay 0.4.0-alpha.9', payAlpha9],
    ['@interledger/pay 0.4.0-alpha.8', payAlpha8],
  ]
  for (const [name, pay] of pays) {
    describe(name, () => {
      /** Quote and pay as Rafiki does: destination from the incoming payment, prices, slippage. */
      const payIt = async (
        ip: any,
        link: any,
        sourceAsset: { code: string; scale: number },
        amount: { amountToSend: bigint } | { amountToDeliver: bigint },
        prices?: Record<string, number>,
      ) => {
        const method = ip.methods[0]
        const destination = () => ({
          destinationAddress: method.ilpAddress,
          sharedSecret: Buffer.from(method.sharedSecret, 'base64url'),
          destinationAsset: usd,
          requestCounter: pay.Counter.from(0),
        })
        const quote = await pay.startQuote({
          plugin: link,
          destination: destination(),
          sourceAsset,
          slippage: 0.01,
          ...amount,
          ...(prices && { prices }),
        })
        const progress = await pay.pay({ plugin: link, destination: destination(), quote })
        await pay.closeConnection(link, destination())
        return { quote, progress }
      }

      test('fixed send', async () => {
        const { ip, read } = await incomingPayment(atB, bob.url)
        const { progress } = await payIt(ip, linkAs(usdPeer), usd, { amountToSend: 1_000n })
        assert.equal(progress.error, undefined)
        assert.equal(progress.amountSent, 1_000n)
        assert.equal(await receivedAt(read), 1_000n)
      })

      test('fixed receive', async () => {
        const { ip, read } = await incomingPayment(atB, bob.url, value('1234'))
        const { progress } = await payIt(ip, linkAs(usdPeer), usd, { amountToDeliver: 1_234n })
        assert.equal(progress.error, undefined)
        assert.equal(progress.amountDelivered, 1_234n)
        assert.equal(await receivedAt(read), 1_234n)
      })

      test('many packets', async () => {
        const { ip, read } = await incomingPayment(atB, bob.url, value('3000'))
        const { progress } = await payIt(ip, linkAs(smallPeer), usd, { amountToDeliver: 3_000n })
        assert.equal(progress.error, undefined)
        assert.equal(progress.amountSent, 3_000n)
        assert.equal(await receivedAt(read), 3_000n)
      })

      test('cross-currency with slippage', async () => {
        // pay sizes its last packet by the rate's upper bound: 1100 USD is 1000 EUR exactly.
        const { ip, read } = await incomingPayment(atB, bob.url, value('1100'))
        const { quote, progress } = await payIt(
          ip,
          linkAs(eurPeer, eur),
          eur,
          { amountToDeliver: 1_100n },
          { EUR: 1.1, USD: 1 },
        )
        assert.equal(progress.error, undefined)
        assert.ok(quote.maxSourceAmount <= 1_011n)
        assert.equal(progress.amountSent, 1_000n)
        assert.equal(await receivedAt(read), 1_100n)
      })
    })
  }

  describe('ilp-protocol-stream 2.7.1 client', () => {
    /** Opens a connection to the incoming payment and sends `amount` on one stream. */
    const sendTotal = async (ip: any, link: any, amount: bigint) => {
      const method = ip.methods[0]
      const conn = await stream271.createConnection({
        plugin: link,
        destinationAccount: method.ilpAddress,
        sharedSecret: Buffer.from(method.sharedSecret, 'base64url'),
        slippage: 0.01,
      })
      try {
        const s = conn.createStream()
        await s.sendTotal(amount.toString(), { timeout: 10_000 })
        return { sent: BigInt(conn.totalSent), delivered: BigInt(conn.totalDelivered) }
      } finally {
        await conn.destroy()
      }
    }

    test('fixed send', async () => {
      const { ip, read } = await incomingPayment(atB, bob.url)
      assert.deepEqual(await sendTotal(ip, linkAs(usdPeer), 1_000n), {
        sent: 1_000n,
        delivered: 1_000n,
      })
      assert.equal(await receivedAt(read), 1_000n)
    })

    test('fixed receive: the incoming payment completes on its amount', async () => {
      const { ip, read } = await incomingPayment(atB, bob.url, value('777'))
      assert.deepEqual(await sendTotal(ip, linkAs(usdPeer), 777n), { sent: 777n, delivered: 777n })
      const done = await read()
      assert.equal(BigInt(done.receivedAmount.value), 777n)
      assert.equal(done.completed, true)
    })

    test('many packets', async () => {
      const { ip, read } = await incomingPayment(atB, bob.url)
      const r = await sendTotal(ip, linkAs(smallPeer), 3_000n)
      assert.deepEqual(r, { sent: 3_000n, delivered: 3_000n })
      assert.equal(await receivedAt(read), 3_000n)
    })

    test('cross-currency with slippage', async () => {
      const { ip, read } = await incomingPayment(atB, bob.url)
      const r = await sendTotal(ip, linkAs(eurPeer, eur), 1_000n)
      assert.deepEqual(r, { sent: 1_000n, delivered: 1_100n })
      assert.equal(await receivedAt(read), 1_100n)
    })
  })
})
