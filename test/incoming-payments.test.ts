import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { createUnauthenticatedClient, getResourceServerOpenAPI } from '@interledger/open-payments'
import { usd } from './helpers/amounts.ts'
import {
  type ClientIdentity,
  createClientIdentity,
  grantToken,
  signedRequest,
} from './helpers/clients.ts'
import { createWalletAddress, request, startTestServer, type TestServer } from './helpers/server.ts'

let server: TestServer
let app: ClientIdentity
let other: ClientIdentity
let bob: { id: string; url: string }
let alice: { id: string; url: string }
let token: string
let rs: string

before(async () => {
  server = await startTestServer({
    ILP_ADDRESS: 'test.bank-b',
    INCOMING_PAYMENT_EXPIRY_MAX_SECONDS: '86400',
  })
  rs = server.openPaymentsUrl
  app = await createClientIdentity(server, { path: '/app', publicName: 'App' })
  other = await createClientIdentity(server, { path: '/other', publicName: 'Other' })
  bob = await createWalletAddress(server, { path: '/bob', publicName: 'Bob' })
  alice = await createWalletAddress(server, { path: '/alice', publicName: 'Alice' })
  token = await grantToken(server, app, [
    {
      type: 'incoming-payment',
      actions: ['create', 'read', 'list', 'complete'],
      identifier: bob.url,
    },
  ])
})
after(() => server.close())

const create = (args: Record<string, unknown> = {}, accessToken = token) =>
  app.client.incomingPayment.create({ url: rs, accessToken }, { walletAddress: bob.url, ...args })

