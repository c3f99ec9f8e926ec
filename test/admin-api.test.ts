import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { checkBooks } from '../src/ledger/invariants.ts'
import { createWalletAddress, request, startTestServer, type TestServer } from './helpers/server.ts'

let server: TestServer
let alice: { id: string; url: string }

before(async () => {
  server = await startTestServer()
  alice = await createWalletAddress(server, { path: '/alice', publicName: 'Alice' })
})
after(() => server.close())

const balance = async (id = alice.id) =>
  (await server.admin('GET', `/wallet-addresses/${id}/balance`)).body
const transferCount = async () =>
  Number(
    (
      await server.database.db
        .selectFrom('ledger_transfers')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .executeTakeFirstOrThrow()
    ).n,
  )
const assertEnvelope = (res: { status: number; body: any }, status: number, code: string) => {
  assert.equal(res.status, status, JSON.stringify(res.body))
  assert.equal(res.body.error.code, code)
  assert.equal(typeof res.body.error.description, 'string')
}

describe('authentication', () => {
  test('a missing or wrong API key is 401 and nothing is written', async () => {
    const before = await server.admin('GET', '/assets')
    for (const authorization of [
      undefined,
      'Bearer wrong',
      `Basic ${server.adminKey}`,
      `Bearer ${server.adminKey}x`,
    ]) {
      const res = await request(`${server.adminUrl}/assets`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(authorization && { authorization }) },
        body: JSON.stringify({ code: 'GBP', scale: 2 }),
      })
      assertEnvelope(res, 401, 'unauthorized')
      assert.equal(res.headers.get('www-authenticate'), 'Bearer')
    }
    assert.deepEqual((await server.admin('GET', '/assets')).body, before.body)
  })

  test('health, readiness and the OpenAPI document need no key', async () => {
    assert.equal((await request(`${server.adminUrl}/healthz`)).status, 200)
    assert.deepEqual((await request(`${server.adminUrl}/readyz`)).body, { status: 'ready' })
    const doc = await request(`${server.adminUrl}/openapi.json`)
    assert.equal(doc.status, 200)
    assert.equal(doc.body.openapi, '3.1.0')
    for (const path of [
      '/assets',
      '/wallet-addresses',
      '/wallet-addresses/{id}/keys',
      '/wallet-addresses/{id}/deposits',
      '/wallet-addresses/{id}/withdrawals',
      '/wallet-addresses/{id}/balance',
    ]) {
      assert.ok(doc.body.paths[path], `${path} documented`)
    }
    assert.ok(doc.body.paths['/wallet-addresses/{id}/deposits'].post.requestBody)
  })

  test('every response carries a request id; unknown routes are JSON 404s', async () => {
    const res = await server.admin('GET', '/nope')
    assertEnvelope(res, 404, 'not_found')
    assert.match(res.headers.get('x-request-id')!, /^[0-9a-f-]{36}$/)
  })
})

