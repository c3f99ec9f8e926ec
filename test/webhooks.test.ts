import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { sql } from 'kysely'
import { Webhook } from 'standardwebhooks'
import { getIncomingPayment } from '../src/incoming-payments/service.ts'
import { checkBooks } from '../src/ledger/invariants.ts'
import { deadLetterForDeleted } from '../src/webhooks/endpoints.ts'
import { recordEvent } from '../src/webhooks/outbox.ts'
import { deleteOldEvents } from '../src/webhooks/queue.ts'
import { usd } from './helpers/amounts.ts'
import {
  type ClientIdentity,
  createClientIdentity,
  grantToken,
  outgoingPaymentToken,
} from './helpers/clients.ts'
import {
  createWalletAddress,
  deposit,
  eventually,
  request,
  startTestServer,
  type TestServer,
} from './helpers/server.ts'
import { type Receiver, startReceiver } from './helpers/webhook-receiver.ts'

/**
 * Webhooks end to end on one server: state changes driven the real way (the official Open Payments
 * client, the admin API), a real receiver on loopback verifying every signature with the
 * `standardwebhooks` library, short retry settings so that backoff and dead letters take seconds.
 */
let server: TestServer
let app: ClientIdentity
let rs: string
let alice: { id: string; url: string }
let bob: { id: string; url: string }
let carol: { id: string; url: string }
let ipToken: string
let quoteToken: string
let opToken: string
const receivers: Receiver[] = []

const ALL_TYPES = [
  'incoming_payment.created',
  'incoming_payment.completed',
  'incoming_payment.expired',
  'outgoing_payment.created',
  'outgoing_payment.completed',
  'outgoing_payment.failed',
  'outgoing_payment.attempt_failed',
  'wallet_address.balance_low',
  'peer.liquidity_low',
]

before(async () => {
  server = await startTestServer({
    WEBHOOK_POLL_MS: '50',
    WEBHOOK_RETRY_BASE_MS: '100',
    // Long enough that a delivery's first attempt, on a loaded machine, ends well within it: at 6 s
    // a hung delivery's first attempt, started late in a full run, still ended after the period
    // (seen twice), and the delivery was dead-lettered before its retry.
    WEBHOOK_RETRY_PERIOD_SECONDS: '15',
    WEBHOOK_TIMEOUT_MS: '1000',
    WEBHOOK_LEASE_SECONDS: '5',
  })
  rs = server.openPaymentsUrl
  app = await createClientIdentity(server, { path: '/app', publicName: 'App' })
  alice = await createWalletAddress(server, { path: '/alice', publicName: 'Alice' })
  bob = await createWalletAddress(server, { path: '/bob', publicName: 'Bob' })
  carol = await createWalletAddress(server, { path: '/carol', assetCode: 'EUR', assetScale: 2 })
  await deposit(server, alice.id, 100_000n)
  ipToken = await grantToken(server, app, [
    { type: 'incoming-payment', actions: ['create', 'read', 'complete'], identifier: bob.url },
  ])
  quoteToken = await grantToken(server, app, [{ type: 'quote', actions: ['create'] }])
  opToken = await outgoingPaymentToken(server, app, alice.url)
  // Fault injection at the database, for payments whose metadata asks for it: `refuse` makes the
  // receiver's credit change nothing (the payment fails: receiver amount exceeded); `once` makes
  // the first credit attempt throw (a retryable settlement failure).
  await sql`CREATE SEQUENCE webhook_test_fault`.execute(server.database.db)
  await sql`CREATE FUNCTION webhook_test_fault() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF OLD.metadata->>'fault' = 'refuse' THEN RETURN NULL; END IF;
      -- Nested, so that no other payment's update draws from the sequence.
      IF OLD.metadata->>'fault' = 'once' THEN
        IF nextval('webhook_test_fault') = 1 THEN RAISE EXCEPTION 'injected fault'; END IF;
      END IF;
      RETURN NEW;
    END $$`.execute(server.database.db)
  await sql`CREATE TRIGGER webhook_test_fault BEFORE UPDATE ON incoming_payments FOR EACH ROW
    WHEN (NEW.received_amount > OLD.received_amount) EXECUTE FUNCTION webhook_test_fault()`.execute(
    server.database.db,
  )
})
after(async () => {
  await server.close()
  for (const r of receivers) await r.close()
})

/** A receiver and an endpoint pointing at it, subscribed to `types`. */
async function endpoint(types: string[], answer?: Receiver['answer']) {
  const receiver = await startReceiver(answer)
  receivers.push(receiver)
  const res = await server.admin('POST', '/webhook-endpoints', {
    url: receiver.url,
    eventTypes: types,
    description: 'test receiver',
  })
  assert.equal(res.status, 201, JSON.stringify(res.body))
  assert.match(res.body.secret, /^whsec_[A-Za-z0-9+/]{43}=$/)
  receiver.secrets = [res.body.secret]
  return { receiver, id: res.body.id as string, secret: res.body.secret as string }
}

const incomingPayment = (extra: Record<string, unknown> = {}) =>
  app.client.incomingPayment.create(
    { url: rs, accessToken: ipToken },
    { walletAddress: bob.url, ...extra },
  )