describe('incoming payments with the official client', () => {
  test('create: the spec shape, fresh ILP credentials, stored metadata', async () => {
    const expiresAt = new Date(Date.now() + 3_600_000).toISOString()
    const ip = await create({
      incomingAmount: usd('2500'),
      expiresAt,
      metadata: { invoice: 'INV-1' },
    })
    assert.match(ip.id, new RegExp(`^${rs}/incoming-payments/[0-9a-f-]{36}$`))
    assert.equal(ip.walletAddress, bob.url)
    assert.equal(ip.completed, false)
    assert.deepEqual(ip.incomingAmount, usd('2500'))
    assert.deepEqual(ip.receivedAmount, usd('0'))
    assert.equal(ip.expiresAt, expiresAt)
    assert.deepEqual(ip.metadata, { invoice: 'INV-1' })
    assert.equal(ip.methods.length, 1)
    const method = ip.methods[0]!
    assert.equal(method.type, 'ilp')
    assert.ok(method.ilpAddress.startsWith('test.bank-b.'))
    assert.equal(Buffer.from(method.sharedSecret, 'base64url').length, 32)
    const again = await app.client.incomingPayment.get({ url: ip.id, accessToken: token })
    assert.equal(again.id, ip.id)
    assert.notEqual(again.methods[0]!.ilpAddress, method.ilpAddress) // stateless, freshly encrypted
    const second = await create()
    assert.equal(second.incomingAmount, undefined)
    assert.ok(new Date(second.expiresAt!).getTime() <= Date.now() + 86_400_000)
  })

  test('public get without a token: authServer and receivedAmount only', async () => {
    const ip = await create({ incomingAmount: usd('100') })
    const anonymous = await createUnauthenticatedClient({ logLevel: 'silent' })
    const pub = await anonymous.incomingPayment.get({ url: ip.id })
    assert.deepEqual(pub, { authServer: server.authUrl, receivedAmount: usd('0') })
    // A present but bad Authorization header must not fall back to the public view.
    const bad = await request(ip.id, { headers: { authorization: 'GNAP nope' } })
    assert.equal(bad.status, 403)
  })

  test('complete: completed, no methods afterwards, completing twice is 409', async () => {
    const ip = await create({ incomingAmount: usd('100') })
    const done = await app.client.incomingPayment.complete({ url: ip.id, accessToken: token })
    assert.equal(done.completed, true)
    const read = await app.client.incomingPayment.get({ url: ip.id, accessToken: token })
    assert.equal(read.completed, true)
    assert.deepEqual(read.methods, [])
    await assert.rejects(
      app.client.incomingPayment.complete({ url: ip.id, accessToken: token }),
      (err: any) => err.status === 409,
    )
  })

  test('an expired payment shows no methods and cannot be completed', async () => {
    const ip = await create({ expiresAt: new Date(Date.now() + 400).toISOString() })
    await new Promise((r) => setTimeout(r, 500))
    const read = await app.client.incomingPayment.get({ url: ip.id, accessToken: token })
    assert.deepEqual(read.methods, [])
    assert.equal(read.completed, false)
    await assert.rejects(
      app.client.incomingPayment.complete({ url: ip.id, accessToken: token }),
      (err: any) => err.status === 409,
    )
  })

  test('list pages forward and backward with cursors', async () => {
    const wa = await createWalletAddress(server, { path: '/paged' })
    const t = await grantToken(server, app, [
      { type: 'incoming-payment', actions: ['create', 'list'], identifier: wa.url },
    ])
    const ids: string[] = []
    for (let i = 0; i < 5; i++) {
      ids.unshift(
        (
          await app.client.incomingPayment.create(
            { url: rs, accessToken: t },
            { walletAddress: wa.url },
          )
        ).id,
      )
    }
    const list = (p: Record<string, unknown>) =>
      app.client.incomingPayment.list(
        { url: rs, walletAddress: wa.url, accessToken: t },
        p as never,
      )
    const all = await list({})
    assert.deepEqual(
      all.result.map((r) => r.id),
      ids,
    ) // newest first
    assert.deepEqual(all.pagination, {
      hasNextPage: false,
      hasPreviousPage: false,
      startCursor: ids[0]!.split('/').at(-1),
      endCursor: ids[4]!.split('/').at(-1),
    })
    assert.ok(all.result.every((r) => !('methods' in r)))
    const p1 = await list({ first: 2 })
    assert.deepEqual(
      p1.result.map((r) => r.id),
      ids.slice(0, 2),
    )
    assert.equal(p1.pagination.hasNextPage, true)
    assert.equal(p1.pagination.hasPreviousPage, false)
    const p2 = await list({ first: 2, cursor: p1.pagination.endCursor })
    assert.deepEqual(
      p2.result.map((r) => r.id),
      ids.slice(2, 4),
    )
    assert.deepEqual([p2.pagination.hasNextPage, p2.pagination.hasPreviousPage], [true, true])
    const p3 = await list({ first: 2, cursor: p2.pagination.endCursor })
    assert.deepEqual(
      p3.result.map((r) => r.id),
      ids.slice(4),
    )
    assert.equal(p3.pagination.hasNextPage, false)
    const back = await list({ last: 2, cursor: p3.pagination.startCursor })
    assert.deepEqual(
      back.result.map((r) => r.id),
      ids.slice(2, 4),
    )
    assert.deepEqual([back.pagination.hasNextPage, back.pagination.hasPreviousPage], [true, true])
    const empty = await list({ first: 3, cursor: ids[4]!.split('/').at(-1) })
    assert.deepEqual(empty.result, [])
    assert.deepEqual(empty.pagination, { hasNextPage: false, hasPreviousPage: true })
  })

  test('read and list see only the client’s own payments; read-all and list-all see every one', async () => {
    const mine = await create()
    const otherToken = await grantToken(server, other, [
      { type: 'incoming-payment', actions: ['create', 'read', 'list'], identifier: bob.url },
    ])
    await assert.rejects(
      other.client.incomingPayment.get({ url: mine.id, accessToken: otherToken }),
      (err: any) => err.status === 404,
    )
    const theirs = await other.client.incomingPayment.list(
      { url: rs, walletAddress: bob.url, accessToken: otherToken },
      { first: 100 } as never,
    )
    assert.ok(theirs.result.every((r) => r.id !== mine.id))
    const allToken = await grantToken(server, other, [
      { type: 'incoming-payment', actions: ['read-all'], identifier: bob.url },
    ])
    const seen = await other.client.incomingPayment.get({ url: mine.id, accessToken: allToken })
    assert.equal(seen.id, mine.id)
  })

  test('only the client that created a payment completes it', async () => {
    const mine = await create({ incomingAmount: usd('100') })
    // A grant to complete needs no consent: with it, another client could close anyone's receiver.
    for (const grant of [
      { type: 'incoming-payment', actions: ['complete'] },
      { type: 'incoming-payment', actions: ['complete', 'read-all'], identifier: bob.url },
    ] as const) {
      const otherToken = await grantToken(server, other, [grant as never])
      await assert.rejects(
        other.client.incomingPayment.complete({ url: mine.id, accessToken: otherToken }),
        (err: any) => err.status === 404,
      )
    }
    const read = await app.client.incomingPayment.get({ url: mine.id, accessToken: token })
    assert.equal(read.completed, false)
    assert.equal(read.methods.length, 1)
    const done = await app.client.incomingPayment.complete({ url: mine.id, accessToken: token })
    assert.equal(done.completed, true)
  })
})