describe('deposits, withdrawals and balances', () => {
  test('a deposit is idempotent by its id', async () => {
    const wa = await createWalletAddress(server, { path: '/dep' })
    const first = await server.admin('POST', `/wallet-addresses/${wa.id}/deposits`, {
      id: 'd-1',
      amount: '1500',
    })
    assert.equal(first.status, 201)
    assert.equal(first.body.balance.available, '1500')
    const again = await server.admin('POST', `/wallet-addresses/${wa.id}/deposits`, {
      id: 'd-1',
      amount: '1500',
    })
    assert.equal(again.status, 200)
    assert.equal(again.body.createdAt, first.body.createdAt)
    assert.equal((await balance(wa.id)).balance, '1500')
    assertEnvelope(
      await server.admin('POST', `/wallet-addresses/${wa.id}/deposits`, { id: 'd-1', amount: '1' }),
      409,
      'conflict',
    )
    assert.equal((await balance(wa.id)).balance, '1500')
  })

  test('a withdrawal beyond the available balance is 422 and moves nothing', async () => {
    const wa = await createWalletAddress(server, { path: '/wd' })
    await server.admin('POST', `/wallet-addresses/${wa.id}/deposits`, { id: 'd', amount: '100' })
    const count = await transferCount()
    assertEnvelope(
      await server.admin('POST', `/wallet-addresses/${wa.id}/withdrawals`, {
        id: 'w-1',
        amount: '101',
      }),
      422,
      'insufficient_balance',
    )
    assert.equal(await transferCount(), count)
    const ok = await server.admin('POST', `/wallet-addresses/${wa.id}/withdrawals`, {
      id: 'w-2',
      amount: '100',
    })
    assert.equal(ok.status, 201)
    assert.deepEqual(ok.body.balance, {
      walletAddressId: wa.id,
      assetCode: 'USD',
      assetScale: 2,
      balance: '0',
      reserved: '0',
      available: '0',
    })
  })

  test('50 concurrent withdrawals over HTTP against a balance covering 20: exactly 20 succeed', async () => {
    const wa = await createWalletAddress(server, { path: '/race' })
    await server.admin('POST', `/wallet-addresses/${wa.id}/deposits`, { id: 'd', amount: '200' })
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        server.admin('POST', `/wallet-addresses/${wa.id}/withdrawals`, {
          id: `w-${i}`,
          amount: '10',
        }),
      ),
    )
    assert.equal(results.filter((r) => r.status === 201).length, 20)
    assert.equal(results.filter((r) => r.status === 422).length, 30)
    assert.equal((await balance(wa.id)).balance, '0')
    const books = await checkBooks(server.database.db)
    assert.ok(books.balanced)
  })
})