async function pay(receiver: string, extra: Record<string, unknown> = {}) {
  const quote = await app.client.quote.create({ url: rs, accessToken: quoteToken }, {
    walletAddress: alice.url,
    receiver,
    method: 'ilp',
    ...extra,
  } as never)
  return app.client.outgoingPayment.create(
    { url: rs, accessToken: opToken },
    { walletAddress: alice.url, quoteId: quote.id },
  )
}

const lastSegment = (url: string) => url.split('/').at(-1)!

/** Accepted requests of a receiver for one resource (its Open Payments id), in arrival order. */
const eventsOf = (r: Receiver, id: string) =>
  r.accepted.filter((e) => e.payload?.data?.id === id).map((e) => e.payload.type as string)

async function deliveries(query: string) {
  const res = await server.admin('GET', `/webhook-deliveries?${query}`)
  assert.equal(res.status, 200, JSON.stringify(res.body))
  return res.body.items as any[]
}

describe('every event type', () => {
  test('arrives once per state change, signed, with the resource in its Open Payments shape', async () => {
    const { receiver } = await endpoint(ALL_TYPES)
    const threshold = await server.admin('PUT', `/wallet-addresses/${alice.id}/balance-threshold`, {
      threshold: '50000',
    })
    assert.equal(threshold.status, 200)
    assert.deepEqual(threshold.body, { walletAddressId: alice.id, threshold: '50000' })

    // Paid in full by a local outgoing payment: created, then completed through settlement.
    const paid = await incomingPayment({ incomingAmount: usd('5000') })
    const payment = await pay(paid.id)
    // Completed by the client's `complete` call.
    const open = await incomingPayment()
    await eventually(async () => (eventsOf(receiver, open.id).length > 0 ? true : undefined))
    await app.client.incomingPayment.complete({ url: open.id, accessToken: ipToken })
    // Expires unpaid.
    const expiring = await incomingPayment({
      expiresAt: new Date(Date.now() + 1500).toISOString(),
    })
    // Fails: the receiver's credit is refused.
    const refusing = await incomingPayment({
      incomingAmount: usd('1000'),
      metadata: { fault: 'refuse' },
    })
    const failing = await pay(refusing.id)
    // A retryable failure first, then completed.
    const flaky = await incomingPayment({ incomingAmount: usd('700'), metadata: { fault: 'once' } })
    const retried = await pay(flaky.id)
    // A withdrawal takes Alice's available balance below 500.00; the next debit, already below,
    // is no new crossing.
    await eventually(async () => {
      const res = await server.database.db
        .selectFrom('outgoing_payments')
        .select('state')
        .where('id', '=', lastSegment(retried.id))
        .executeTakeFirstOrThrow()
      return res.state === 'completed' ? true : undefined
    }, 10_000)
    const balance = (await server.admin('GET', `/wallet-addresses/${alice.id}/balance`)).body
    const withdraw = (id: string, amount: bigint) =>
      server.admin('POST', `/wallet-addresses/${alice.id}/withdrawals`, {
        id,
        amount: amount.toString(),
      })
    assert.equal((await withdraw('w1', BigInt(balance.available) - 49_000n)).status, 201)
    assert.equal((await withdraw('w1', BigInt(balance.available) - 49_000n)).status, 200) // replayed
    assert.equal((await withdraw('w2', 100n)).status, 201)

    const expected: [string, string][] = [
      [paid.id, 'incoming_payment.created'],
      [paid.id, 'incoming_payment.completed'],
      [payment.id, 'outgoing_payment.created'],
      [payment.id, 'outgoing_payment.completed'],
      [open.id, 'incoming_payment.created'],
      [open.id, 'incoming_payment.completed'],
      [expiring.id, 'incoming_payment.created'],
      [expiring.id, 'incoming_payment.expired'],
      [failing.id, 'outgoing_payment.created'],
      [failing.id, 'outgoing_payment.failed'],
      [refusing.id, 'incoming_payment.created'],
      [retried.id, 'outgoing_payment.created'],
      [retried.id, 'outgoing_payment.attempt_failed'],
      [retried.id, 'outgoing_payment.completed'],
      [flaky.id, 'incoming_payment.created'],
      [flaky.id, 'incoming_payment.completed'],
      [alice.url, 'wallet_address.balance_low'],
    ]
    await eventually(
      async () => (receiver.accepted.length >= expected.length ? true : undefined),
      15_000,
    ).catch((err) => {
      console.log(receiver.requests.map((r) => [r.payload?.type, r.payload?.data?.id]))
      throw err
    })
    // Nothing more arrives: each state change was one event.
    await new Promise((r) => setTimeout(r, 500))
    assert.equal(receiver.requests.length, expected.length)
    assert.ok(
      receiver.requests.every((r) => r.payload !== undefined),
      'every signature verifies',
    )
    assert.equal(new Set(receiver.requests.map((r) => r.webhookId)).size, expected.length)
    for (const [id, type] of expected) {
      const got = receiver.accepted.filter(
        (e) => e.payload.data.id === id && e.payload.type === type,
      )
      assert.equal(got.length, 1, `${type} of ${id}`)
      assert.equal(got[0]!.payload.id, got[0]!.webhookId)
    }
    // Per resource, in the order the changes happened.
    assert.deepEqual(eventsOf(receiver, retried.id), [
      'outgoing_payment.created',
      'outgoing_payment.attempt_failed',
      'outgoing_payment.completed',
    ])
    assert.deepEqual(eventsOf(receiver, paid.id), [
      'incoming_payment.created',
      'incoming_payment.completed',
    ])

    const byType = (id: string, type: string) =>
      receiver.accepted.find((e) => e.payload.data.id === id && e.payload.type === type)!.payload
    const completed = byType(paid.id, 'incoming_payment.completed')
    assert.deepEqual(Object.keys(completed), ['id', 'type', 'timestamp', 'data'])
    assert.deepEqual(completed.data, {
      id: paid.id,
      walletAddress: bob.url,
      completed: true,
      incomingAmount: usd('5000'),
      receivedAmount: usd('5000'),
      expiresAt: paid.expiresAt,
      createdAt: paid.createdAt,
      walletAddressId: bob.id,
    })
    const created = byType(paid.id, 'incoming_payment.created').data
    assert.equal(created.completed, false)
    assert.equal('methods' in created, false, 'no STREAM credentials in webhooks')
    assert.deepEqual(byType(expiring.id, 'incoming_payment.expired').data.completed, false)

    const sent = byType(payment.id, 'outgoing_payment.completed').data
    assert.equal(sent.walletAddress, alice.url)
    assert.equal(sent.walletAddressId, alice.id)
    assert.equal(sent.state, 'completed')
    assert.equal(sent.failed, false)
    assert.deepEqual(sent.sentAmount, usd('5000'))
    assert.deepEqual(sent.debitAmount, payment.debitAmount)
    assert.deepEqual(sent.receiveAmount, usd('5000'))
    assert.deepEqual(sent.feeAmount, usd('0'))
    assert.equal(byType(payment.id, 'outgoing_payment.created').data.state, 'sending')

    const failed = byType(failing.id, 'outgoing_payment.failed').data
    assert.equal(failed.failed, true)
    assert.equal(failed.failureReason, 'receiver amount exceeded')
    assert.deepEqual(failed.sentAmount, usd('0'))
    const attempt = byType(retried.id, 'outgoing_payment.attempt_failed').data
    assert.equal(attempt.attempt, 1)
    assert.equal(attempt.error, 'settlement failed')
    assert.ok(Date.parse(attempt.nextAttemptAt) > Date.parse(attempt.createdAt))

    const low = byType(alice.url, 'wallet_address.balance_low').data
    assert.equal(low.walletAddressId, alice.id)
    assert.equal(low.publicName, 'Alice')
    assert.deepEqual(low.available, usd('49000'))
    assert.deepEqual(low.threshold, usd('50000'))
    assert.equal(low.thresholdOf, 'wallet_address')
    assert.ok((await checkBooks(server.database.db)).balanced)
  })

  test('an asset threshold applies to wallet addresses without their own; a reservation crosses it too', async () => {
    const { receiver } = await endpoint(['wallet_address.balance_low'])
    const eur = (await server.admin('GET', '/assets')).body.items.find((a: any) => a.code === 'EUR')
    assert.equal(
      (await server.admin('PUT', `/assets/${eur.id}/balance-threshold`, { threshold: '500' }))
        .status,
      200,
    )
    await deposit(server, carol.id, 1000n)
    const out = await server.admin('POST', `/wallet-addresses/${carol.id}/withdrawals`, {
      id: 'c1',
      amount: '600',
    })
    assert.equal(out.status, 201)
    // Alice is below her own threshold already: an outgoing payment's reservation is no crossing.
    await pay((await incomingPayment({ incomingAmount: usd('100') })).id)
    const got = await eventually(async () => receiver.accepted[0]).catch((err) => {
      console.log(receiver.requests)
      throw err
    })
    assert.equal(got.payload.data.walletAddressId, carol.id)
    assert.equal(got.payload.data.thresholdOf, 'asset')
    assert.deepEqual(got.payload.data.available, { value: '400', assetCode: 'EUR', assetScale: 2 })
    // Back just above Alice's own threshold, an outgoing payment's reservation takes her below it.
    const own = await server.admin('PUT', `/wallet-addresses/${alice.id}/balance-threshold`, {
      threshold: '50000',
    })
    assert.equal(own.status, 200)
    const { available } = (await server.admin('GET', `/wallet-addresses/${alice.id}/balance`)).body
    if (BigInt(available) < 50_500n) await deposit(server, alice.id, 50_500n - BigInt(available))
    const reserved = await pay((await incomingPayment({ incomingAmount: usd('1000') })).id)
    const aliceLow = await eventually(async () => receiver.accepted[1])
    assert.equal(aliceLow.payload.data.walletAddressId, alice.id)
    assert.deepEqual(aliceLow.payload.data.available, usd('49500'))
    assert.deepEqual(reserved.debitAmount, usd('1000'))
    await new Promise((r) => setTimeout(r, 300))
    assert.equal(receiver.requests.length, 2)
  })
})

