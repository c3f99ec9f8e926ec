/**
 * `npm run demo:interledger`: two banks pay each other across currencies over Interledger.
 *
 * Bank A and Bank B run as two processes (`src/main.ts`, as `npm start` runs it), each on its own
 * embedded database in a temporary directory, with its own ILP address and ports. Their operators
 * peer them through the admin API with a link in USD. An app using the official Open Payments
 * client then pays Bob's incoming payment of 100.00 EUR at Bank B from Alice's USD account at
 * Bank A, and both banks' books are printed and checked against each other. Nothing outside this
 * machine is contacted, and both processes and their data are removed at the end.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { createAuthenticatedClient } from '@interledger/open-payments'
import { formatAmount } from '../src/lib/amount.ts'
import { type Bank, startBank, stopAllBanks } from './bank.ts'
import { consentedOutgoingGrant } from './consent.ts'

/** One exchange rate, as both banks are configured: 1 USD buys 0.9 EUR. */
const RATES = JSON.stringify({ USD: { EUR: '0.9' } })
const USD_TO_EUR = { numerator: 9n, denominator: 10n }
const PAYMENT_TIMEOUT_MS = 60_000
// A quote across two banks includes Bank A's own calls to Bank B, each bank on a single-connection
// embedded database: on a busy machine that can take longer than the client's default 5 s.
const CLIENT_TIMEOUT_MS = 30_000

type Amount = { value: string; assetCode: string; assetScale: number }

const step = (n: number, text: string) => console.log(`\n${n}. ${text}`)
const show = (label: string, value: string) => console.log(`   ${label}: ${value}`)
const units = (v: bigint, scale: number) =>
  v < 0n ? `-${formatAmount(-v, scale)}` : formatAmount(v, scale)
const money = (a: Amount) => `${units(BigInt(a.value), a.assetScale)} ${a.assetCode}`
const usd = (v: bigint) => `${units(v, 2)} USD`
const eur = (v: bigint) => `${units(v, 2)} EUR`

/** The banks that started, for the failure report. */
const banks: Bank[] = []
let interrupted = false
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    interrupted = true
    console.error(`\n${signal}: stopping both banks`)
    void stopAllBanks().then(() => process.exit(1))
  })
}

/** An error in one line; the Open Payments client's errors carry the server's answer apart. */
function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err)
  const e = err as Error & { status?: number; code?: string; description?: string }
  const answer = [e.status, e.code, e.description].filter((v) => v !== undefined).join(' ')
  return answer ? `${e.message}: ${answer}` : e.message
}

/** Fails the demo with a clear message when a check of the books does not hold. */
function check(ok: boolean, text: string): void {
  show(ok ? 'agrees' : 'DISAGREES', text)
  if (!ok) throw new Error(`the books disagree: ${text}`)
}

