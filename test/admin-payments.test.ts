import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import type { IncomingPaymentWithPaymentMethods } from '@interledger/open-payments'
import { isReject } from 'ilp-packet'
import { checkBooks } from '../src/ledger/invariants.ts'
import { type AdminContract, adminContract } from './helpers/admin-contract.ts'
import { usd } from './helpers/amounts.ts'
import {
  type ClientIdentity,
  createClientIdentity,
  grantToken,
  outgoingPaymentToken,
} from './helpers/clients.ts'
import { addPeer, peerDebt, sendPacket, streamPrepare, type TestPeer } from './helpers/ilp.ts'
import {
  balanceOf,
  createWalletAddress,
  deposit,
  eventually,
  request,
  startTestServer,
  type TestServer,
} from './helpers/server.ts'

/**
 * The admin API's incoming and outgoing payments, driven by real payments made with the official
 * client; every admin response is checked against the served OpenAPI document.
 */
let server: TestServer
let api: AdminContract
let app: ClientIdentity
let alice: { id: string; url: string }
let bob: { id: string; url: string }
let ipToken: string
let quoteToken: string
let opToken: string
let peer: TestPeer

const idOf = (url: string) => url.split('/').at(-1)!

before(async () => {
  // Wrong keys on every route from one address: the bad-credential limit (tested in
  // rate-limits.test.ts) would refuse that flood with 429s after 20.
  server = await startTestServer({ RATE_LIMIT_CREDENTIAL_FAILURES: '0' })
  api = await adminContract(server)
  app = await createClientIdentity(server, { path: '/app' })
  alice = await createWalletAddress(server, { path: '/alice' })
  bob = await createWalletAddress(server, { path: '/bob' })
  await deposit(server, alice.id, 100_000n)
  ipToken = await grantToken(server, app, [
    { type: 'incoming-payment', actions: ['create', 'read', 'complete'], identifier: bob.url },
  ])
  quoteToken = await grantToken(server, app, [{ type: 'quote', actions: ['create'] }])
  opToken = await outgoingPaymentToken(server, app, alice.url)
  peer = await addPeer(server, { name: 'ase-x', creditLimit: 1_000_000n })
})
after(() => server.close())

const createIp = (incomingAmount = '1000'): Promise<IncomingPaymentWithPaymentMethods> =>
  app.client.incomingPayment.create(
    { url: server.openPaymentsUrl, accessToken: ipToken },
    { walletAddress: bob.url, incomingAmount: usd(incomingAmount) },
  )
const readIp = (url: string) => app.client.incomingPayment.get({ url, accessToken: ipToken })

/** Pays `ip` from Alice with the official client and waits until the payment ended. */
async function pay(ip: { id: string }) {
  const quote = await app.client.quote.create(
    { url: server.openPaymentsUrl, accessToken: quoteToken },
    { walletAddress: alice.url, receiver: ip.id, method: 'ilp' },
  )
  const op = await app.client.outgoingPayment.create(
    { url: server.openPaymentsUrl, accessToken: opToken },
    { walletAddress: alice.url, quoteId: quote.id },
  )
  return eventually(async () => {
    const p = await api.call('GET', `/outgoing-payments/${idOf(op.id)}`)
    return p.body.state === 'sending' ? undefined : p.body
  })
}

const assertError = (res: { status: number; body: any }, status: number, code?: string) => {
  assert.equal(res.status, status, JSON.stringify(res.body))
  assert.equal(typeof res.body.error.description, 'string')
  if (code) assert.equal(res.body.error.code, code)
}