describe('delivery', () => {
  test('a receiver that fails three times gets the event on the fourth try, with backoff', async () => {
    const { receiver, id } = await endpoint(['incoming_payment.created'], (r) =>
      r.attempt <= 3 ? 500 : 200,
    )
    const ip = await incomingPayment()
    const got = await eventually(async () => receiver.accepted[0], 10_000)
    assert.equal(got.attempt, 4)
    assert.equal(got.payload.data.id, ip.id)
    assert.equal(receiver.requests.length, 4)
    assert.ok(receiver.requests.every((r) => r.webhookId === got.webhookId && r.payload))
    const gaps = receiver.requests.slice(1).map((r, i) => r.at - receiver.requests[i]!.at)
    // After the nth failure the wait is at least half of 100 ms × 2^(n−1) (retryDelayMs): each
    // at least twice the last's least. A loaded machine only lengthens gaps, so only these lower
    // bounds are checked (comparing two measured gaps failed on a busy machine).
    gaps.forEach((gap, i) => {
      assert.ok(gap >= 50 * 2 ** i, `backoff grows: ${gaps}`)
    })

    const [delivery] = await eventually(async () => {
      const items = await deliveries(`endpointId=${id}`)
      return items[0]?.status === 'delivered' ? items : undefined
    })
    assert.equal(delivery.eventId, got.webhookId)
    assert.equal(delivery.eventType, 'incoming_payment.created')
    assert.deepEqual(
      delivery.attempts.map((a: any) => [a.attempt, a.statusCode, a.delivered]),
      [
        [1, 500, false],
        [2, 500, false],
        [3, 500, false],
        [4, 200, true],
      ],
    )
    const one = await server.admin('GET', `/webhook-deliveries/${delivery.id}`)
    assert.equal(one.status, 200)
    assert.deepEqual(one.body.payload, got.payload)
    assert.equal(one.body.attempts.length, 4)
  })

  test('a dead-lettered event is replayed through the admin API and arrives, with the same webhook-id', async () => {
    let up = false
    const { receiver, id } = await endpoint(['incoming_payment.created'], () => (up ? 204 : 503))
    const ip = await incomingPayment()
    const [dead] = await eventually(async () => {
      const items = await deliveries(`endpointId=${id}&status=dead`)
      return items.length > 0 ? items : undefined
    }, 30_000)
    assert.ok(dead.attempts.length >= 2)
    assert.equal(dead.lastStatusCode, 503)
    assert.equal(receiver.accepted.length, 0)

    up = true
    const key = randomUUID()
    const replay = () =>
      server.admin('POST', `/webhook-endpoints/${id}/replay-dead-letters`, undefined, {
        'idempotency-key': key,
      })
    const first = await replay()
    assert.equal(first.status, 202)
    assert.deepEqual(first.body, { replayed: 1 })
    const again = await replay()
    assert.equal(again.status, 202)
    assert.equal(again.headers.get('idempotent-replayed'), 'true')
    const got = await eventually(async () => receiver.accepted[0])
    assert.equal(got.payload.data.id, ip.id)
    assert.equal(got.webhookId, dead.eventId)

    // One event to one endpoint, on request.
    const single = await server.admin('POST', `/webhook-events/${dead.eventId}/replay`, {
      endpointId: id,
    })
    assert.equal(single.status, 202)
    assert.equal(single.body.deliveries.length, 1)
    const second = await eventually(async () => receiver.accepted[1])
    assert.equal(second.webhookId, dead.eventId)
    const event = await eventually(async () => {
      const res = await server.admin('GET', `/webhook-events/${dead.eventId}`)
      return res.body.deliveries.some((d: any) => d.endpointId === id && d.status === 'delivered')
        ? res
        : undefined
    })
    assert.equal(event.body.type, 'incoming_payment.created')
    assert.deepEqual(event.body.payload, got.payload)
  })

  test('events of one payment arrive in order: a later event waits while an earlier one is retried', async () => {
    let createdTries = 0
    const { receiver } = await endpoint(
      ['outgoing_payment.created', 'outgoing_payment.completed'],
      (r) => (r.payload?.type === 'outgoing_payment.created' && ++createdTries <= 2 ? 500 : 200),
    )
    const payment = await pay((await incomingPayment({ incomingAmount: usd('300') })).id)
    await eventually(async () => (receiver.accepted.length === 2 ? true : undefined), 10_000)
    const types = receiver.requests.map((r) => r.payload.type)
    assert.deepEqual(types, [
      'outgoing_payment.created',
      'outgoing_payment.created',
      'outgoing_payment.created',
      'outgoing_payment.completed',
    ])
    assert.ok(receiver.requests.every((r) => r.payload.data.id === payment.id))
  })

  test('a rotated secret signs next to the old one until the old one expires', async () => {
    const { receiver, id, secret } = await endpoint(['incoming_payment.created'])
    const key = randomUUID()
    const rotate = () =>
      server.admin('POST', `/webhook-endpoints/${id}/rotate-secret`, {}, { 'idempotency-key': key })
    const rotated = await rotate()
    assert.equal(rotated.status, 200)
    assert.notEqual(rotated.body.secret, secret)
    assert.ok(rotated.body.previousSecretExpiresAt)
    assert.deepEqual((await rotate()).body, rotated.body)
    await incomingPayment()
    const got = await eventually(async () => receiver.accepted[0])
    const headers = {
      'webhook-id': got.webhookId,
      'webhook-timestamp': got.timestamp,
      'webhook-signature': got.signature,
    }
    assert.equal(got.signature.split(' ').length, 2)
    new Webhook(secret).verify(got.body, headers)
    new Webhook(rotated.body.secret).verify(got.body, headers)

    const now = await server.admin('POST', `/webhook-endpoints/${id}/rotate-secret`, {
      previousSecretValidSeconds: 0,
    })
    assert.equal(now.status, 200)
    assert.equal(now.body.previousSecretExpiresAt, undefined)
    receiver.secrets = [now.body.secret]
    await incomingPayment()
    const next = await eventually(async () => receiver.accepted[1])
    assert.equal(next.signature.split(' ').length, 1)
    assert.ok(next.payload)
    assert.throws(() =>
      new Webhook(rotated.body.secret).verify(next.body, {
        'webhook-id': next.webhookId,
        'webhook-timestamp': next.timestamp,
        'webhook-signature': next.signature,
      }),
    )
  })
})

