import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import { after, before, describe, test } from 'node:test'
import { checkBooks } from '../src/ledger/invariants.ts'
import { createTransfer } from '../src/ledger/transfers.ts'
import { isLedgerError } from '../src/ledger/types.ts'
import { getPeer } from '../src/peers/service.ts'
import { type AdminContract, adminContract } from './helpers/admin-contract.ts'
import { type ClientIdentity, createClientIdentity, grantToken } from './helpers/clients.ts'
import { addPeer } from './helpers/ilp.ts'
import {
  createWalletAddress,
  deposit,
  request,
  startTestServer,
  type TestServer,
} from './helpers/server.ts'

/**
 * The operator's ledger, grants, rates, fees and peers, and the one Idempotency-Key mechanism of
 * the admin listener; every response is checked against the served OpenAPI document.
 */
let server: TestServer
let api: AdminContract
let app: ClientIdentity
let alice: { id: string; url: string }

before(async () => {
  server = await startTestServer({ RATES: JSON.stringify({ USD: { EUR: '0.9', JPY: '151.25' } }) })
  api = await adminContract(server)
  app = await createClientIdentity(server, { path: '/app' })
  alice = await createWalletAddress(server, { path: '/alice' })
})
after(() => server.close())

const assertError = (res: { status: number; body: any }, status: number, code?: string) => {
  assert.equal(res.status, status, JSON.stringify(res.body))
  assert.equal(typeof res.body.error.description, 'string')
  if (code) assert.equal(res.body.error.code, code)
}

describe('ledger', () => {
  test('a wallet address names its account; the account shows its balance and its transfers, newest first', async () => {
    const wa = await createWalletAddress(server, { path: '/ledger-wa' })
    const account = (await api.call('GET', `/wallet-addresses/${wa.id}`)).body.ledgerAccountId
    for (const [i, amount] of ['100', '250', '40'].entries()) {
      await api.call('POST', `/wallet-addresses/${wa.id}/deposits`, { id: `dep-${i}`, amount })
    }
    await api.call('POST', `/wallet-addresses/${wa.id}/withdrawals`, { id: 'wd-0', amount: '90' })
    const got = await api.call('GET', `/ledger/accounts/${account}`)
    assert.equal(got.status, 200)
    assert.deepEqual(
      { ...got.body, assetId: undefined },
      {
        id: account,
        assetId: undefined,
        kind: 'wallet',
        debitsPosted: '90',
        creditsPosted: '390',
        debitsPending: '0',
        creditsPending: '0',
        balance: '300',
      },
    )
    const all = await api.call('GET', `/ledger/accounts/${account}/transfers`)
    assert.deepEqual(
      all.body.items.map((t: any) => [t.id, t.amount, t.state]),
      [
        [`withdrawal:${wa.id}:wd-0`, '90', 'posted'],
        [`deposit:${wa.id}:dep-2`, '40', 'posted'],
        [`deposit:${wa.id}:dep-1`, '250', 'posted'],
        [`deposit:${wa.id}:dep-0`, '100', 'posted'],
      ],
    )
    assert.equal(all.body.items[0].debitAccountId, account)
    assert.equal(all.body.items[1].creditAccountId, account)
    const first = await api.call('GET', `/ledger/accounts/${account}/transfers?first=3`)
    assert.equal(first.body.pagination.hasNextPage, true)
    const rest = await api.call(
      'GET',
      `/ledger/accounts/${account}/transfers?first=3&cursor=${encodeURIComponent(first.body.pagination.endCursor)}`,
    )
    assert.deepEqual(
      [...first.body.items, ...rest.body.items].map((t: any) => t.id),
      all.body.items.map((t: any) => t.id),
    )
    assert.equal(rest.body.pagination.hasNextPage, false)
  })

  test('accounts list by asset and kind; the books check balances', async () => {
    const assets = (await api.call('GET', '/assets')).body.items
    const usd = assets.find((a: any) => a.code === 'USD')
    const own = await api.call('GET', `/ledger/accounts?assetId=${usd.id}&kind=settlement`)
    assert.equal(own.body.items.length, 1)
    assert.equal(own.body.items[0].kind, 'settlement')
    const wallets = await api.call('GET', '/ledger/accounts?kind=wallet&first=100')
    assert.ok(wallets.body.items.length >= 2)
    assert.ok(wallets.body.items.every((a: any) => a.kind === 'wallet'))
    const check = await api.call('GET', '/ledger/check')
    assert.equal(check.body.balanced, true)
  })

  test('unknown, malformed and bad cursors', async () => {
    assertError(await api.call('GET', `/ledger/accounts/${randomUUID()}`), 404, 'not_found')
    assertError(await api.call('GET', `/ledger/accounts/${randomUUID()}/transfers`), 404)
    assertError(await api.call('GET', '/ledger/accounts/nope'), 400, 'invalid_request')
    assertError(await api.call('GET', '/ledger/accounts/nope/transfers'), 400)
    assertError(await api.call('GET', '/ledger/accounts?kind=bank'), 400)
    assertError(await api.call('GET', `/ledger/accounts?cursor=${randomUUID()}`), 400)
    const account = (await api.call('GET', `/wallet-addresses/${alice.id}`)).body.ledgerAccountId
    assertError(
      await api.call('GET', `/ledger/accounts/${account}/transfers?cursor=no-such-transfer`),
      400,
      'invalid_request',
    )
  })
})

