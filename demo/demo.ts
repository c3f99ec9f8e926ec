/**
 * `npm run demo`: the whole Open Payments flow against a fresh server on the embedded database.
 * Two wallet addresses with balances and a client app with a key are set up through the admin
 * API; then the official client gets grants (consent given through the development sign-in and
 * consent pages, over HTTP), creates an incoming payment, a quote and an outgoing payment, and
 * the payment completes. Nothing outside this machine is contacted.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createAuthenticatedClient } from '@interledger/open-payments'
import { pino } from 'pino'
import { loadConfig } from '../src/config.ts'
import { openDatabase } from '../src/db/database.ts'
import { migrate } from '../src/db/migrate.ts'
import { formatAmount } from '../src/lib/amount.ts'
import { freePort } from '../src/lib/free-port.ts'
import { createDeps, createServer } from '../src/server.ts'
import { consentedOutgoingGrant } from './consent.ts'

const step = (n: number, text: string) => console.log(`\n${n}. ${text}`)
const show = (label: string, value: unknown) =>
  console.log(`   ${label}: ${typeof value === 'string' ? value : JSON.stringify(value)}`)
const money = (a: { value: string; assetCode: string; assetScale: number }) =>
  `${formatAmount(BigInt(a.value), a.assetScale)} ${a.assetCode}`

const dataDir = mkdtempSync(join(tmpdir(), 'op-demo-'))
const [opPort, authPort, adminPort] = [await freePort(), await freePort(), await freePort()]
const password = randomBytes(12).toString('base64url')
const config = loadConfig({
  NODE_ENV: 'development',
  DATA_DIR: dataDir,
  OPEN_PAYMENTS_PORT: String(opPort),
  AUTH_PORT: String(authPort),
  ADMIN_PORT: String(adminPort),
  OPEN_PAYMENTS_URL: `http://127.0.0.1:${opPort}`,
  AUTH_SERVER_URL: `http://127.0.0.1:${authPort}`,
  DEV_SIGN_IN_PASSWORD: password,
  ILP_ADDRESS: 'test.demo-bank',
})
const database = await openDatabase({
  databaseUrl: undefined,
  schema: 'public',
  poolSize: 1,
  dataDir,
})
await migrate(database)
const server = await createServer(
  createDeps({ config, db: database.db, logger: pino({ level: 'warn' }) }),
)
await server.start('127.0.0.1')

// The admin API's JSON, loosely typed: this script only reads a few fields of it.
const admin = async (method: string, path: string, body?: unknown): Promise<any> => {
  const res = await fetch(`http://127.0.0.1:${adminPort}${path}`, {
    method,
    headers: { authorization: `Bearer ${config.adminApiKey}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const json = await res.json()
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`)
  return json
}

try {
  console.log(`Open Payments demo on the embedded database (${dataDir})`)
  step(1, 'The operator creates an asset, two wallet addresses and a client app, and funds Alice')
  const usd = await admin('POST', '/assets', { code: 'USD', scale: 2 })
  await admin('PUT', `/assets/${usd.id}/fees`, { fixed: '25', basisPoints: 50 })
  show('sending fee', '0.25 USD + 0.5 %')
  const alice = await admin('POST', '/wallet-addresses', {
    path: '/alice',
    assetCode: 'USD',
    assetScale: 2,
    publicName: 'Alice',
  })
  const bob = await admin('POST', '/wallet-addresses', {
    path: '/bob',
    assetCode: 'USD',
    assetScale: 2,
    publicName: 'Bob',
  })
  const shop = await admin('POST', '/wallet-addresses', {
    path: '/shop-app',
    assetCode: 'USD',
    assetScale: 2,
    publicName: 'Shop App',
  })
  const { publicKey, privateKey } = generateKeyPairSync('ed25519')
  await admin('POST', `/wallet-addresses/${shop.id}/keys`, {
    jwk: {
      kid: 'shop-key-1',
      kty: 'OKP',
      crv: 'Ed25519',
      alg: 'EdDSA',
      x: publicKey.export({ format: 'jwk' }).x,
    },
  })
  await admin('POST', `/wallet-addresses/${alice.id}/deposits`, {
    id: 'demo-funding',
    amount: '50000',
  })
  for (const wa of [alice, bob, shop]) show(wa.publicName, wa.url)
  show('Alice balance', '500.00 USD')

  const client = await createAuthenticatedClient({
    walletAddressUrl: shop.url,
    privateKey,
    keyId: 'shop-key-1',
    logLevel: 'silent',
  })
  const bobDoc = await client.walletAddress.get({ url: bob.url })
  const aliceDoc = await client.walletAddress.get({ url: alice.url })

  step(2, 'The app gets a grant to create an incoming payment on Bob (no interaction needed)')
  const ipGrant = await client.grant.request(
    { url: bobDoc.authServer },
    {
      access_token: {
        access: [{ type: 'incoming-payment', actions: ['create', 'read'], identifier: bob.url }],
      },
    },
  )
  if (!('access_token' in ipGrant) || !ipGrant.access_token) throw new Error('expected a token')
  const incoming = await client.incomingPayment.create(
    { url: bobDoc.resourceServer, accessToken: ipGrant.access_token.value },
    {
      walletAddress: bob.url,
      incomingAmount: { value: '12000', assetCode: 'USD', assetScale: 2 },
      metadata: { description: 'Concert tickets' },
    },
  )
  show('incoming payment', incoming.id)
  show('asks for', money(incoming.incomingAmount!))

  step(3, 'A quote from Alice to that incoming payment')
  const quoteGrant = await client.grant.request(
    { url: aliceDoc.authServer },
    { access_token: { access: [{ type: 'quote', actions: ['create', 'read'] }] } },
  )
  if (!('access_token' in quoteGrant) || !quoteGrant.access_token)
    throw new Error('expected a token')
  const quote = await client.quote.create(
    { url: aliceDoc.resourceServer, accessToken: quoteGrant.access_token.value },
    { walletAddress: alice.url, receiver: incoming.id, method: 'ilp' },
  )
  show('Bob receives', money(quote.receiveAmount))
  show('Alice pays (fee included)', money(quote.debitAmount))

  step(4, 'An outgoing-payment grant: Alice signs in and accepts on the consent page')
  const opGrant = await consentedOutgoingGrant(client, {
    authServer: aliceDoc.authServer,
    walletAddress: alice.url,
    password,
    limits: { debitAmount: quote.debitAmount },
  })
  show('consent page', opGrant.consentPage)
  show('back at the app with interact_ref', opGrant.interactRef)
  show('token for', 'outgoing payments from Alice, up to the quoted amount')

  step(5, 'The outgoing payment')
  const payment = await client.outgoingPayment.create(
    { url: aliceDoc.resourceServer, accessToken: opGrant.accessToken },
    { walletAddress: alice.url, quoteId: quote.id },
  )
  show('outgoing payment', payment.id)
  let done = payment
  for (let i = 0; i < 100 && done.sentAmount.value === '0' && !done.failed; i++) {
    await new Promise((r) => setTimeout(r, 50))
    done = await client.outgoingPayment.get({
      url: payment.id,
      accessToken: opGrant.accessToken,
    })
  }
  show('sent', `${money(done.sentAmount)}${done.failed ? ' (failed)' : ''}`)

  step(6, 'Bob’s incoming payment is complete')
  const received = await client.incomingPayment.get({
    url: incoming.id,
    accessToken: ipGrant.access_token.value,
  })
  show('received', money(received.receivedAmount))
  show('completed', String(received.completed))

  step(7, 'Final balances')
  for (const wa of [alice, bob]) {
    const b = await admin('GET', `/wallet-addresses/${wa.id}/balance`)
    show(wa.publicName, `${formatAmount(BigInt(b.balance), b.assetScale)} ${b.assetCode}`)
  }
  const fees = await admin('GET', '/ledger/check')
  show('ledger balanced', String(fees.balanced))
  if (!received.completed || done.failed) process.exitCode = 1
} finally {
  await server.stop()
  await database.close()
  rmSync(dataDir, { recursive: true, force: true })
}