describe('retention', () => {
  test('finished events past the retention are deleted with their deliveries and attempts; pending ones stay', async () => {
    const { receiver, id } = await endpoint(['incoming_payment.created'])
    await incomingPayment()
    await incomingPayment()
    const items = await eventually(async () => {
      const items = await deliveries(`endpointId=${id}`)
      return items.length === 2 && items.every((d) => d.status === 'delivered') ? items : undefined
    })
    assert.equal(receiver.accepted.length, 2)
    const [finished, waiting] = items.map((d) => d.eventId as string)
    const db = server.database.db
    // Endpoints of earlier tests get these events too: wait until every delivery has ended.
    await eventually(async () => {
      const pending = await db
        .selectFrom('webhook_deliveries')
        .select('id')
        .where('event_id', 'in', [finished!, waiting!])
        .where('status', '=', 'pending')
        .execute()
      return pending.length === 0 ? true : undefined
    }, 20_000)
    // One still waits for a retry (as if its receiver were down); both are 40 days old.
    await sql`UPDATE webhook_deliveries SET status = 'pending', next_attempt_at = now() + interval '1 hour'
               WHERE event_id = ${waiting}`.execute(db)
    await sql`UPDATE webhook_events SET created_at = now() - interval '40 days'
               WHERE id IN (${finished}, ${waiting})`.execute(db)
    assert.equal(await deleteOldEvents(db, 30), 1)
    assert.equal(await deleteOldEvents(db, 30), 0)
    const left = async (
      table: 'webhook_events' | 'webhook_deliveries',
      column: 'id' | 'event_id',
      eventId: string,
    ) => (await db.selectFrom(table).select(column).where(column, '=', eventId).execute()).length
    assert.equal(await left('webhook_events', 'id', finished!), 0)
    assert.equal(await left('webhook_deliveries', 'event_id', finished!), 0)
    assert.equal(await left('webhook_events', 'id', waiting!), 1)
    assert.ok((await left('webhook_deliveries', 'event_id', waiting!)) > 0)
    assert.equal((await server.admin('GET', `/webhook-events/${finished}`)).status, 404)
    await server.admin('DELETE', `/webhook-endpoints/${id}`)
  })
})