describe('grants', () => {
  let token: string
  let grantId: string
  before(async () => {
    token = await grantToken(server, app, [
      { type: 'incoming-payment', actions: ['create', 'read'], identifier: alice.url },
    ])
    const listed = await api.call(
      'GET',
      `/grants?client=${encodeURIComponent(app.walletAddressUrl)}`,
    )
    grantId = listed.body.items[0].id
  })

  test('list by client, wallet address and state; get one', async () => {
    const byClient = await api.call(
      'GET',
      `/grants?client=${encodeURIComponent(app.walletAddressUrl)}`,
    )
    assert.ok(byClient.body.items.length >= 1)
    assert.ok(
      byClient.body.items.every((g: any) => g.client.walletAddress === app.walletAddressUrl),
    )
    const byWallet = await api.call('GET', `/grants?walletAddressId=${alice.id}`)
    assert.deepEqual(
      byWallet.body.items.map((g: any) => g.id),
      [grantId],
    )
    const issued = await api.call('GET', '/grants?state=finalized&finalization=issued&first=100')
    assert.ok(issued.body.items.some((g: any) => g.id === grantId))
    assert.deepEqual((await api.call('GET', '/grants?state=pending')).body.items, [])
    const got = await api.call('GET', `/grants/${grantId}`)
    assert.equal(got.body.state, 'finalized')
    assert.equal(got.body.finalization, 'issued')
    assert.equal(got.body.walletAddressId, alice.id)
    assert.equal(got.body.access[0].type, 'incoming-payment')
  })

  test('revoke: the token stops working; revoking again returns it unchanged', async () => {
    const ip = () =>
      app.client.incomingPayment.create(
        { url: server.openPaymentsUrl, accessToken: token },
        { walletAddress: alice.url },
      )
    await ip()
    const revoked = await api.call('POST', `/grants/${grantId}/revoke`)
    assert.equal(revoked.status, 200)
    assert.equal(revoked.body.finalization, 'revoked')
    await assert.rejects(ip())
    const again = await api.call('POST', `/grants/${grantId}/revoke`)
    assert.deepEqual(again.body, revoked.body)
    const listed = await api.call('GET', `/grants?finalization=revoked&walletAddressId=${alice.id}`)
    assert.deepEqual(
      listed.body.items.map((g: any) => g.id),
      [grantId],
    )
  })

  test('bad input', async () => {
    assertError(await api.call('GET', `/grants/${randomUUID()}`), 404, 'not_found')
    assertError(await api.call('POST', `/grants/${randomUUID()}/revoke`), 404, 'not_found')
    assertError(await api.call('GET', '/grants/abc'), 400, 'invalid_request')
    assertError(await api.call('POST', '/grants/abc/revoke'), 400, 'invalid_request')
    assertError(await api.call('GET', '/grants?client=not a url'), 400)
    assertError(await api.call('GET', '/grants?state=done'), 400)
  })
})

