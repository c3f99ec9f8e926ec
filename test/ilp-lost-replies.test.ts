import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import { after, before, test } from 'node:test'
import { deserializeIlpPrepare } from 'ilp-packet'
import { checkBooks } from '../src/ledger/invariants.ts'
import {
  balanceOf,
  createWalletAddress,
  deposit,
  freePort,
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
 * Synchronous ILP-over-HTTP loses answers: the receiving ASE credits a packet and its Fulfill never
 * reaches the sender in time (a slow network, an overloaded peer). The sender must not count such a
 * packet as failed: it stays counted until the payment's end asks the peer again, and the books of
 * both ASEs agree to the unit.
 */
let a: TestServer
let b: TestServer
let atA: Ase
let atB: Ase
let proxy: Server
let held = 0

before(async () => {
  // Packets live 2 s, so an answer held longer than that is lost to the sender.
  a = await startTestServer({ ILP_ADDRESS: 'test.ase-a', ILP_PACKET_EXPIRY_SECONDS: '2' })
  b = await startTestServer({ ILP_ADDRESS: 'test.ase-b' })
  // Between A and B: every third packet that carries money is passed on at once, and B's answer
  // held back until well after the packet expired. Repeats of expired packets pass straight through.
  let moneyPackets = 0
  proxy = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', async () => {
      const body = Buffer.concat(chunks)
      const prepare = deserializeIlpPrepare(body)
      const live = prepare.expiresAt.getTime() > Date.now()
      const hold = live && BigInt(prepare.amount) > 0n && ++moneyPackets % 3 === 0
      const upstream = await fetch(b.ilpUrl, {
        method: 'POST',
        headers: {
          authorization: req.headers.authorization ?? '',
          'content-type': 'application/octet-stream',
        },
        body,
      })
      const bytes = Buffer.from(await upstream.arrayBuffer())
      const answer = () => {
        if (res.destroyed) return
        res.writeHead(upstream.status, { 'content-type': 'application/octet-stream' })
        res.end(bytes)
      }
      if (!hold) return answer()
      held++
      setTimeout(answer, prepare.expiresAt.getTime() - Date.now() + 1500)
    })
  })
  const port = await freePort()
  await new Promise<void>((resolve) => proxy.listen(port, '127.0.0.1', resolve))
  const toB = await peer(a, b, 'bank-b', { out: 'a-to-b-token-abcdef', in: 'b-to-a-token-abcdef' })
  await a.admin('PATCH', `/peers/${toB}`, { httpEndpoint: `http://127.0.0.1:${port}/ilp` })
  const toA = await peer(b, a, 'bank-a', { out: 'b-to-a-token-abcdef', in: 'a-to-b-token-abcdef' })
  // Many packets: B takes at most 100 units in one.
  await b.admin('PATCH', `/peers/${toA}`, { maxPacketAmount: '100' })
  atA = await walletApp(a)
  atB = await walletApp(b)
})
after(async () => {
  proxy?.closeAllConnections()
  proxy?.close()
  await a?.close()
  await b?.close()
})

test('packets whose answers were lost are asked about again and booked as what they were', async () => {
  const alice = await createWalletAddress(a, { path: '/alice' })
  const bob = await createWalletAddress(b, { path: '/bob' })
  await deposit(a, alice.id, 100_000n)
  const { ip, read } = await incomingPayment(atB, bob.url, {
    value: '1000',
    assetCode: 'USD',
    assetScale: 2,
  })
  const { payment } = await pay(atA, alice.url, ip.id, {}, undefined, 40_000)
  assert.ok(held > 0, 'some answers were held back')
  const received = BigInt((await read()).receivedAmount.value)
  const debited = 100_000n - (await balanceOf(a, alice.id))
  // Whatever the sender concluded, its books say what the receiver's say.
  assert.equal(debited, BigInt(payment.sentAmount.value))
  assert.equal(debited, received)
  assert.equal(await peerPosition(a), -(await peerPosition(b)))
  assert.equal(await peerPosition(a), received)
  // Never more than asked; and since every held packet did arrive, the payment delivered it all.
  assert.equal(received, 1000n)
  assert.equal(payment.failed, false)
  assert.ok((await checkBooks(a.database.db)).balanced)
  assert.ok((await checkBooks(b.database.db)).balanced)
})
