import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { pino } from 'pino'
import { createRemoteReceivers } from '../src/open-payments-client/remote-receivers.ts'
import { createDeps } from '../src/server.ts'
import { type ClientIdentity, createClientIdentity, grantToken } from './helpers/clients.ts'
import { createWalletAddress, request, startTestServer, type TestServer } from './helpers/server.ts'

/** Two ASEs on loopback: A reads an incoming payment at B as an Open Payments client. */
let a: TestServer
let b: TestServer
let appAtB: ClientIdentity
let bob: { id: string; url: string }
let ipToken: string

before(async () => {
  a = await startTestServer({ SERVER_NAME: 'Bank A' })
  b = await startTestServer()
  appAtB = await createClientIdentity(b, { path: '/app', publicName: 'App' })
  bob = await createWalletAddress(b, { path: '/bob', assetCode: 'EUR', assetScale: 2 })
  ipToken = await grantToken(b, appAtB, [
    { type: 'incoming-payment', actions: ['create', 'complete'], identifier: bob.url },
  ])
})
after(async () => {
  await a?.close()
  await b?.close()
})

const remoteReceivers = () => {
  const deps = createDeps({
    config: a.config,
    db: a.database.db,
    logger: pino({ level: 'silent' }),
  })
  return createRemoteReceivers(deps, { cacheTtlMs: 60_000, outbound: deps.outbound.untrusted })
}

test('A serves its own client identity: a wallet address document and JWKS from configuration', async () => {
  const doc = await request(`${a.openPaymentsUrl}/op-client`)
  assert.equal(doc.status, 200)
  assert.equal(doc.body.publicName, 'Bank A')
  assert.equal(doc.body.assetCode, 'XXX')
  const jwks = await request(`${a.openPaymentsUrl}/op-client/jwks.json`)
  assert.equal(jwks.body.keys.length, 1)
  assert.equal(jwks.body.keys[0].kty, 'OKP')
  // Nobody can take that path.
  const taken = await a.admin('POST', '/wallet-addresses', {
    path: '/op-client',
    assetCode: 'USD',
    assetScale: 2,
  })
  assert.equal(taken.status, 409)
})

test('A reads an incoming payment at B with a read-all grant from B, once per quote life', async () => {
  const ip = await appAtB.client.incomingPayment.create(
    { url: b.openPaymentsUrl, accessToken: ipToken },
    { walletAddress: bob.url, incomingAmount: { value: '1500', assetCode: 'EUR', assetScale: 2 } },
  )
  const receivers = remoteReceivers()
  const remote = await receivers.get(ip.id)
  assert.ok(remote)
  assert.deepEqual(remote.asset, { code: 'EUR', scale: 2 })
  assert.equal(remote.incomingAmount, 1500n)
  assert.equal(remote.receivedAmount, 0n)
  assert.equal(remote.completed, false)
  assert.ok(remote.ilp?.ilpAddress.startsWith('test.op-server.'))
  assert.equal(Buffer.from(remote.ilp!.sharedSecret, 'base64url').length, 32)

  // B issued one grant, to A's identity, and A's second read is served from its cache.
  const grants = await b.database.db.selectFrom('grants').select('client_wallet_address').execute()
  const fromA = grants.filter((g) => g.client_wallet_address === `${a.openPaymentsUrl}/op-client`)
  assert.equal(fromA.length, 1)
  assert.equal(await receivers.get(ip.id), remote)

  // A second incoming payment reuses the cached token: still one grant.
  const other = await appAtB.client.incomingPayment.create(
    { url: b.openPaymentsUrl, accessToken: ipToken },
    { walletAddress: bob.url },
  )
  const second = await receivers.get(other.id)
  assert.equal(second?.incomingAmount, null)
  const after = await b.database.db.selectFrom('grants').select('client_wallet_address').execute()
  assert.equal(
    after.filter((g) => g.client_wallet_address === `${a.openPaymentsUrl}/op-client`).length,
    1,
  )
})

test('a revoked token is renewed once; unknown or completed receivers', async () => {
  const receivers = remoteReceivers()
  const ip = await appAtB.client.incomingPayment.create(
    { url: b.openPaymentsUrl, accessToken: ipToken },
    { walletAddress: bob.url },
  )
  assert.ok(await receivers.get(ip.id))
  // B's operator revokes every grant A holds.
  const grants = await b.database.db
    .selectFrom('grants')
    .select('id')
    .where('client_wallet_address', '=', `${a.openPaymentsUrl}/op-client`)
    .execute()
  for (const g of grants) await b.admin('POST', `/grants/${g.id}/revoke`)
  const done = await appAtB.client.incomingPayment.create(
    { url: b.openPaymentsUrl, accessToken: ipToken },
    { walletAddress: bob.url },
  )
  await appAtB.client.incomingPayment.complete({ url: done.id, accessToken: ipToken })
  const completed = await receivers.get(done.id)
  assert.equal(completed?.completed, true)
  assert.equal(completed?.ilp, undefined)
  assert.equal(
    await receivers.get(
      `${b.openPaymentsUrl}/incoming-payments/00000000-0000-4000-8000-000000000000`,
    ),
    undefined,
  )
  assert.equal(await receivers.get('http://127.0.0.1:9/incoming-payments/x'), undefined)
})