describe('exchange rates', () => {
  test('the static table in use, and exact lookups both ways', async () => {
    assert.deepEqual((await api.call('GET', '/rates')).body, {
      source: 'static',
      table: { USD: { EUR: '0.9', JPY: '151.25' } },
    })
    assert.deepEqual((await api.call('GET', '/rates/USD/EUR')).body, {
      base: 'USD',
      quote: 'EUR',
      numerator: '9',
      denominator: '10',
      approximate: '0.9',
    })
    assert.deepEqual((await api.call('GET', '/rates/JPY/USD')).body, {
      base: 'JPY',
      quote: 'USD',
      numerator: '4',
      denominator: '605',
      approximate: '0.006611570247',
    })
    assert.equal((await api.call('GET', '/rates/EUR/EUR')).body.approximate, '1')
    assertError(await api.call('GET', '/rates/USD/GBP'), 404, 'unknown_rate')
    assertError(await api.call('GET', '/rates/US$/EUR'), 400, 'invalid_request')
  })

  test('a rates URL: shown without credentials or query values; a hanging endpoint is a 404 in bounded time', async () => {
    let hang = false
    const feed: Server = createServer((req, res) => {
      if (hang) return // never answers
      const base = new URL(req.url!, 'http://x').searchParams.get('base')
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ base, rates: { EUR: 0.5 } }))
    })
    await new Promise<void>((resolve) => feed.listen(0, '127.0.0.1', resolve))
    const port = (feed.address() as { port: number }).port
    const other = await startTestServer({
      RATES_URL: `http://127.0.0.1:${port}/rates?apikey=s3cret&region=eu`,
      RATES_TIMEOUT_MS: '300',
      RATES_CACHE_SECONDS: '1',
    })
    try {
      const otherApi = await adminContract(other)
      const source = await otherApi.call('GET', '/rates')
      assert.deepEqual(source.body, {
        source: 'http',
        url: `http://127.0.0.1:${port}/rates?apikey=redacted&region=redacted`,
        cacheSeconds: 1,
        timeoutMs: 300,
      })
      assert.equal((await otherApi.call('GET', '/rates/USD/EUR')).body.numerator, '1')
      hang = true
      const started = Date.now()
      assertError(await otherApi.call('GET', '/rates/GBP/EUR'), 404, 'unknown_rate')
      assert.ok(Date.now() - started < 3000)
    } finally {
      await other.close()
      feed.closeAllConnections()
      await new Promise((resolve) => feed.close(resolve))
    }
  })
})