describe('incoming payments', () => {
  test('get: the operator view of a payment made with the official client', async () => {
    const ip = await createIp('2500')
    const res = await api.call('GET', `/incoming-payments/${idOf(ip.id)}`)
    assert.equal(res.status, 200)
    assert.deepEqual(
      { ...res.body, createdAt: undefined, updatedAt: undefined, expiresAt: undefined },
      {
        id: idOf(ip.id),
        url: ip.id,
        walletAddressId: bob.id,
        walletAddress: bob.url,
        state: 'open',
        assetCode: 'USD',
        assetScale: 2,
        incomingAmount: '2500',
        receivedAmount: '0',
        client: app.walletAddressUrl,
        createdAt: undefined,
        updatedAt: undefined,
        expiresAt: undefined,
      },
    )
    assert.equal(res.body.expiresAt, ip.expiresAt)
  })

  test('complete: closes it; again returns it unchanged; clients see completed', async () => {
    const ip = await createIp()
    const done = await api.call('POST', `/incoming-payments/${idOf(ip.id)}/complete`)
    assert.equal(done.status, 200)
    assert.equal(done.body.state, 'completed')
    assert.ok(done.body.completedAt)
    const again = await api.call('POST', `/incoming-payments/${idOf(ip.id)}/complete`)
    assert.equal(again.status, 200)
    assert.equal(again.body.completedAt, done.body.completedAt)
    assert.equal((await readIp(ip.id)).completed, true)
    assertError(
      await api.call('POST', `/incoming-payments/${idOf(ip.id)}/cancel`, { reason: 'late' }),
      409,
      'wrong_state',
    )
  })

  test('cancel: no more money by Interledger or from local payments; clients see completed', async () => {
    const ip = await createIp('5000')
    const first = await sendPacket(
      server.ilpUrl,
      peer,
      streamPrepare({ ...ip.methods[0]!, amount: 100n }),
    )
    assert.ok(!isReject(first), 'an open payment takes a packet')
    const debt = await peerDebt(server, peer)
    const quoteBefore = await app.client.quote.create(
      { url: server.openPaymentsUrl, accessToken: quoteToken },
      { walletAddress: alice.url, receiver: ip.id, method: 'ilp' },
    )

    const cancelled = await api.call('POST', `/incoming-payments/${idOf(ip.id)}/cancel`, {
      reason: 'customer closed the invoice',
    })
    assert.equal(cancelled.status, 200)
    assert.equal(cancelled.body.state, 'cancelled')
    assert.equal(cancelled.body.cancelReason, 'customer closed the invoice')
    assert.equal(cancelled.body.receivedAmount, '100')
    const again = await api.call('POST', `/incoming-payments/${idOf(ip.id)}/cancel`, {
      reason: 'another reason',
    })
    assert.equal(again.status, 200)
    assert.equal(again.body.cancelReason, 'customer closed the invoice')
    // One webhook event for the one cancellation, with its reason.
    const events = await server.database.db
      .selectFrom('webhook_events')
      .select('data')
      .where('type', '=', 'incoming_payment.cancelled')
      .where('resource', '=', `incoming_payment:${idOf(ip.id)}`)
      .execute()
    assert.equal(events.length, 1)
    assert.equal(
      (events[0]!.data as any).incomingPayment.cancelReason,
      'customer closed the invoice',
    )

    // Clients see it closed, with nowhere to pay.
    const seen = await readIp(ip.id)
    assert.equal(seen.completed, true)
    assert.deepEqual(seen.methods, [])
    // A packet is refused and nothing is booked.
    const refused = await sendPacket(
      server.ilpUrl,
      peer,
      streamPrepare({ ...ip.methods[0]!, amount: 100n }),
    )
    assert.ok(isReject(refused))
    assert.equal(refused.code, 'F02')
    assert.equal(await peerDebt(server, peer), debt)
    // This server's own payments cannot be made to it, from a new quote or an earlier one.
    await assert.rejects(
      app.client.quote.create(
        { url: server.openPaymentsUrl, accessToken: quoteToken },
        { walletAddress: alice.url, receiver: ip.id, method: 'ilp' },
      ),
    )
    const balance = await balanceOf(server, alice.id)
    await assert.rejects(
      app.client.outgoingPayment.create(
        { url: server.openPaymentsUrl, accessToken: opToken },
        { walletAddress: alice.url, quoteId: quoteBefore.id },
      ),
    )
    assert.equal(await balanceOf(server, alice.id), balance)
    assert.equal((await readIp(ip.id)).receivedAmount.value, '100')
    assertError(
      await api.call('POST', `/incoming-payments/${idOf(ip.id)}/complete`),
      409,
      'wrong_state',
    )
    assert.ok((await checkBooks(server.database.db)).balanced)
  })

  test('list: by wallet address and state, newest first, paged', async () => {
    const wa = await createWalletAddress(server, { path: `/lister-${randomUUID().slice(0, 8)}` })
    const token = await grantToken(server, app, [
      { type: 'incoming-payment', actions: ['create'], identifier: wa.url },
    ])
    const made: string[] = []
    for (let i = 0; i < 5; i++) {
      const ip = await app.client.incomingPayment.create(
        { url: server.openPaymentsUrl, accessToken: token },
        { walletAddress: wa.url },
      )
      made.unshift(idOf(ip.id))
    }
    await api.call('POST', `/incoming-payments/${made[1]}/complete`)
    await api.call('POST', `/incoming-payments/${made[3]}/cancel`, { reason: 'r' })

    const all = await api.call('GET', `/incoming-payments?walletAddressId=${wa.id}`)
    assert.deepEqual(
      all.body.items.map((i: any) => i.id),
      made,
    )
    const byState = async (state: string) =>
      (
        await api.call('GET', `/incoming-payments?walletAddressId=${wa.id}&state=${state}`)
      ).body.items.map((i: any) => i.id)
    assert.deepEqual(await byState('open'), [made[0], made[2], made[4]])
    assert.deepEqual(await byState('completed'), [made[1]])
    assert.deepEqual(await byState('cancelled'), [made[3]])
    assert.deepEqual(await byState('expired'), [])

    const seen: string[] = []
    let cursor: string | undefined
    for (;;) {
      const page = await api.call(
        'GET',
        `/incoming-payments?walletAddressId=${wa.id}&first=2${cursor ? `&cursor=${cursor}` : ''}`,
      )
      seen.push(...page.body.items.map((i: any) => i.id))
      if (!page.body.pagination.hasNextPage) break
      cursor = page.body.pagination.endCursor
    }
    assert.deepEqual(seen, made)
    // Across wallet addresses, the newest first.
    const recent = await api.call('GET', '/incoming-payments?first=1')
    assert.equal(recent.body.items[0].id, made[0])
  })
})

