import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { incomingFacts } from '../src/incoming-payments/facts.ts'
import {
  type ClientIdentity,
  createClientIdentity,
  grantToken,
  signedRequest,
} from './helpers/clients.ts'
import { createWalletAddress, startTestServer, type TestServer } from './helpers/server.ts'

/**
 * The quote written by one statement that checks its receiver (quotes-kept-receivers.test.ts) on
 * the embedded database, whose SQL engine is PostgreSQL's compiled to WebAssembly.
 */
let server: TestServer
let app: ClientIdentity

before(async () => {
  server = await startTestServer({}, { embedded: true })
  app = await createClientIdentity(server, { path: '/app' })
})
after(() => server?.close())

test('PGlite: quotes to a receiver this process knows, and the receiver’s limits, as on PostgreSQL', async () => {
  assert.equal(server.database.engine, 'pglite')
  const rs = server.openPaymentsUrl
  const alice = await createWalletAddress(server, { path: '/alice' })
  const bob = await createWalletAddress(server, { path: '/bob' })
  const ipToken = await grantToken(server, app, [
    { type: 'incoming-payment', actions: ['create'], identifier: bob.url },
  ])
  const quoteToken = await grantToken(server, app, [{ type: 'quote', actions: ['create'] }])
  const ip = await app.client.incomingPayment.create(
    { url: rs, accessToken: ipToken },
    { walletAddress: bob.url, incomingAmount: { value: '500', assetCode: 'USD', assetScale: 2 } },
  )
  assert.ok(incomingFacts.get(ip.id.split('/').at(-1)!))
  const quote = (value: string) =>
    signedRequest(`${rs}/quotes`, {
      body: {
        walletAddress: alice.url,
        receiver: ip.id,
        method: 'ilp',
        debitAmount: { value, assetCode: 'USD', assetScale: 2 },
      },
      token: quoteToken,
      identity: app,
    })
  for (const value of ['100', '500']) {
    const res = await quote(value)
    assert.equal(res.status, 201, JSON.stringify(res.body))
    assert.equal(res.body.receiveAmount.value, value)
  }
  const tooMuch = await quote('501')
  assert.equal(tooMuch.status, 400)
  assert.equal(tooMuch.body.error.description, 'invalid amount')
  const stored = await server.database.db.selectFrom('quotes').select('id').execute()
  assert.equal(stored.length, 2)
})
