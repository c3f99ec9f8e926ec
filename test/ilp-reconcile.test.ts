import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, test } from 'node:test'
import { deserializeIlpPrepare, serializeIlpFulfill } from 'ilp-packet'
import { checkBooks } from '../src/ledger/invariants.ts'
import { outgoingPaymentToken } from './helpers/clients.ts'
import { type IlpProxy, startIlpProxy } from './helpers/ilp-proxy.ts'
import {
  balanceOf,
  createWalletAddress,
  deposit,
  eventually,
  startTestServer,
  type TestServer,
} from './helpers/server.ts'
import { type Ase, incomingPayment, peer, peerPosition, walletApp } from './helpers/two-ases.ts'

/**
 * A → proxy → B. The proxy drops the first money packet of the payment (HTTP 502, never
 * forwarded): it never arrives at B, but A keeps it counted, its fate unknown, and repeats it once
 * it has expired. The proxy answers that repeat with a Fulfill whose fulfillment is not the
 * condition's preimage: no proof that the packet arrived.
 */
let a: TestServer
let b: TestServer
let atA: Ase
let atB: Ase
let proxy: IlpProxy
let dropped: Buffer | undefined
let bogusFulfills = 0
let armed = false

before(async () => {
  a = await startTestServer({ ILP_ADDRESS: 'test.ase-a', ILP_PACKET_EXPIRY_SECONDS: '2' })
  b = await startTestServer({ ILP_ADDRESS: 'test.ase-b' })
  proxy = await startIlpProxy(b.ilpUrl)
  proxy.intercept = (body) => {
    const prepare = deserializeIlpPrepare(body)
    const live = prepare.expiresAt.getTime() > Date.now()
    if (armed && live && BigInt(prepare.amount) > 0n && !dropped) {
      dropped = body
      return { status: 502 }
    }
    if (!live && dropped && body.equals(dropped)) {
      bogusFulfills++
      const fulfillment = randomBytes(32)
      return { status: 200, body: serializeIlpFulfill({ fulfillment, data: Buffer.alloc(0) }) }
    }
    return undefined
  }
  const toB = await peer(a, b, 'bank-b', { out: 'a-to-b-token-abcdef', in: 'b-to-a-token-abcdef' })
  await a.admin('PATCH', `/peers/${toB}`, { httpEndpoint: proxy.url })
  const toA = await peer(b, a, 'bank-a', { out: 'b-to-a-token-abcdef', in: 'a-to-b-token-abcdef' })
  await b.admin('PATCH', `/peers/${toA}`, { maxPacketAmount: '100' })
  atA = await walletApp(a)
  atB = await walletApp(b)
})
after(async () => {
  await proxy?.close()
  await a?.close()
  await b?.close()
})

async function run(path: string) {
  dropped = undefined
  const alice = await createWalletAddress(a, { path: `/alice-${path}` })
  const bob = await createWalletAddress(b, { path: `/bob-${path}` })
  await deposit(a, alice.id, 100_000n)
  const { ip, read } = await incomingPayment(atB, bob.url)
  return { alice, ip, read }
}

test('a repeat answered with a Fulfill that is not the condition’s preimage is not taken as arrived', async () => {
  const posA0 = await peerPosition(a)
  const posB0 = await peerPosition(b)
  const { alice, ip, read } = await run('bogus')
  await payArmed(alice.url, ip.id)
  assert.ok(bogusFulfills > 0, 'the dropped packet was repeated')
  const received = BigInt((await read()).receivedAmount.value)
  const debited = 100_000n - (await balanceOf(a, alice.id))
  // What Alice paid is what Bob got, and what A says it owes B is what B says A paid it.
  assert.equal(debited, received)
  assert.equal((await peerPosition(a)) - posA0, received)
  assert.equal((await peerPosition(b)) - posB0, -received)
  assert.ok((await checkBooks(a.database.db)).balanced)
  assert.ok((await checkBooks(b.database.db)).balanced)
})

async function payArmed(sender: string, receiver: string) {
  armed = false
  const quote = await atA.app.client.quote.create(
    { url: a.openPaymentsUrl, accessToken: atA.quoteToken },
    {
      walletAddress: sender,
      receiver,
      method: 'ilp',
      debitAmount: { value: '500', assetCode: 'USD', assetScale: 2 },
    } as never,
  )
  const token = await outgoingPaymentToken(a, atA.app, sender)
  armed = true
  const created = await atA.app.client.outgoingPayment.create(
    { url: a.openPaymentsUrl, accessToken: token },
    { walletAddress: sender, quoteId: quote.id },
  )
  const payment = await eventually(async () => {
    const row = await a.database.db
      .selectFrom('outgoing_payments')
      .select('state')
      .where('id', '=', created.id.split('/').at(-1)!)
      .executeTakeFirstOrThrow()
    if (row.state === 'sending') return undefined
    return atA.app.client.outgoingPayment.get({ url: created.id, accessToken: token })
  }, 40_000)
  armed = false
  return { quote, payment }
}