describe('endpoints', () => {
  test('create, list, get, update, disable, delete', async () => {
    const receiver = await startReceiver()
    receivers.push(receiver)
    const created = await server.admin('POST', '/webhook-endpoints', {
      url: receiver.url,
      eventTypes: ['incoming_payment.created'],
    })
    assert.equal(created.status, 201)
    const id = created.body.id
    const got = await server.admin('GET', `/webhook-endpoints/${id}`)
    assert.equal(got.status, 200)
    assert.equal(got.body.secret, undefined, 'the secret is shown only at creation')
    assert.deepEqual(got.body.eventTypes, ['incoming_payment.created'])

    const list = await server.admin('GET', '/webhook-endpoints?first=100')
    assert.ok(list.body.items.some((e: any) => e.id === id))
    assert.ok(list.body.items.every((e: any) => e.secret === undefined))
    const page = await server.admin('GET', '/webhook-endpoints?first=1')
    assert.equal(page.body.items.length, 1)
    assert.equal(page.body.pagination.hasNextPage, true)
    const next = await server.admin(
      'GET',
      `/webhook-endpoints?first=1&cursor=${page.body.pagination.endCursor}`,
    )
    assert.notEqual(next.body.items[0].id, page.body.items[0].id)

    // Disabled: nothing is queued for it.
    const disabled = await server.admin('PATCH', `/webhook-endpoints/${id}`, {
      enabled: false,
      description: 'paused',
    })
    assert.equal(disabled.status, 200)
    assert.equal(disabled.body.enabled, false)
    assert.equal(disabled.body.description, 'paused')
    await incomingPayment()
    const updated = await server.admin('PATCH', `/webhook-endpoints/${id}`, {
      enabled: true,
      eventTypes: ['incoming_payment.completed'],
      description: null,
    })
    assert.equal(updated.status, 200)
    assert.equal(updated.body.description, undefined)
    const ip = await incomingPayment()
    await app.client.incomingPayment.complete({ url: ip.id, accessToken: ipToken })
    receiver.secrets = [created.body.secret]
    const arrived = await eventually(async () => receiver.accepted[0])
    assert.equal(arrived.payload.type, 'incoming_payment.completed')
    assert.equal(receiver.requests.length, 1)

    assert.equal((await server.admin('DELETE', `/webhook-endpoints/${id}`)).status, 204)
    assert.equal((await server.admin('DELETE', `/webhook-endpoints/${id}`)).status, 204)
    assert.equal((await server.admin('GET', `/webhook-endpoints/${id}`)).status, 404)
    assert.equal(
      (await server.admin('PATCH', `/webhook-endpoints/${id}`, { enabled: true })).status,
      404,
    )
    // Its history stays.
    assert.equal((await deliveries(`endpointId=${id}`)).length, 1)
  })

  test('an event written while its endpoint is deleted: its delivery ends as a dead letter, unsent', async () => {
    const { receiver, id } = await endpoint(['incoming_payment.created'])
    const ip = await incomingPayment()
    await eventually(async () => receiver.accepted[0])
    const db = server.database.db
    const payment = (await getIncomingPayment(db, ip.id.split('/').at(-1)!))!
    // The event's statement sees the endpoint; the delete commits before the event does.
    await db.transaction().execute(async (trx) => {
      await recordEvent(trx, { type: 'incoming_payment.created', incomingPayment: payment })
      assert.equal((await server.admin('DELETE', `/webhook-endpoints/${id}`)).status, 204)
    })
    const pending = () =>
      db
        .selectFrom('webhook_deliveries')
        .select('id')
        .where('endpoint_id', '=', id)
        .where('status', '=', 'pending')
        .execute()
    assert.equal((await pending()).length, 1, 'the race leaves one queued')
    // The worker's clean-up ends it; it was never sent.
    assert.equal(await deadLetterForDeleted(db), 1)
    assert.equal((await pending()).length, 0)
    const dead = (await deliveries(`endpointId=${id}`)).filter((d: any) => d.status === 'dead')
    assert.equal(dead.length, 1)
    assert.equal(dead[0].lastError, 'endpoint deleted')
    assert.equal(receiver.requests.length, 1)
  })

  test('lists: a cursor that names nothing is 400; cursors walk both lists, past a deleted endpoint too', async () => {
    for (const path of ['/webhook-endpoints', '/webhook-deliveries']) {
      for (const query of [`cursor=${randomUUID()}`, `first=5&cursor=${randomUUID()}`]) {
        const res = await server.admin('GET', `${path}?${query}`)
        assert.equal(res.status, 400, `${path}?${query}: ${JSON.stringify(res.body)}`)
        assert.equal(res.body.error.code, 'invalid_request')
        assert.equal(res.body.error.details.field, 'querystring.cursor')
      }
    }
    const add = async () =>
      (
        await server.admin('POST', '/webhook-endpoints', {
          url: 'http://127.0.0.1:9/hook',
          eventTypes: ['incoming_payment.created'],
          enabled: false,
        })
      ).body.id as string
    const gone = await add()
    const kept = await add()
    assert.equal((await server.admin('DELETE', `/webhook-endpoints/${gone}`)).status, 204)
    const next = await server.admin('GET', `/webhook-endpoints?first=100&cursor=${gone}`)
    assert.equal(next.status, 200)
    assert.deepEqual(
      next.body.items.map((e: any) => e.id),
      [kept],
    )
    // A delivery's cursor pages on to older deliveries (new ones, which workers may add meanwhile,
    // come before it).
    const first = await server.admin('GET', '/webhook-deliveries?first=2')
    assert.equal(first.body.items.length, 2)
    assert.equal(first.body.pagination.hasNextPage, true)
    const last = first.body.items[1]
    assert.equal(first.body.pagination.endCursor, last.id)
    const rest = await server.admin('GET', `/webhook-deliveries?first=100&cursor=${last.id}`)
    assert.equal(rest.status, 200, JSON.stringify(rest.body))
    assert.ok(rest.body.items.length > 0)
    for (const d of rest.body.items) {
      assert.ok(!first.body.items.some((f: any) => f.id === d.id))
      assert.ok(d.createdAt <= last.createdAt, `${d.createdAt} after ${last.createdAt}`)
    }
  })

  test('idempotent create: a retry with the same Idempotency-Key returns the first endpoint', async () => {
    const key = randomUUID()
    const body = { url: 'https://hooks.example/op', eventTypes: ['peer.liquidity_low'] }
    const first = await server.admin('POST', '/webhook-endpoints', body, { 'idempotency-key': key })
    const again = await server.admin('POST', '/webhook-endpoints', body, { 'idempotency-key': key })
    assert.equal(first.status, 201)
    assert.deepEqual(again.body, first.body)
    assert.equal(again.headers.get('idempotent-replayed'), 'true')
    const other = await server.admin(
      'POST',
      '/webhook-endpoints',
      { ...body, url: 'https://hooks.example/other' },
      { 'idempotency-key': key },
    )
    assert.equal(other.status, 422)
    assert.equal((await server.admin('DELETE', `/webhook-endpoints/${first.body.id}`)).status, 204)
  })

  test('the admin OpenAPI document lists the webhook routes with response schemas', async () => {
    const doc = (await request(`${server.adminUrl}/openapi.json`)).body
    for (const [path, method] of [
      ['/webhook-endpoints', 'post'],
      ['/webhook-endpoints', 'get'],
      ['/webhook-endpoints/{id}', 'get'],
      ['/webhook-endpoints/{id}', 'patch'],
      ['/webhook-endpoints/{id}', 'delete'],
      ['/webhook-endpoints/{id}/rotate-secret', 'post'],
      ['/webhook-endpoints/{id}/replay-dead-letters', 'post'],
      ['/webhook-deliveries', 'get'],
      ['/webhook-deliveries/{id}', 'get'],
      ['/webhook-events/{id}', 'get'],
      ['/webhook-events/{id}/replay', 'post'],
      ['/wallet-addresses/{id}/balance-threshold', 'put'],
      ['/assets/{id}/balance-threshold', 'put'],
      ['/peers/{id}/liquidity-threshold', 'put'],
    ] as const) {
      const op = doc.paths[path]?.[method]
      assert.ok(op?.summary, `${method} ${path}`)
      assert.ok(
        Object.keys(op.responses).some((s) => s.startsWith('2')),
        `${method} ${path}`,
      )
    }
  })
})