describe('refusals', () => {
  const post = (body: unknown, t = token, identity = app) =>
    signedRequest(`${rs}/incoming-payments`, { body, token: t, identity })
  const listRaw = (query: string) =>
    signedRequest(
      `${rs}/incoming-payments?wallet-address=${encodeURIComponent(bob.url)}&${query}`,
      { method: 'GET', token, identity: app },
    )

  test('no token: 401 with WWW-Authenticate', async () => {
    const res = await request(`${rs}/incoming-payments`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ walletAddress: bob.url }),
    })
    assert.equal(res.status, 401)
    assert.deepEqual(res.body, {
      error: { code: '401', description: 'Missing or invalid authorization header value' },
    })
    assert.equal(res.headers.get('www-authenticate'), `GNAP as_uri=${server.authUrl}/`)
  })

  test('a token for another wallet address: 403 Insufficient Grant', async () => {
    const res = await post({ walletAddress: alice.url })
    assert.equal(res.status, 403)
    assert.equal(res.body.error.description, 'Insufficient Grant')
  })

  test('a revoked or unknown token: 403 Inactive Token', async () => {
    const t = await grantToken(server, app, [
      { type: 'incoming-payment', actions: ['create'], identifier: bob.url },
    ])
    const grants = await server.admin('POST', '/introspect', { access_token: t })
    await server.admin('POST', `/grants/${grants.body.grant}/revoke`)
    for (const bad of [t, 'unknown-token']) {
      const res = await post({ walletAddress: bob.url }, bad)
      assert.equal(res.status, 403)
      assert.equal(res.body.error.description, 'Inactive Token')
    }
  })

  test('a token in use is refused on the very next request after it is revoked', async () => {
    // Token state is never cached: every request introspects in the database.
    const access = [
      {
        type: 'incoming-payment' as const,
        actions: ['create' as const, 'read' as const],
        identifier: bob.url,
      },
    ]
    const refused = async (t: string, ipUrl: string) => {
      for (const res of [
        await post({ walletAddress: bob.url }, t),
        await signedRequest(ipUrl, { method: 'GET', token: t, identity: app }),
      ]) {
        assert.equal(res.status, 403)
        assert.equal(res.body.error.description, 'Inactive Token')
      }
    }
    // The operator revokes the grant.
    const byAdmin = await grantToken(server, app, access)
    const first = await create({}, byAdmin)
    assert.equal(
      (await app.client.incomingPayment.get({ url: first.id, accessToken: byAdmin })).id,
      first.id,
    )
    const { body } = await server.admin('POST', '/introspect', { access_token: byAdmin })
    await server.admin('POST', `/grants/${body.grant}/revoke`)
    await refused(byAdmin, first.id)
    // The client revokes its token.
    const grant = await app.client.grant.request(
      { url: server.authUrl },
      { access_token: { access } },
    )
    assert.ok('access_token' in grant && grant.access_token)
    const byClient = grant.access_token.value
    const second = await create({}, byClient)
    await app.client.token.revoke({ url: grant.access_token.manage, accessToken: byClient })
    await refused(byClient, second.id)
  })

  test('a revoked token is refused by the create itself, and cannot replay an Idempotency-Key', async () => {
    const access = [
      { type: 'incoming-payment' as const, actions: ['create' as const], identifier: bob.url },
    ]
    const t = await grantToken(server, app, access)
    const key = randomUUID()
    const send = (idempotencyKey?: string) =>
      signedRequest(`${rs}/incoming-payments`, {
        body: { walletAddress: bob.url },
        token: t,
        identity: app,
        ...(idempotencyKey && {
          tamper: (h: Record<string, string>) => {
            h['idempotency-key'] = idempotencyKey
          },
        }),
      })
    const first = await send(key)
    assert.equal(first.status, 201)
    assert.equal((await send(key)).body.id, first.body.id)
    // Known to this process now: the next creates take the grant from its cache, and the write
    // checks the token.
    assert.equal((await send()).status, 201)
    // Nothing of a refused create is written: neither the payment nor its webhook event. (Only
    // `created` events count: the expiry worker may meanwhile write an `expired` event for an
    // earlier test's payment.)
    const count = async () =>
      (await server.database.db.selectFrom('incoming_payments').select('id').execute()).length +
      (
        await server.database.db
          .selectFrom('webhook_events')
          .select('id')
          .where('type', '=', 'incoming_payment.created')
          .execute()
      ).length
    const { body } = await server.admin('POST', '/introspect', { access_token: t })
    await server.admin('POST', `/grants/${body.grant}/revoke`)
    const before = await count()
    // A create the route refuses before its write (an expiry in the past) is answered as the
    // token's state requires too.
    const expired = await signedRequest(`${rs}/incoming-payments`, {
      body: { walletAddress: bob.url, expiresAt: new Date(Date.now() - 60_000).toISOString() },
      token: t,
      identity: app,
    })
    for (const res of [await send(), await send(key), await send(), expired]) {
      assert.equal(res.status, 403)
      assert.equal(res.body.error.description, 'Inactive Token')
      assert.equal(res.headers.get('www-authenticate'), `GNAP as_uri=${server.authUrl}/`)
    }
    assert.equal(await count(), before)
  })

  test('signed by another key: 401 Signature validation error', async () => {
    const res = await post({ walletAddress: bob.url }, token, other)
    assert.equal(res.status, 401)
    assert.match(res.body.error.description, /^Signature validation error/)
  })

  const bad: [string, () => unknown, string?][] = [
    [
      'wrong asset',
      () => ({
        walletAddress: bob.url,
        incomingAmount: { value: '5', assetCode: 'EUR', assetScale: 2 },
      }),
      'invalid amount',
    ],
    ['zero amount', () => ({ walletAddress: bob.url, incomingAmount: usd('0') }), 'invalid amount'],
    [
      'amount above 2^64-1',
      () => ({ walletAddress: bob.url, incomingAmount: usd('18446744073709551616') }),
    ],
    [
      'numeric amount',
      () => ({
        walletAddress: bob.url,
        incomingAmount: { value: 5, assetCode: 'USD', assetScale: 2 },
      }),
    ],
    [
      'expiresAt in the past',
      () => ({ walletAddress: bob.url, expiresAt: new Date(Date.now() - 1000).toISOString() }),
      'invalid expiresAt',
    ],
    [
      'expiresAt beyond the maximum',
      () => ({
        walletAddress: bob.url,
        expiresAt: new Date(Date.now() + 2 * 86_400_000).toISOString(),
      }),
      'invalid expiresAt',
    ],
    ['expiresAt not a date', () => ({ walletAddress: bob.url, expiresAt: 'tomorrow' })],
    // RFC 3339 allows it; no Date holds it.
    [
      'expiresAt a leap second',
      () => ({ walletAddress: bob.url, expiresAt: '2030-06-30T23:59:60Z' }),
    ],
    ['unknown field', () => ({ walletAddress: bob.url, amount: usd('5') })],
    ['no walletAddress', () => ({})],
  ]
  for (const [name, body, description] of bad) {
    test(`create with ${name}: 400`, async () => {
      const res = await post(body())
      assert.equal(res.status, 400, JSON.stringify(res.body))
      assert.equal(res.body.error.code, '400')
      if (description) assert.equal(res.body.error.description, description)
    })
  }

  test('list paging edge cases', async () => {
    for (const [q, description] of [
      ['first=2&last=2&cursor=x', 'first and last are mutually exclusive'],
      ['last=2', 'last requires cursor'],
      ['first=0', undefined],
      ['first=101', undefined],
      ['cursor=00000000-0000-4000-8000-000000000000', 'invalid cursor'],
    ] as const) {
      const res = await listRaw(q)
      assert.equal(res.status, 400, q)
      if (description) assert.equal(res.body.error.description, description)
    }
    const missing = await signedRequest(`${rs}/incoming-payments`, {
      method: 'GET',
      token,
      identity: app,
    })
    assert.equal(missing.status, 400)
  })

  test('unknown incoming payment: 404 with and without a token', async () => {
    for (const id of ['00000000-0000-4000-8000-000000000000', 'not-a-uuid']) {
      assert.equal((await request(`${rs}/incoming-payments/${id}`)).status, 404)
      assert.equal(
        (
          await signedRequest(`${rs}/incoming-payments/${id}`, {
            method: 'GET',
            token,
            identity: app,
          })
        ).status,
        404,
      )
    }
  })

  test('every response of this file’s flows passes the official validator', async () => {
    const spec = await getResourceServerOpenAPI()
    const ip = await create({ incomingAmount: usd('1') })
    const raw = await signedRequest(ip.id, { method: 'GET', token, identity: app })
    assert.ok(
      spec.createResponseValidator({ path: '/incoming-payments/{id}', method: 'get' as never })({
        status: raw.status,
        body: raw.body,
      }),
    )
    const done = await signedRequest(`${ip.id}/complete`, { token, identity: app })
    assert.ok(
      spec.createResponseValidator({
        path: '/incoming-payments/{id}/complete',
        method: 'post' as never,
      })({ status: done.status, body: done.body }),
    )
  })
})
