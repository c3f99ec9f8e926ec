import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, test } from 'node:test'
import { sql } from 'kysely'
import { usd } from './helpers/amounts.ts'
import { grantToken, outgoingPaymentToken } from './helpers/clients.ts'
import { type IlpProxy, peerThroughProxy } from './helpers/ilp-proxy.ts'
import { type Scrape, scrape } from './helpers/metrics.ts'
import {
  createWalletAddress,
  deposit,
  eventually,
  startTestServer,
  type TestServer,
} from './helpers/server.ts'
import { type Ase, incomingPayment, peer, walletApp } from './helpers/two-ases.ts'

/**
 * `GET /metrics` counts what happened, exactly: payments made with the official client at ASE A
 * (local ones, and ones to ASE B over Interledger through a counting proxy), packets as the proxy
 * saw them, a booking that fails once (a database trigger at A), HTTP requests by route pattern.
 */
let a: TestServer
let b: TestServer
let atA: Ase
let atB: Ase
let proxy: IlpProxy
let alice: { id: string; url: string } // at A, pays
let dave: { id: string; url: string } // at A, receives
let bob: { id: string; url: string } // at B, receives
let opToken: string
let daveToken: string

const idOf = (url: string) => url.split('/').at(-1)!

before(async () => {
  a = await startTestServer({ ILP_ADDRESS: 'test.ase-a' })
  b = await startTestServer({ ILP_ADDRESS: 'test.ase-b' })
  alice = await createWalletAddress(a, { path: '/alice' })
  dave = await createWalletAddress(a, { path: '/dave' })
  bob = await createWalletAddress(b, { path: '/bob' })
  proxy = await peerThroughProxy(a, b, 'bank-b', {
    out: 'a-to-b-secret-token',
    in: 'b-to-a-secret-token',
  })
  await peer(b, a, 'bank-a', { out: 'b-to-a-secret-token', in: 'a-to-b-secret-token' })
  await deposit(a, alice.id, 1_000_000n)
  atA = await walletApp(a)
  atB = await walletApp(b)
  opToken = await outgoingPaymentToken(a, atA.app, alice.url)
  daveToken = await grantToken(a, atA.app, [
    { type: 'incoming-payment', actions: ['create', 'read', 'complete'], identifier: dave.url },
  ])
})
after(async () => {
  await a?.close()
  await b?.close()
  await proxy?.close()
})

/** Quote and pay `receiver` from Alice with the official client; waits for the payment to end. */
async function pay(receiver: string, opts: { beforeCreate?: () => void } = {}) {
  const quote = await atA.app.client.quote.create(
    { url: a.openPaymentsUrl, accessToken: atA.quoteToken },
    { walletAddress: alice.url, receiver, method: 'ilp' },
  )
  opts.beforeCreate?.()
  const op = await atA.app.client.outgoingPayment.create(
    { url: a.openPaymentsUrl, accessToken: opToken },
    { walletAddress: alice.url, quoteId: quote.id },
  )
  return ended(idOf(op.id))
}

const ended = (id: string) =>
  eventually(async () => {
    const p = await a.admin('GET', `/outgoing-payments/${id}`)
    return p.body.state === 'sending' ? undefined : p.body
  }, 20_000)

const daveInvoice = (amount: string) =>
  atA.app.client.incomingPayment.create(
    { url: a.openPaymentsUrl, accessToken: daveToken },
    { walletAddress: dave.url, incomingAmount: usd(amount) },
  )

/** The reply tallies of a scrape, in the proxy's shape. */
function packets(s: Scrape, direction: string) {
  const rejected: Record<string, number> = {}
  for (const sample of s.samples) {
    if (sample.name === 'op_ilp_packets_rejected_total' && sample.labels.direction === direction)
      rejected[sample.labels.code!] = sample.value
  }
  return { fulfilled: s.value('op_ilp_packets_fulfilled_total', { direction }), rejected }
}

