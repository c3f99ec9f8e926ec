import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { usd } from './helpers/amounts.ts'
import {
  type ClientIdentity,
  createClientIdentity,
  grantToken,
  outgoingPaymentToken,
  signedRequest,
} from './helpers/clients.ts'
import { createWalletAddress, deposit, startTestServer, type TestServer } from './helpers/server.ts'

/**
 * A grant's spending kept as running totals on its lock row (migration 0019): a create reads them
 * under the grant's lock instead of summing the grant's payments. Cancelled payments give their
 * allowance back, the totals always equal the sums over the payments' rows, and a grant whose
 * totals are not (yet) valid is summed once. No payment worker runs here, so payments stay
 * `sending` until an operator cancels them.
 */
let server: TestServer
let app: ClientIdentity
let rs: string
let alice: { id: string; url: string }
let bob: { id: string; url: string }
let ipToken: string
let quoteToken: string

const idOf = (url: string) => url.split('/').at(-1)!

before(async () => {
  server = await startTestServer({ ROLES: 'open-payments,auth,admin,ilp' })
  rs = server.openPaymentsUrl
  app = await createClientIdentity(server, { path: '/app' })
  alice = await createWalletAddress(server, { path: '/alice' })
  bob = await createWalletAddress(server, { path: '/bob' })
  await deposit(server, alice.id, 100_000n)
  ipToken = await grantToken(server, app, [
    { type: 'incoming-payment', actions: ['create'], identifier: bob.url },
  ])
  quoteToken = await grantToken(server, app, [{ type: 'quote', actions: ['create'] }])
})
after(() => server?.close())

/** A quote of 1.00 from Alice to a new incoming payment of Bob's; its URL. */
async function quoteToBob(): Promise<string> {
  const ip = await signedRequest(`${rs}/incoming-payments`, {
    body: { walletAddress: bob.url },
    token: ipToken,
    identity: app,
  })
  const quote = await signedRequest(`${rs}/quotes`, {
    body: {
      walletAddress: alice.url,
      receiver: ip.body.id,
      method: 'ilp',
      debitAmount: usd('100'),
    },
    token: quoteToken,
    identity: app,
  })
  return quote.body.id
}

const payFrom = (quoteId: string, token: string) =>
  signedRequest(`${rs}/outgoing-payments`, {
    body: { walletAddress: alice.url, quoteId },
    token,
    identity: app,
  })

/** Alice pays Bob 1.00 under `token`: the answer's status and the grant's spending it reports. */
async function pay(token: string) {
  const op = await payFrom(await quoteToBob(), token)
  return {
    status: op.status,
    id: op.status === 201 ? idOf(op.body.id) : undefined,
    spent: op.body.grantSpentDebitAmount?.value as string | undefined,
  }
}

const db = () => server.database.db

async function grantOf(paymentId: string) {
  const p = await db()
    .selectFrom('outgoing_payments')
    .select('grant_id')
    .where('id', '=', paymentId)
    .executeTakeFirstOrThrow()
  return p.grant_id
}

/** The stored totals next to the sums over the grant's payments (all, and those still counting). */
async function totalsAndSums(grantId: string) {
  const g = await db()
    .selectFrom('outgoing_payment_grants')
    .selectAll()
    .where('grant_id', '=', grantId)
    .executeTakeFirstOrThrow()
  const rows = await db()
    .selectFrom('outgoing_payments')
    .select(['debit_amount', 'receive_amount', 'state'])
    .where('grant_id', '=', grantId)
    .execute()
  const sum = (xs: bigint[]) => xs.reduce((a, b) => a + b, 0n)
  return {
    valid: g.totals_valid,
    debitTotal: g.debit_total,
    receiveTotals: g.receive_totals,
    allDebit: sum(rows.map((r) => r.debit_amount)),
    allReceive: sum(rows.map((r) => r.receive_amount)),
    countingDebit: sum(
      rows
        .filter((r) => r.state !== 'cancelled' && r.state !== 'failed')
        .map((r) => r.debit_amount),
    ),
  }
}

const cancel = (id: string) =>
  server.admin('POST', `/outgoing-payments/${id}/cancel`, { reason: 'test' })

test('a cancelled payment gives its allowance back; the totals equal the sums over the payments', async () => {
  const token = await outgoingPaymentToken(server, app, alice.url, { debitAmount: usd('300') })
  const first = await pay(token)
  assert.deepEqual([first.status, first.spent], [201, '100'])
  assert.deepEqual([(await pay(token)).spent, (await pay(token)).spent], ['200', '300'])
  assert.equal((await pay(token)).status, 403)

  const grantId = await grantOf(first.id!)
  assert.equal((await cancel(first.id!)).status, 200)
  const again = await pay(token)
  assert.deepEqual([again.status, again.spent], [201, '300'])
  assert.equal((await pay(token)).status, 403)

  const t = await totalsAndSums(grantId)
  assert.equal(t.valid, true)
  // Every payment created is in the totals, the cancelled one too; what counts is 300.
  assert.deepEqual([t.debitTotal, t.allDebit, t.countingDebit], [400n, 400n, 300n])
  assert.deepEqual(t.receiveTotals, { 'USD:2': String(t.allReceive) })
})

test('totals not yet kept (a grant that paid before them) are summed once, then kept', async () => {
  const token = await outgoingPaymentToken(server, app, alice.url, { debitAmount: usd('300') })
  const first = await pay(token)
  await pay(token)
  const grantId = await grantOf(first.id!)
  // As a grant that paid before migration 0019 left its row.
  await db()
    .updateTable('outgoing_payment_grants')
    .set({ totals_valid: false, debit_total: 0n, receive_totals: {} })
    .where('grant_id', '=', grantId)
    .execute()
  const third = await pay(token)
  assert.deepEqual([third.status, third.spent], [201, '300'])
  assert.equal((await pay(token)).status, 403)
  await cancel(third.id!)
  const fourth = await pay(token)
  assert.deepEqual([fourth.status, fourth.spent], [201, '300'])
  const t = await totalsAndSums(grantId)
  assert.deepEqual([t.valid, t.debitTotal, t.allDebit, t.countingDebit], [true, 400n, 400n, 300n])
})

test('twelve concurrent creates under a limit that covers four: four created, totals agree', async () => {
  const token = await outgoingPaymentToken(server, app, alice.url, { debitAmount: usd('400') })
  const results = await Promise.all(Array.from({ length: 12 }, () => pay(token)))
  const created = results.filter((r) => r.status === 201)
  assert.equal(created.length, 4)
  assert.equal(results.filter((r) => r.status === 403).length, 8)
  assert.deepEqual(created.map((r) => r.spent).sort(), ['100', '200', '300', '400'])
  const t = await totalsAndSums(await grantOf(created[0]!.id!))
  assert.deepEqual([t.debitTotal, t.allDebit, t.countingDebit], [400n, 400n, 400n])
})

test('one quote sent six times at once under one grant: one payment, the others invalid quote', async () => {
  const token = await outgoingPaymentToken(server, app, alice.url)
  const quoteId = await quoteToBob()
  const answers = await Promise.all(Array.from({ length: 6 }, () => payFrom(quoteId, token)))
  assert.deepEqual(answers.map((a) => a.status).sort(), [201, 400, 400, 400, 400, 400])
  for (const a of answers.filter((x) => x.status === 400)) {
    assert.equal(a.body.error.description, 'invalid quote')
  }
})