describe('fees, peers and wallet addresses', () => {
  test('fees: every asset listed, with what was set', async () => {
    await api.call('POST', '/assets', { code: 'EUR', scale: 2 })
    const eur = (await api.call('GET', '/assets')).body.items.find((a: any) => a.code === 'EUR')
    await api.call('PUT', `/assets/${eur.id}/fees`, { fixed: '5', basisPoints: 25 })
    const fees = (await api.call('GET', '/fees')).body.items
    assert.deepEqual(
      fees.find((f: any) => f.assetCode === 'EUR'),
      { assetId: eur.id, assetCode: 'EUR', assetScale: 2, fixed: '5', basisPoints: 25 },
    )
    assert.deepEqual(
      { ...fees.find((f: any) => f.assetCode === 'USD'), assetId: undefined },
      { assetId: undefined, assetCode: 'USD', assetScale: 2, fixed: '0', basisPoints: 0 },
    )
  })

  test('peers: credit line, position and ledger account; updates show', async () => {
    const peer = await addPeer(server, { name: 'ase-p', creditLimit: 5000n })
    const got = await api.call('GET', `/peers/${peer.id}`)
    assert.equal(got.body.creditLimit, '5000')
    assert.equal(got.body.balance, '0')
    assert.equal(got.body.ledgerAccountId, peer.ledgerAccountId)
    const patched = await api.call('PATCH', `/peers/${peer.id}`, { creditLimit: '7000' })
    assert.equal(patched.body.creditLimit, '7000')
    const account = await api.call('GET', `/ledger/accounts/${peer.ledgerAccountId}`)
    assert.equal(account.body.kind, 'peer')
    assert.equal(account.body.debitLimit, '7000')
    assert.ok((await api.call('GET', '/peers')).body.items.some((p: any) => p.id === peer.id))
  })

  test('peers: a route longer than an ILP address (1023) is 400, and no peer is added', async () => {
    const body = (name: string, route: string) => ({
      name,
      assetCode: 'USD',
      assetScale: 2,
      ilpAddress: `test.${name}`,
      routes: [route],
      httpEndpoint: 'http://127.0.0.1:9/ilp',
      outgoingToken: randomUUID(),
      incomingTokens: [randomUUID()],
    })
    // Far past what a btree index row holds: the schema refuses it before the database sees it.
    for (const length of [1024, 6000]) {
      const route = `test.${'a'.repeat(length - 5)}`
      const res = await api.call('POST', '/peers', body('ase-long-route', route))
      assertError(res, 400, 'invalid_request')
      assert.match(res.body.error.details.field, /^body\.routes/)
    }
    const peers = (await api.call('GET', '/peers')).body.items
    assert.ok(!peers.some((p: any) => p.name === 'ase-long-route'))
    // 1023 characters, as ilpAddress allows, is accepted.
    const longest = `test.${'b'.repeat(1018)}`
    const added = await api.call('POST', '/peers', body('ase-longest-route', longest))
    assert.equal(added.status, 201, JSON.stringify(added.body))
    assert.deepEqual(added.body.routes, [longest])
  })

  test('peers: a credit limit below what the peer owes now is 409, and nothing of the patch is applied', async () => {
    const peer = await addPeer(server, {
      name: 'ase-owing',
      creditLimit: 1000n,
      maxPacketAmount: 500n,
    })
    const payee = await createWalletAddress(server, { path: '/peer-payee' })
    const wa = (await api.call('GET', `/wallet-addresses/${payee.id}`)).body.ledgerAccountId
    // What packets from the peer book: its account debited within its line, one still in flight.
    await server.database.db.transaction().execute(async (trx) => {
      for (const t of [
        { id: `pkt-${randomUUID()}`, amount: 600n },
        { id: `pkt-${randomUUID()}`, amount: 100n, pendingUntil: new Date(Date.now() + 60_000) },
      ]) {
        const done = await createTransfer(trx, {
          ...t,
          debitAccountId: peer.ledgerAccountId,
          creditAccountId: wa,
        })
        assert.ok(!isLedgerError(done), String(done))
      }
    })
    const before = await api.call('GET', `/peers/${peer.id}`)
    const stored = (await getPeer(server.database.db, { id: peer.id }))!
    for (const creditLimit of ['100', '699']) {
      const refused = await api.call('PATCH', `/peers/${peer.id}`, {
        creditLimit,
        httpEndpoint: 'http://127.0.0.1:8/other',
        outgoingToken: 'another-outgoing-token-0123456789',
        maxPacketAmount: '7',
      })
      assertError(refused, 409, 'conflict')
      assert.equal(refused.body.error.details.owed, '700')
      assert.equal(refused.body.error.details.field, 'body.creditLimit')
      assert.match(refused.body.error.description, /owes 700/)
    }
    assert.deepEqual((await api.call('GET', `/peers/${peer.id}`)).body, before.body)
    assert.equal(before.body.creditLimit, '1000')
    assert.deepEqual(await getPeer(server.database.db, { id: peer.id }), stored)
    const account = await api.call('GET', `/ledger/accounts/${peer.ledgerAccountId}`)
    assert.equal(account.body.debitLimit, '1000')
    // Down to exactly what it owes is allowed.
    const lowered = await api.call('PATCH', `/peers/${peer.id}`, { creditLimit: '700' })
    assert.equal(lowered.status, 200)
    assert.equal(lowered.body.creditLimit, '700')
  })
})

