import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { after, before, test } from 'node:test'
import { isFulfill } from 'ilp-packet'
import { createPaymentFactsCache } from '../src/ilp/payment-facts.ts'
import { hashToken } from '../src/lib/secrets.ts'
import { createPeerTokenCache } from '../src/peers/token-cache.ts'
import type { ClientIdentity } from './helpers/clients.ts'
import {
  addPeer,
  peerDebt,
  postIlp,
  sendPacket,
  startReceivingAse,
  streamPrepare,
} from './helpers/ilp.ts'
import type { TestServer } from './helpers/server.ts'

/**
 * The ILP listener's per-process caches. Peers are found by their bearer token through one
 * (src/peers/token-cache.ts): a peer removed elsewhere is still recognised for at most the cache's
 * bound, one removed through this process's admin API at once, and no money is booked for a
 * removed peer either way. Incoming payments' unchanging facts are kept up to a number of payments
 * (src/ilp/payment-facts.ts).
 */
let server: TestServer
let app: ClientIdentity
let bob: { id: string; url: string }
let token: string

before(async () => {
  ;({ server, app, bob, token } = await startReceivingAse())
})
after(() => server.close())

const packetFor = async (amount: bigint) => {
  const ip = await app.client.incomingPayment.create(
    { url: server.openPaymentsUrl, accessToken: token },
    { walletAddress: bob.url },
  )
  const method = ip.methods[0] as { ilpAddress: string; sharedSecret: string }
  return streamPrepare({ ...method, amount })
}

/** Removes the peer as another process would: this process's cache is not told. */
const removeBehindTheCache = (id: string) =>
  server.database.db.deleteFrom('peers').where('id', '=', id).execute()

test('a removed peer is known for at most the bound; an unknown token is never kept', async () => {
  const db = server.database.db
  const cache = createPeerTokenCache(db, { ttlMs: 300 })
  const peer = await addPeer(server, { name: 'ase-cached' })
  assert.equal((await cache.peer(peer.token))?.id, peer.id)
  await removeBehindTheCache(peer.id)
  assert.equal((await cache.peer(peer.token))?.id, peer.id, 'within the bound: still known')
  await new Promise((r) => setTimeout(r, 350))
  assert.equal(await cache.peer(peer.token), undefined, 'after the bound: unknown')

  // A token that was unknown is found as soon as it exists.
  const other = await addPeer(server, { name: 'ase-later' })
  const later = randomBytes(24).toString('base64url')
  assert.equal(await cache.peer(later), undefined)
  await db
    .insertInto('peer_incoming_tokens')
    .values({ token_hash: hashToken(later), peer_id: other.id })
    .execute()
  assert.equal((await cache.peer(later))?.id, other.id)
})

test('the cache holds at most its number of entries', async () => {
  const cache = createPeerTokenCache(server.database.db, { ttlMs: 60_000, maxEntries: 1 })
  const [a, b] = [
    await addPeer(server, { name: 'ase-a1' }),
    await addPeer(server, { name: 'ase-b1' }),
  ]
  await cache.peer(a.token)
  await cache.peer(b.token)
  await removeBehindTheCache(a.id)
  // `a` was pushed out by `b`: asked again, and gone.
  assert.equal(await cache.peer(a.token), undefined)
  assert.equal((await cache.peer(b.token))?.id, b.id)
})

test('a peer removed through the admin API is refused at once', async () => {
  const peer = await addPeer(server, { name: 'ase-admin', creditLimit: 1_000n })
  assert.equal(isFulfill(await sendPacket(server.ilpUrl, peer, await packetFor(5n))), true)
  const removed = await server.admin('DELETE', `/peers/${peer.id}`)
  assert.equal(removed.status, 204)
  const res = await postIlp(server.ilpUrl, await packetFor(5n), { token: peer.token })
  assert.equal(res.status, 401)
})

test('a peer removed by another process gets no money booked while this one still knows it', async () => {
  const peer = await addPeer(server, { name: 'ase-elsewhere', creditLimit: 1_000n })
  assert.equal(isFulfill(await sendPacket(server.ilpUrl, peer, await packetFor(5n))), true)
  assert.equal(await peerDebt(server, peer), 5n)
  await removeBehindTheCache(peer.id)
  // Still recognised (within the bound), but the booking finds the peer gone.
  const reply = await sendPacket(server.ilpUrl, peer, await packetFor(7n))
  assert.equal(isFulfill(reply), false)
  assert.equal(await peerDebt(server, peer), 5n)
})

test('incoming payments’ facts: the owner’s wallet and asset, kept for at most the bound’s number of payments', async () => {
  const create = async () => {
    const ip = await app.client.incomingPayment.create(
      { url: server.openPaymentsUrl, accessToken: token },
      { walletAddress: bob.url },
    )
    return ip.id.split('/').at(-1)!
  }
  const [a, b] = [await create(), await create()]
  const facts = createPaymentFactsCache(server.database.db, 1)
  const first = (await facts.get(a))!
  assert.equal(first.walletAddressId, bob.id)
  assert.deepEqual([first.assetCode, first.assetScale, first.closed], ['USD', 2, false])
  assert.equal(first.wallet.assetId, (await facts.get(a))!.wallet.assetId)
  assert.equal(await facts.get(a), first, 'kept')
  await facts.get(b)
  assert.notEqual(await facts.get(a), first, 'pushed out by b: read again')
  assert.equal(await facts.get('00000000-0000-4000-8000-000000000000'), undefined)
})