async function run(): Promise<void> {
  console.log('Interledger demo: two banks on this machine, each with its own embedded database')

  step(1, 'Bank A and Bank B start: two processes, two databases, two ILP addresses')
  const start = async (name: string, ilpAddress: string) => {
    const bank = await startBank({ name, ilpAddress, rates: RATES })
    banks.push(bank)
    return bank
  }
  const [a, b] = await Promise.all([start('Bank A', 'test.bank-a'), start('Bank B', 'test.bank-b')])
  for (const bank of [a, b]) {
    show(bank.name, `process ${bank.pid}, database in ${bank.dataDir}`)
    show(
      `${bank.name} addresses`,
      `ILP ${bank.ilpAddress} at ${bank.ilpUrl}, Open Payments ${bank.openPaymentsUrl}`,
    )
  }
  show('exchange rate (both banks)', '1 USD = 0.9 EUR')

  step(2, 'The operators peer the banks through their admin APIs: one link, in USD')
  await a.admin('POST', '/assets', { code: 'USD', scale: 2 })
  for (const code of ['USD', 'EUR']) await b.admin('POST', '/assets', { code, scale: 2 })
  const aToB = randomBytes(24).toString('base64url')
  const bToA = randomBytes(24).toString('base64url')
  const link = (to: Bank, name: string, out: string, inc: string) => ({
    name,
    assetCode: 'USD',
    assetScale: 2,
    ilpAddress: to.ilpAddress,
    httpEndpoint: to.ilpUrl,
    outgoingToken: out,
    incomingTokens: [inc],
    creditLimit: '100000',
  })
  const peerAtA = await a.admin('POST', '/peers', link(b, 'bank-b', aToB, bToA))
  const peerAtB = await b.admin('POST', '/peers', link(a, 'bank-a', bToA, aToB))
  show('Bank A', `peer "bank-b" at ${b.ilpAddress}, USD, may owe Bank A up to 1000.00 USD`)
  show('Bank B', `peer "bank-a" at ${a.ilpAddress}, USD, may owe Bank B up to 1000.00 USD`)

  step(3, 'Accounts: Alice at Bank A in USD, Bob at Bank B in EUR, and an app with a key')
  const wallet = (bank: Bank, path: string, assetCode: string, publicName: string) =>
    bank.admin('POST', '/wallet-addresses', { path, assetCode, assetScale: 2, publicName })
  const alice = await wallet(a, '/alice', 'USD', 'Alice')
  const bob = await wallet(b, '/bob', 'EUR', 'Bob')
  const app = await wallet(a, '/pay-app', 'USD', 'Pay App')
  const { publicKey, privateKey } = generateKeyPairSync('ed25519')
  await a.admin('POST', `/wallet-addresses/${app.id}/keys`, {
    jwk: {
      kid: 'pay-app-key',
      kty: 'OKP',
      crv: 'Ed25519',
      alg: 'EdDSA',
      x: publicKey.export({ format: 'jwk' }).x,
    },
  })
  await a.admin('POST', `/wallet-addresses/${alice.id}/deposits`, {
    id: 'demo-funding',
    amount: '50000',
  })
  show('Alice', `${alice.url} (funded with 500.00 USD)`)
  show('Bob', bob.url)
  show('Pay App', `${app.url} (signs its requests to both banks)`)

  // The books before the payment, to show what moved.
  const books = async () => {
    return {
      alice: BigInt((await a.admin('GET', `/wallet-addresses/${alice.id}/balance`)).balance),
      bob: BigInt((await b.admin('GET', `/wallet-addresses/${bob.id}/balance`)).balance),
      peerAtA: BigInt((await a.admin('GET', `/peers/${peerAtA.id}/balance`)).balance),
      peerAtB: BigInt((await b.admin('GET', `/peers/${peerAtB.id}/balance`)).balance),
    }
  }
  const before = await books()

  const client = await createAuthenticatedClient({
    walletAddressUrl: app.url,
    privateKey,
    keyId: 'pay-app-key',
    validateResponses: true,
    requestTimeoutMs: CLIENT_TIMEOUT_MS,
    logLevel: 'silent',
  })
  const aliceDoc = await client.walletAddress.get({ url: alice.url })
  const bobDoc = await client.walletAddress.get({ url: bob.url })

  step(4, 'The app asks Bank B for an incoming payment of 100.00 EUR into Bob’s account')
  const ipGrant = await client.grant.request(
    { url: bobDoc.authServer },
    {
      access_token: {
        access: [{ type: 'incoming-payment', actions: ['create', 'read'], identifier: bob.url }],
      },
    },
  )
  if (!('access_token' in ipGrant) || !ipGrant.access_token) throw new Error('expected a token')
  const ipToken = ipGrant.access_token.value
  const incoming = await client.incomingPayment.create(
    { url: bobDoc.resourceServer, accessToken: ipToken },
    {
      walletAddress: bob.url,
      incomingAmount: { value: '10000', assetCode: 'EUR', assetScale: 2 },
      metadata: { description: 'Invoice 42' },
    },
  )
  show('incoming payment', incoming.id)
  show('Bob asks for', money(incoming.incomingAmount!))

  step(5, 'The app asks Bank A for a quote from Alice; Bank A probes the path to Bank B')
  const quoteGrant = await client.grant.request(
    { url: aliceDoc.authServer },
    { access_token: { access: [{ type: 'quote', actions: ['create', 'read'] }] } },
  )
  if (!('access_token' in quoteGrant) || !quoteGrant.access_token) {
    throw new Error('expected a token')
  }
  const quote = await client.quote.create(
    { url: aliceDoc.resourceServer, accessToken: quoteGrant.access_token.value },
    { walletAddress: alice.url, receiver: incoming.id, method: 'ilp' },
  )
  show('Bob receives', money(quote.receiveAmount))
  show('Alice pays at most', `${money(quote.debitAmount)} (the rate, less up to 1 % slippage)`)

  step(6, 'Alice signs in at Bank A and accepts the payment on its consent page')
  const opGrant = await consentedOutgoingGrant(client, {
    authServer: aliceDoc.authServer,
    walletAddress: alice.url,
    password: a.password,
    limits: { debitAmount: quote.debitAmount },
  })
  show('consent page', opGrant.consentPage)
  show('token for', `payments from Alice up to ${money(quote.debitAmount)}`)

  step(7, 'The outgoing payment: Bank A sends STREAM packets to Bank B over ILP-over-HTTP')
  const opToken = opGrant.accessToken
  const created = await client.outgoingPayment.create(
    { url: aliceDoc.resourceServer, accessToken: opToken },
    { walletAddress: alice.url, quoteId: quote.id },
  )
  show('outgoing payment', created.id)
  // Done when Bob's payment is complete (or Alice's failed) and Bank A has booked it: nothing of
  // Alice's money is still reserved.
  const deadline = Date.now() + PAYMENT_TIMEOUT_MS
  let payment = created
  let received = incoming
  for (;;) {
    payment = await client.outgoingPayment.get({ url: created.id, accessToken: opToken })
    received = await client.incomingPayment.get({ url: incoming.id, accessToken: ipToken })
    const { reserved } = await a.admin('GET', `/wallet-addresses/${alice.id}/balance`)
    if ((received.completed || payment.failed) && reserved === '0') break
    if (Date.now() > deadline) {
      throw new Error(
        `the payment did not finish in ${PAYMENT_TIMEOUT_MS / 1000} s: sent ${money(payment.sentAmount)}, received ${money(received.receivedAmount)}`,
      )
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  show('sent from Alice', money(payment.sentAmount))
  show('failed', String(payment.failed))

  step(8, 'Bob’s incoming payment at Bank B')
  show('received', money(received.receivedAmount))
  show('completed', String(received.completed))
  if (payment.failed || !received.completed) throw new Error('the payment did not complete')

  step(9, 'The books of both banks (admin APIs)')
  const after = await books()
  const line = (bank: string, account: string, from: string, to: string) =>
    console.log(`   ${bank}  ${account.padEnd(34)} ${from.padStart(12)} → ${to.padStart(12)}`)
  line('Bank A', 'Alice (wallet, USD)', usd(before.alice), usd(after.alice))
  line('Bank A', 'peer bank-b (+: A owes B)', usd(before.peerAtA), usd(after.peerAtA))
  line('Bank B', 'peer bank-a (−: A owes B)', usd(before.peerAtB), usd(after.peerAtB))
  line('Bank B', 'Bob (wallet, EUR)', eur(before.bob), eur(after.bob))
  for (const bank of [a, b]) {
    show(
      `${bank.name} ledger balanced`,
      String((await bank.admin('GET', '/ledger/check')).balanced),
    )
  }

  step(10, 'Do the books agree?')
  const debited = before.alice - after.alice
  const owedByA = after.peerAtA - before.peerAtA
  const owedToB = before.peerAtB - after.peerAtB
  const credited = after.bob - before.bob
  show('Alice was debited', usd(debited))
  show('Bank A owes Bank B', usd(owedByA))
  show('Bank B is owed by Bank A', usd(owedToB))
  show('Bob was credited', eur(credited))
  check(owedByA === owedToB, `both banks book the same ${usd(owedByA)} between them`)
  check(
    owedByA > 0n && owedByA <= debited && debited <= BigInt(quote.debitAmount.value),
    `Bank A forwarded no more than it took from Alice (${usd(debited)}), within the quote`,
  )
  check(
    credited === BigInt(received.receivedAmount.value) && credited === 10000n,
    `Bob was credited exactly what he asked for, ${eur(credited)}`,
  )
  check(
    credited * USD_TO_EUR.denominator <= owedToB * USD_TO_EUR.numerator,
    `Bank B paid out no more EUR than the ${usd(owedToB)} it took in buys at 0.9 (${eur((owedToB * USD_TO_EUR.numerator) / USD_TO_EUR.denominator)})`,
  )
  for (const bank of [a, b]) {
    if (!(await bank.admin('GET', '/ledger/check')).balanced) {
      throw new Error(`${bank.name}'s ledger does not balance`)
    }
  }
  console.log('\nThe money moved from Alice at Bank A to Bob at Bank B, and the books agree.')
}

try {
  await run()
} catch (err) {
  // Interrupted: the failure is the stop itself, already reported.
  if (!interrupted) {
    console.error(`\nDemo failed: ${describeError(err)}`)
    for (const bank of banks) {
      if (bank.output().trim()) console.error(`\n${bank.name} printed:\n${bank.output().trim()}`)
    }
  }
  process.exitCode = 1
} finally {
  await stopAllBanks()
}