describe('outgoing payments', () => {
  test('get: state, amounts, attempts and the ledger transfers of a completed payment', async () => {
    const ip = await createIp('1234')
    const p = await pay(ip)
    assert.equal(p.state, 'completed')
    assert.equal(p.walletAddressId, alice.id)
    assert.equal(p.receiver, ip.id)
    assert.equal(p.debitAmount, '1234')
    assert.equal(p.sentAmount, '1234')
    assert.equal(p.feeAmount, '0')
    assert.equal(p.attempts, 0)
    assert.equal(p.failure, undefined)
    const transfers = Object.fromEntries(p.transfers.map((t: any) => [t.id, t]))
    assert.equal(transfers[p.reservationTransferId].state, 'posted')
    assert.equal(transfers[p.reservationTransferId].postedAmount, '1234')
    assert.equal(transfers[`outgoing:${p.id}:deliver`].amount, '1234')
    assert.equal(p.transfers.length, 2)
  })

  test('list: by wallet address and state', async () => {
    const ip = await createIp('10')
    const p = await pay(ip)
    const completed = await api.call(
      'GET',
      `/outgoing-payments?walletAddressId=${alice.id}&state=completed&first=100`,
    )
    assert.ok(completed.body.items.some((i: any) => i.id === p.id))
    assert.ok(completed.body.items.every((i: any) => i.state === 'completed'))
    const sending = await api.call(
      'GET',
      `/outgoing-payments?walletAddressId=${alice.id}&state=sending`,
    )
    assert.deepEqual(sending.body.items, [])
    const mine = await api.call('GET', `/outgoing-payments?walletAddressId=${bob.id}`)
    assert.deepEqual(mine.body.items, [])
  })

  test('a completed payment cannot be cancelled', async () => {
    const p = await pay(await createIp('20'))
    assertError(
      await api.call('POST', `/outgoing-payments/${p.id}/cancel`, { reason: 'too late' }),
      409,
      'wrong_state',
    )
    assert.equal((await api.call('GET', `/outgoing-payments/${p.id}`)).body.state, 'completed')
  })
})