describe('bad input', () => {
  test('without or with a wrong admin key: 401, nothing written', async () => {
    const before = (await server.admin('GET', '/webhook-endpoints?first=100')).body.items.length
    const body = JSON.stringify({ url: 'https://x.example', eventTypes: ['peer.liquidity_low'] })
    for (const authorization of [undefined, 'Bearer wrong', `Basic ${server.adminKey}`]) {
      for (const [method, path] of [
        ['POST', '/webhook-endpoints'],
        ['GET', '/webhook-endpoints'],
        ['GET', '/webhook-deliveries'],
        ['POST', `/webhook-events/${randomUUID()}/replay`],
      ]) {
        const res = await request(`${server.adminUrl}${path}`, {
          method,
          headers: {
            'content-type': 'application/json',
            ...(authorization && { authorization }),
          },
          ...(method === 'POST' && { body }),
        })
        assert.equal(res.status, 401, `${method} ${path}`)
        assert.equal(res.body.error.code, 'unauthorized')
      }
    }
    const after = (await server.admin('GET', '/webhook-endpoints?first=100')).body.items.length
    assert.equal(after, before)
  })

  test('a URL that is not http(s), unknown event types, bad fields: 400, nothing written', async () => {
    const before = (await server.admin('GET', '/webhook-endpoints?first=100')).body.items.length
    for (const body of [
      { url: 'ftp://hooks.example/x', eventTypes: ['peer.liquidity_low'] },
      { url: 'javascript:alert(1)', eventTypes: ['peer.liquidity_low'] },
      { url: 'file:///etc/passwd', eventTypes: ['peer.liquidity_low'] },
      { url: 'not a url', eventTypes: ['peer.liquidity_low'] },
      { url: 'http://', eventTypes: ['peer.liquidity_low'] },
      { url: 'https://user:pass@hooks.example/x', eventTypes: ['peer.liquidity_low'] },
      // URL parsers take these; the stored URL must start http:// or https://.
      { url: 'HTTPS://hooks.example/x', eventTypes: ['peer.liquidity_low'] },
      { url: 'http:hooks.example/x', eventTypes: ['peer.liquidity_low'] },
      { url: '', eventTypes: ['peer.liquidity_low'] },
      { url: 'https://hooks.example', eventTypes: [] },
      { url: 'https://hooks.example', eventTypes: ['payment.sent'] },
      { url: 'https://hooks.example', eventTypes: 'peer.liquidity_low' },
      { url: 'https://hooks.example' },
      { url: 'https://hooks.example', eventTypes: ['peer.liquidity_low'], secret: 'mine' },
    ]) {
      const res = await server.admin('POST', '/webhook-endpoints', body)
      assert.equal(res.status, 400, JSON.stringify(body))
      assert.equal(res.body.error.code, 'invalid_request')
    }
    assert.equal((await server.admin('POST', '/webhook-endpoints', '{"url":')).status, 400)
    const after = (await server.admin('GET', '/webhook-endpoints?first=100')).body.items.length
    assert.equal(after, before)
    const existing = (await server.admin('GET', '/webhook-endpoints?first=1')).body.items[0]
    for (const url of ['gopher://x', 'HTTP://hooks.example/x']) {
      const patched = await server.admin('PATCH', `/webhook-endpoints/${existing.id}`, { url })
      assert.equal(patched.status, 400, url)
    }
    assert.equal(
      (await server.admin('GET', `/webhook-endpoints/${existing.id}`)).body.url,
      existing.url,
    )
  })

  test('malformed ids are 400 and unknown ids 404, before any query fails', async () => {
    const unknown = randomUUID()
    for (const id of ['nope', '1', "1' OR '1'='1", `${unknown}x`]) {
      const path = encodeURIComponent(id)
      for (const [method, url, body] of [
        ['GET', `/webhook-endpoints/${path}`],
        ['PATCH', `/webhook-endpoints/${path}`, { enabled: false }],
        ['DELETE', `/webhook-endpoints/${path}`],
        ['POST', `/webhook-endpoints/${path}/rotate-secret`],
        ['POST', `/webhook-endpoints/${path}/replay-dead-letters`],
        ['GET', `/webhook-deliveries/${path}`],
        ['GET', `/webhook-events/${path}`],
        ['POST', `/webhook-events/${path}/replay`],
        ['PUT', `/wallet-addresses/${path}/balance-threshold`, { threshold: '1' }],
        ['GET', `/peers/${path}/liquidity-threshold`],
      ] as const) {
        const res = await server.admin(method, url, body)
        assert.equal(res.status, 400, `${method} ${url}`)
      }
    }
    for (const [method, url, body] of [
      ['GET', `/webhook-endpoints/${unknown}`],
      ['PATCH', `/webhook-endpoints/${unknown}`, { enabled: false }],
      ['DELETE', `/webhook-endpoints/${unknown}`],
      ['POST', `/webhook-endpoints/${unknown}/rotate-secret`],
      ['POST', `/webhook-endpoints/${unknown}/replay-dead-letters`],
      ['GET', `/webhook-deliveries/${unknown}`],
      ['GET', `/webhook-events/${unknown}`],
      ['POST', `/webhook-events/${unknown}/replay`],
      ['PUT', `/wallet-addresses/${unknown}/balance-threshold`, { threshold: '1' }],
      ['PUT', `/assets/${unknown}/balance-threshold`, { threshold: '1' }],
      ['PUT', `/peers/${unknown}/liquidity-threshold`, { threshold: '1' }],
      ['GET', `/wallet-addresses/${bob.id}/balance-threshold`],
    ] as const) {
      const res = await server.admin(method, url, body)
      assert.equal(res.status, 404, `${method} ${url}`)
      assert.equal(res.body.error.code, 'not_found')
    }
    const q = await server.admin('GET', '/webhook-deliveries?endpointId=nope')
    assert.equal(q.status, 400)
    assert.equal((await server.admin('GET', '/webhook-deliveries?status=lost')).status, 400)
    assert.equal((await server.admin('GET', '/webhook-deliveries?eventType=x.y')).status, 400)
    const event = (await deliveries('first=1'))[0]
    const toUnknown = await server.admin('POST', `/webhook-events/${event.eventId}/replay`, {
      endpointId: unknown,
    })
    assert.equal(toUnknown.status, 404)
    for (const threshold of ['-1', '1.5', '18446744073709551616', 5]) {
      const res = await server.admin('PUT', `/wallet-addresses/${bob.id}/balance-threshold`, {
        threshold,
      })
      assert.equal(res.status, 400, String(threshold))
    }
  })

  test('a receiver that hangs times out and is retried; other endpoints keep getting events', async () => {
    const hanging = await endpoint(['incoming_payment.created'], () => 'hang')
    const healthy = await endpoint(['incoming_payment.created'])
    const ips = [await incomingPayment(), await incomingPayment(), await incomingPayment()]
    await eventually(async () => (healthy.receiver.accepted.length === 3 ? true : undefined))
    await eventually(async () => (hanging.receiver.requests.length >= 3 ? true : undefined))
    assert.deepEqual(
      healthy.receiver.accepted.map((r) => r.payload.data.id).sort(),
      ips.map((ip) => ip.id).sort(),
    )
    // Each hung attempt holds a sending slot for the whole timeout (1 s); the healthy endpoint's
    // copy of each event did not wait for that.
    for (const ip of ips) {
      const at = (r: Receiver) => r.requests.find((x) => x.payload.data.id === ip.id)!.at
      const lead = at(healthy.receiver) - at(hanging.receiver)
      assert.ok(lead < 900, `the healthy endpoint got ${ip.id} ${lead} ms after the hanging one`)
    }
    const timedOut = await eventually(async () => {
      const items = await deliveries(`endpointId=${hanging.id}`)
      return items.length === 3 && items.every((d) => d.attempts.length >= 2) ? items : undefined
    }, 20_000)
    for (const d of timedOut) {
      assert.equal(d.attempts[0].error, 'timed out')
      assert.ok(d.attempts[0].durationMs >= 900 && d.attempts[0].durationMs < 3000)
      assert.equal(d.attempts[0].statusCode, undefined)
    }
    await server.admin('DELETE', `/webhook-endpoints/${hanging.id}`)
  })

  test('garbage, huge bodies and redirects: bounded reads, clean outcomes', async () => {
    let redirected = 0
    const target = await startReceiver(() => {
      redirected++
      return 200
    })
    receivers.push(target)
    const huge = await endpoint(['incoming_payment.created'], () => ({
      status: 200,
      body: Buffer.alloc(20 * 1024 * 1024, 'x'),
    }))
    const garbage = await endpoint(['incoming_payment.created'], () => ({
      status: 500,
      body: Buffer.from([0, 255, 254, 1, 2, 3, 0xc3, 0x28, ...Buffer.from('x'.repeat(5000))]),
      headers: { 'content-type': 'application/json' },
    }))
    const redirect = await endpoint(['incoming_payment.created'], () => ({
      status: 302,
      headers: { location: target.url },
    }))
    await incomingPayment()
    const [hugeDelivery] = await eventually(async () => {
      const items = await deliveries(`endpointId=${huge.id}`)
      return items[0]?.status === 'delivered' ? items : undefined
    })
    assert.equal(huge.receiver.accepted.length, 1)
    assert.ok(hugeDelivery.attempts[0].responseExcerpt.length <= 1024)
    const [bad] = await eventually(async () => {
      const items = await deliveries(`endpointId=${garbage.id}`)
      return items[0]?.attempts.length >= 1 ? items : undefined
    })
    assert.equal(bad.attempts[0].statusCode, 500)
    assert.equal(bad.attempts[0].delivered, false)
    assert.ok(bad.attempts[0].responseExcerpt.length <= 1024)
    assert.ok(!bad.attempts[0].responseExcerpt.includes('\u0000'))
    const [moved] = await eventually(async () => {
      const items = await deliveries(`endpointId=${redirect.id}`)
      return items[0]?.attempts.length >= 1 ? items : undefined
    })
    assert.equal(moved.attempts[0].statusCode, 302)
    assert.equal(moved.attempts[0].delivered, false)
    assert.equal(redirected, 0, 'the redirect was not followed')
    for (const e of [huge, garbage, redirect])
      await server.admin('DELETE', `/webhook-endpoints/${e.id}`)
  })
})