describe('Idempotency-Key: one mechanism for every admin mutation', () => {
  const jwk = (kid: string) => ({
    kid,
    kty: 'OKP',
    crv: 'Ed25519',
    x: `${'a'.repeat(42)}A`,
  })

  test('the same key twice: the first result again, one effect', async () => {
    const key = randomUUID()
    const body = { jwk: jwk(`k-${key}`) }
    const first = await api.call('POST', `/wallet-addresses/${alice.id}/keys`, body, {
      'idempotency-key': key,
    })
    assert.equal(first.status, 201)
    const second = await api.call('POST', `/wallet-addresses/${alice.id}/keys`, body, {
      'idempotency-key': key,
    })
    assert.equal(second.status, 201)
    assert.equal(second.headers.get('idempotent-replayed'), 'true')
    assert.deepEqual(second.body, first.body)
    // Without the key, the same call runs again and finds the kid taken.
    assertError(await api.call('POST', `/wallet-addresses/${alice.id}/keys`, body), 409)
    const keys = (await api.call('GET', `/wallet-addresses/${alice.id}/keys`)).body.items
    assert.equal(keys.filter((k: any) => k.jwk.kid === `k-${key}`).length, 1)
  })

  test('20 concurrent calls with one key: the handler runs once', async () => {
    const key = randomUUID()
    const body = { jwk: jwk(`c-${key}`) }
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        api.call('POST', `/wallet-addresses/${alice.id}/keys`, body, { 'idempotency-key': key }),
      ),
    )
    const ran = results.filter((r) => r.status === 201 && !r.headers.get('idempotent-replayed'))
    assert.equal(ran.length, 1)
    for (const r of results) {
      if (r === ran[0]) continue
      if (r.status === 201) assert.deepEqual(r.body, ran[0]!.body)
      else {
        // Still in progress: never the handler's own "kid taken", which would mean it ran twice.
        assertError(r, 409, 'conflict')
        assert.match(r.body.error.description, /Idempotency-Key is in progress/)
      }
    }
    const keys = (await api.call('GET', `/wallet-addresses/${alice.id}/keys`)).body.items
    assert.equal(keys.filter((k: any) => k.jwk.kid === `c-${key}`).length, 1)
  })

  test('the key with another body or path is 422; PUT, PATCH and DELETE are covered too', async () => {
    const key = randomUUID()
    const wa = await createWalletAddress(server, { path: `/idem-${key.slice(0, 8)}` })
    const patch = await api.call(
      'PATCH',
      `/wallet-addresses/${wa.id}`,
      { publicName: 'One' },
      {
        'idempotency-key': key,
      },
    )
    assert.equal(patch.status, 200)
    assertError(
      await api.call(
        'PATCH',
        `/wallet-addresses/${wa.id}`,
        { publicName: 'Two' },
        {
          'idempotency-key': key,
        },
      ),
      422,
      'invalid_request',
    )
    assertError(
      await api.call(
        'PATCH',
        `/wallet-addresses/${alice.id}`,
        { publicName: 'One' },
        {
          'idempotency-key': key,
        },
      ),
      422,
    )
    assert.equal((await api.call('GET', `/wallet-addresses/${wa.id}`)).body.publicName, 'One')

    const peer = await addPeer(server, { name: `del-${key.slice(0, 8)}` })
    const deleteKey = randomUUID()
    const gone = await api.call('DELETE', `/peers/${peer.id}`, undefined, {
      'idempotency-key': deleteKey,
    })
    assert.equal(gone.status, 204)
    const replayed = await api.call('DELETE', `/peers/${peer.id}`, undefined, {
      'idempotency-key': deleteKey,
    })
    assert.equal(replayed.status, 204)
    assert.equal(replayed.headers.get('idempotent-replayed'), 'true')
    assertError(await api.call('DELETE', `/peers/${peer.id}`), 404)
  })

  test('a deposit retried under its key moves money once; an invalid request does not use the key', async () => {
    const key = randomUUID()
    const path = `/wallet-addresses/${alice.id}/deposits`
    // Refused by validation before the key is looked at: the key stays free.
    assertError(
      await api.call('POST', path, { id: 'k-dep', amount: '-1' }, { 'idempotency-key': key }),
      400,
    )
    const results = await Promise.all(
      Array.from({ length: 5 }, () =>
        api.call('POST', path, { id: 'k-dep', amount: '75' }, { 'idempotency-key': key }),
      ),
    )
    assert.ok(results.some((r) => r.status === 201))
    const balance = (await api.call('GET', `/wallet-addresses/${alice.id}/balance`)).body
    assert.equal(balance.balance, '75')
    assert.ok((await checkBooks(server.database.db)).balanced)
  })

  test('a malformed key is 400; keys on reads are ignored; no key without the API key', async () => {
    for (const key of ['', 'x'.repeat(256), 'caf\u00e9']) {
      assertError(
        await api.call('POST', '/assets', { code: 'CHF', scale: 2 }, { 'idempotency-key': key }),
        400,
        'invalid_request',
      )
    }
    const read = await api.call('GET', '/assets', undefined, { 'idempotency-key': 'r' })
    assert.equal(read.status, 200)
    assert.equal(read.headers.get('idempotent-replayed'), null)
    const key = randomUUID()
    const res = await request(`${server.adminUrl}/assets`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': key },
      body: JSON.stringify({ code: 'CHF', scale: 2 }),
    })
    api.check('POST', '/assets', res)
    assertError(res, 401)
    const keyRow = await server.database.db
      .selectFrom('idempotency_keys')
      .select('key')
      .where('key', '=', key)
      .executeTakeFirst()
    assert.equal(keyRow, undefined)
  })
})

test('deposits still work alongside (sanity)', async () => {
  const wa = await createWalletAddress(server, { path: '/sanity' })
  await deposit(server, wa.id, 10n)
  assert.equal((await api.call('GET', `/wallet-addresses/${wa.id}/balance`)).body.balance, '10')
})