describe('bad input is a 4xx in the envelope and writes nothing', () => {
  const json = { 'content-type': 'application/json' }
  const cases: {
    name: string
    path: () => string
    body: string
    status?: number
    field?: string
  }[] = [
    { name: 'malformed JSON', path: () => '/assets', body: '{"code": "GBP",' },
    { name: 'JSON that is not an object', path: () => '/assets', body: '[1,2]' },
    {
      name: 'wrong type',
      path: () => '/assets',
      body: '{"code":"GBP","scale":"2"}',
      field: 'body.scale',
    },
    {
      name: 'unknown field',
      path: () => '/assets',
      body: '{"code":"GBP","scale":2,"admin":true}',
      field: 'body.admin',
    },
    { name: 'missing field', path: () => '/assets', body: '{"code":"GBP"}', field: 'body.scale' },
    {
      name: 'scale out of range',
      path: () => '/assets',
      body: '{"code":"GBP","scale":256}',
      field: 'body.scale',
    },
    {
      name: 'prototype pollution',
      path: () => '/assets',
      body: '{"code":"GBP","scale":2,"__proto__":{"x":1}}',
    },
    {
      name: 'negative amount',
      path: () => `/wallet-addresses/${alice.id}/deposits`,
      body: '{"id":"x","amount":"-5"}',
      field: 'body.amount',
    },
    {
      name: 'decimal amount',
      path: () => `/wallet-addresses/${alice.id}/deposits`,
      body: '{"id":"x","amount":"1.5"}',
      field: 'body.amount',
    },
    {
      name: 'amount above 2^64-1',
      path: () => `/wallet-addresses/${alice.id}/deposits`,
      body: '{"id":"x","amount":"18446744073709551616"}',
      field: 'body.amount',
    },
    {
      name: 'amount as a number',
      path: () => `/wallet-addresses/${alice.id}/deposits`,
      body: '{"id":"x","amount":5}',
      field: 'body.amount',
    },
    {
      name: 'amount with leading zero',
      path: () => `/wallet-addresses/${alice.id}/deposits`,
      body: '{"id":"x","amount":"05"}',
      field: 'body.amount',
    },
    {
      name: 'hex amount',
      path: () => `/wallet-addresses/${alice.id}/deposits`,
      body: '{"id":"x","amount":"0x10"}',
      field: 'body.amount',
    },
    {
      name: 'empty amount',
      path: () => `/wallet-addresses/${alice.id}/deposits`,
      body: '{"id":"x","amount":""}',
      field: 'body.amount',
    },
    {
      name: 'zero amount',
      path: () => `/wallet-addresses/${alice.id}/deposits`,
      body: '{"id":"x","amount":"0"}',
      field: 'body.amount',
    },
    {
      name: 'bad movement id',
      path: () => `/wallet-addresses/${alice.id}/deposits`,
      body: '{"id":"a b","amount":"1"}',
      field: 'body.id',
    },
    {
      name: 'unknown wallet address',
      path: () => `/wallet-addresses/${randomUUID()}/deposits`,
      body: '{"id":"x","amount":"1"}',
      status: 404,
    },
    {
      name: 'wallet address id not a uuid',
      path: () => '/wallet-addresses/alice/deposits',
      body: '{"id":"x","amount":"1"}',
      field: 'params.id',
    },
    {
      name: 'reserved wallet address path',
      path: () => '/wallet-addresses',
      body: '{"path":"/incoming-payments","assetCode":"USD","assetScale":2}',
      field: 'body.path',
    },
    {
      name: 'wallet address path with ..',
      path: () => '/wallet-addresses',
      body: '{"path":"/a/../b","assetCode":"USD","assetScale":2}',
      field: 'body.path',
    },
    {
      name: 'wallet address of an unknown asset',
      path: () => '/wallet-addresses',
      body: '{"path":"/zed","assetCode":"XYZ","assetScale":2}',
      field: 'body.assetCode',
    },
    {
      name: 'duplicate wallet address path',
      path: () => '/wallet-addresses',
      body: '{"path":"/alice","assetCode":"USD","assetScale":2}',
      status: 409,
    },
  ]

  for (const c of cases) {
    test(c.name, async () => {
      const transfersBefore = await transferCount()
      const addressesBefore = (await server.admin('GET', '/wallet-addresses?first=100')).body.items
        .length
      const assetsBefore = (await server.admin('GET', '/assets')).body.items.length
      const res = await server.admin('POST', c.path(), c.body, json)
      assert.equal(res.status, c.status ?? 400, JSON.stringify(res.body))
      assert.ok(res.body.error.code && res.body.error.description, 'error envelope')
      if (c.field) assert.equal(res.body.error.details?.field, c.field)
      assert.equal(await transferCount(), transfersBefore)
      assert.equal(
        (await server.admin('GET', '/wallet-addresses?first=100')).body.items.length,
        addressesBefore,
      )
      assert.equal((await server.admin('GET', '/assets')).body.items.length, assetsBefore)
      assert.equal((await balance()).balance, '0')
    })
  }

  test('an unsupported content type is 415', async () => {
    const res = await server.admin('POST', '/assets', 'code=GBP', {
      'content-type': 'application/x-www-form-urlencoded',
    })
    assertEnvelope(res, 415, 'unsupported_media_type')
  })

  test('list paging: first out of range is 400; cursors walk the list', async () => {
    assertEnvelope(await server.admin('GET', '/wallet-addresses?first=0'), 400, 'invalid_request')
    assertEnvelope(await server.admin('GET', '/wallet-addresses?first=101'), 400, 'invalid_request')
    assertEnvelope(
      await server.admin('GET', '/wallet-addresses?cursor=nope'),
      400,
      'invalid_request',
    )
    // A well-formed cursor that names no wallet address is 400 too, not an empty page.
    const unknown = await server.admin('GET', `/wallet-addresses?cursor=${randomUUID()}`)
    assertEnvelope(unknown, 400, 'invalid_request')
    assert.equal(unknown.body.error.details.field, 'querystring.cursor')
    const all = (await server.admin('GET', '/wallet-addresses?first=100')).body.items.map(
      (w: any) => w.id,
    )
    const seen: string[] = []
    let cursor: string | undefined
    for (;;) {
      const page = await server.admin(
        'GET',
        `/wallet-addresses?first=2${cursor ? `&cursor=${cursor}` : ''}`,
      )
      seen.push(...page.body.items.map((w: any) => w.id))
      if (!page.body.pagination.hasNextPage) break
      cursor = page.body.pagination.endCursor
    }
    assert.deepEqual(seen, all)
  })
})