test('after real payments and packets, /metrics shows exactly what happened', async () => {
  // Two local payments, each completing Dave's incoming payment.
  for (const amount of ['300', '450']) {
    const done = await pay((await daveInvoice(amount)).id)
    assert.equal(done.state, 'completed')
  }
  // One incoming payment completed by its client, one by the operator.
  const byClient = await daveInvoice('100')
  await atA.app.client.incomingPayment.complete({ url: byClient.id, accessToken: daveToken })
  const byOperator = await daveInvoice('100')
  assert.equal(
    (await a.admin('POST', `/incoming-payments/${idOf(byOperator.id)}/complete`)).status,
    200,
  )

  // A payment to B over Interledger.
  const remote = await pay((await incomingPayment(atB, bob.url, usd('2000'))).ip.id)
  assert.equal(remote.state, 'completed')

  // A payment to B whose booking at A fails once after the money left (a trigger refuses the
  // delivery transfer), is retried and booked.
  await sql`CREATE FUNCTION refuse_delivery() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'booking refused by the test'; END $$`.execute(a.database.db)
  await sql`CREATE TRIGGER refuse_delivery BEFORE INSERT ON ledger_transfers FOR EACH ROW
    WHEN (NEW.id LIKE 'outgoing:%:deliver%') EXECUTE FUNCTION refuse_delivery()`.execute(
    a.database.db,
  )
  const quote = await atA.app.client.quote.create(
    { url: a.openPaymentsUrl, accessToken: atA.quoteToken },
    {
      walletAddress: alice.url,
      receiver: (await incomingPayment(atB, bob.url, usd('700'))).ip.id,
      method: 'ilp',
    },
  )
  const retried = await atA.app.client.outgoingPayment.create(
    { url: a.openPaymentsUrl, accessToken: opToken },
    { walletAddress: alice.url, quoteId: quote.id },
  )
  await eventually(async () =>
    (await scrape(a)).value('op_settlement_booking_failures_total') >= 1 ? true : undefined,
  )
  await sql`DROP TRIGGER refuse_delivery ON ledger_transfers`.execute(a.database.db)
  assert.equal((await ended(idOf(retried.id))).state, 'completed')

  // A payment to B that the path refuses (the proxy answers F02 itself): it fails.
  let seenByB = { fulfilled: 0, rejected: {} as Record<string, number> }
  const refused = await pay((await incomingPayment(atB, bob.url, usd('500'))).ip.id, {
    beforeCreate: () => {
      seenByB = structuredClone(proxy.tally)
      proxy.mode = 'reject'
    },
  })
  assert.equal(refused.state, 'failed')
  proxy.mode = 'forward'

  // A's outgoing packets are exactly the replies that crossed the proxy; B answered those it saw.
  const atAScrape = await eventually(async () => {
    const s = await scrape(a)
    return JSON.stringify(packets(s, 'outgoing')) === JSON.stringify(proxy.tally) ? s : undefined
  })
  assert.deepEqual(packets(atAScrape, 'outgoing'), proxy.tally)
  assert.ok(proxy.tally.fulfilled > 0)
  assert.ok((proxy.tally.rejected.F02 ?? 0) > 0)
  assert.deepEqual(packets(atAScrape, 'incoming'), { fulfilled: 0, rejected: {} })
  const atBScrape = await scrape(b)
  assert.deepEqual(packets(atBScrape, 'incoming'), seenByB)
  const forwarded = seenByB.fulfilled + Object.values(seenByB.rejected).reduce((x, y) => x + y, 0)
  assert.equal(
    atBScrape.value('op_http_requests_total', {
      listener: 'ilp',
      method: 'POST',
      route: '/ilp',
      status: '200',
    }),
    forwarded,
  )

  // Payments at A: 5 created, 4 completed, 1 failed (a path error), 1 booking failure.
  const s = atAScrape
  assert.equal(s.value('op_outgoing_payments_created_total'), 5)
  assert.equal(s.value('op_outgoing_payments_completed_total'), 4)
  assert.equal(s.value('op_outgoing_payments_failed_total'), 1)
  assert.equal(s.value('op_outgoing_payments_failed_total', { reason: 'ilp' }), 1)
  assert.equal(s.value('op_outgoing_payments_cancelled_total'), 0)
  assert.equal(s.value('op_settlement_booking_failures_total'), 1)
  assert.equal(s.value('op_outgoing_payment_completion_seconds_count'), 4)
  assert.ok(s.value('op_outgoing_payment_completion_seconds_sum') > 0)
  // The retried payment took at least its 4 s backoff.
  assert.ok(
    s.value('op_outgoing_payment_completion_seconds_bucket', { le: '+Inf' }) -
      s.value('op_outgoing_payment_completion_seconds_bucket', { le: '2.5' }) >=
      1,
  )
  // Incoming at A: two completed by payments, one by its client, one by the operator.
  assert.equal(s.value('op_incoming_payments_completed_total'), 4)
  // At B: the two payments that arrived completed their incoming payments.
  assert.equal(atBScrape.value('op_incoming_payments_completed_total'), 2)
  assert.equal(atBScrape.value('op_outgoing_payments_created_total'), 0)
})

test('HTTP requests are counted by listener, route pattern and status, with latencies', async () => {
  const ip = await daveInvoice('5')
  const before = await scrape(a)
  const route = { listener: 'admin', method: 'GET', route: '/incoming-payments/:id' }
  for (let i = 0; i < 3; i++) await a.admin('GET', `/incoming-payments/${idOf(ip.id)}`)
  await a.admin('GET', `/incoming-payments/${randomUUID()}`)
  await a.admin('GET', `/no-such-route/${randomUUID()}`)
  const s = await scrape(a)
  const delta = (labels: Record<string, string>, name = 'op_http_requests_total') =>
    s.value(name, labels) - before.value(name, labels)
  assert.equal(delta({ ...route, status: '200' }), 3)
  assert.equal(delta({ ...route, status: '404' }), 1)
  assert.equal(delta({ listener: 'admin', route: '(unmatched)', status: '404' }), 1)
  assert.equal(delta(route, 'op_http_request_duration_seconds_count'), 4)
  assert.ok(delta(route, 'op_http_request_duration_seconds_sum') > 0)
  // The Open Payments listener counted the official client's calls by pattern too: the five
  // incoming payments this file created at A.
  assert.equal(
    s.value('op_http_requests_total', {
      listener: 'open-payments',
      method: 'POST',
      route: '/incoming-payments',
      status: '201',
    }),
    5,
  )
  // No label value is a URL with an id in it.
  const uuid = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/
  for (const sample of s.samples) {
    for (const value of Object.values(sample.labels)) assert.doesNotMatch(value, uuid)
  }
  // The database pool: in use and idle connections, and waiting queries.
  assert.ok(s.samples.some((x) => x.name === 'op_db_pool_connections' && x.labels.state === 'idle'))
  assert.ok(s.samples.some((x) => x.name === 'op_db_pool_waiting'))
  assert.ok(s.value('op_db_pool_connections', { state: 'in_use' }) >= 0)
  // The shared connections: nothing in flight once every answer is in, no lock waits.
  assert.equal(s.value('op_db_shared_in_flight'), 0)
  assert.equal(s.value('op_db_shared_lock_timeouts_total'), 0)
})

test('/metrics needs the admin key', async () => {
  const res = await fetch(`${a.adminUrl}/metrics`)
  assert.equal(res.status, 401)
  await res.body?.cancel()
})