describe('bad input is a 4xx in the envelope, before any query', () => {
  const ids = () => [randomUUID(), 'not-a-uuid', '1', "x'; drop table assets; --"]

  test('without the key or with a wrong one: 401, and nothing happens', async () => {
    const ip = await createIp()
    for (const [method, path, body] of [
      ['GET', '/incoming-payments', undefined],
      ['GET', `/incoming-payments/${idOf(ip.id)}`, undefined],
      ['POST', `/incoming-payments/${idOf(ip.id)}/complete`, undefined],
      ['POST', `/incoming-payments/${idOf(ip.id)}/cancel`, { reason: 'x' }],
      ['GET', '/outgoing-payments', undefined],
      ['GET', `/outgoing-payments/${randomUUID()}`, undefined],
      ['POST', `/outgoing-payments/${randomUUID()}/cancel`, { reason: 'x' }],
    ] as const) {
      for (const authorization of [undefined, 'Bearer wrong', `Bearer ${server.adminKey}x`]) {
        const res = await request(`${server.adminUrl}${path}`, {
          method,
          headers: {
            ...(authorization && { authorization }),
            ...(body && { 'content-type': 'application/json' }),
          },
          body: body && JSON.stringify(body),
        })
        api.check(method, path, res)
        assertError(res, 401, 'unauthorized')
      }
    }
    assert.equal((await api.call('GET', `/incoming-payments/${idOf(ip.id)}`)).body.state, 'open')
  })

  test('unknown ids are 404, malformed ids 400', async () => {
    for (const id of ids()) {
      const status = id.length === 36 ? 404 : 400
      const path = encodeURIComponent(id)
      for (const [method, url, body] of [
        ['GET', `/incoming-payments/${path}`, undefined],
        ['POST', `/incoming-payments/${path}/complete`, undefined],
        ['POST', `/incoming-payments/${path}/cancel`, { reason: 'r' }],
        ['GET', `/outgoing-payments/${path}`, undefined],
        ['POST', `/outgoing-payments/${path}/cancel`, { reason: 'r' }],
      ] as const) {
        const res = await api.call(method, url, body)
        assertError(res, status, status === 404 ? 'not_found' : 'invalid_request')
        if (status === 400) assert.equal(res.body.error.details.field, 'params.id')
      }
    }
  })

  test('invalid bodies and queries are 400 naming the field; nothing changes', async () => {
    const ip = await createIp()
    const path = `/incoming-payments/${idOf(ip.id)}/cancel`
    for (const [body, field] of [
      [{}, 'body.reason'],
      [{ reason: '' }, 'body.reason'],
      [{ reason: 'x'.repeat(501) }, 'body.reason'],
      [{ reason: 5 }, 'body.reason'],
      [{ reason: 'ok', extra: true }, 'body.extra'],
    ] as const) {
      const res = await api.call('POST', path, body)
      assertError(res, 400, 'invalid_request')
      assert.equal(res.body.error.details.field, field)
    }
    assertError(await api.call('POST', path, '{"reason":', {}), 400, 'invalid_json')
    for (const query of [
      'state=paid',
      'walletAddressId=alice',
      'first=0',
      'first=101',
      'cursor=nope',
      'sort=asc',
    ]) {
      assertError(await api.call('GET', `/incoming-payments?${query}`), 400, 'invalid_request')
      assertError(await api.call('GET', `/outgoing-payments?${query}`), 400, 'invalid_request')
    }
    // A well-formed cursor or wallet address that names nothing.
    assertError(
      await api.call('GET', `/incoming-payments?cursor=${randomUUID()}`),
      400,
      'invalid_request',
    )
    assertError(
      await api.call('GET', `/outgoing-payments?walletAddressId=${randomUUID()}`),
      404,
      'not_found',
    )
    assert.equal((await api.call('GET', `/incoming-payments/${idOf(ip.id)}`)).body.state, 'open')
  })
})
