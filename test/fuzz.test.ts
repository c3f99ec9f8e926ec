import assert from 'node:assert/strict'
import { randomInt } from 'node:crypto'
import { Agent } from 'node:http'
import { after, before, test } from 'node:test'
import fc from 'fast-check'
import { sql } from 'kysely'
import { describe, type FuzzContext, type FuzzRequest, requestsFor, send } from './fuzz/requests.ts'
import { allRoutes } from './fuzz/routes.ts'
import { usd } from './helpers/amounts.ts'
import { createClientIdentity, grantToken, outgoingPaymentToken } from './helpers/clients.ts'
import { addPeer, streamPrepare } from './helpers/ilp.ts'
import {
  createWalletAddress,
  deposit,
  request,
  startTestServer,
  type TestServer,
} from './helpers/server.ts'

/**
 * Property-based fuzzing of every route of every listener (issue 8): requests generated from the
 * official Open Payments specs and the admin listener's /openapi.json, mostly shaped like the
 * contract, many validly signed with a valid token, all broken somewhere. No response may be a 5xx,
 * and a batch in which every write was refused must leave the books and the main tables unchanged.
 * `FUZZ_SEED` replays a run; `FUZZ_RUNS` sets the number of requests (default 10,000).
 */
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : randomInt(2 ** 31)
const RUNS = Number(process.env.FUZZ_RUNS ?? 10_000)
const BATCH = 32
const CONCURRENCY = 16

let server: TestServer
let ctx: FuzzContext

before(async () => {
  server = await startTestServer({ RATE_LIMIT_ENABLED: 'false' })
  const app = await createClientIdentity(server, { path: '/app', publicName: 'App' })
  const alice = await createWalletAddress(server, { path: '/alice', publicName: 'Alice' })
  const bob = await createWalletAddress(server, { path: '/bob' })
  // The admin routes may change or deactivate Carol; Alice and the client stay usable.
  const carol = await createWalletAddress(server, { path: '/carol' })
  await deposit(server, alice.id, 1_000_000n)
  await deposit(server, carol.id, 1_000n)
  const ipToken = await grantToken(server, app, [
    {
      type: 'incoming-payment',
      actions: ['create', 'read', 'list', 'complete'],
    },
  ])
  const quoteToken = await grantToken(server, app, [{ type: 'quote', actions: ['create', 'read'] }])
  const opToken = await outgoingPaymentToken(server, app, alice.url)
  const op = { url: server.openPaymentsUrl }
  const ip = await app.client.incomingPayment.create(
    { ...op, accessToken: ipToken },
    { walletAddress: bob.url, incomingAmount: { value: '500', assetCode: 'USD', assetScale: 2 } },
  )
  // The fuzzer may complete this one; the first stays open as the receiver of quotes.
  const completable = await app.client.incomingPayment.create(
    { ...op, accessToken: ipToken },
    { walletAddress: bob.url, incomingAmount: { value: '500', assetCode: 'USD', assetScale: 2 } },
  )
  const quoteOf10 = () =>
    app.client.quote.create(
      { ...op, accessToken: quoteToken },
      {
        walletAddress: alice.url,
        receiver: ip.id,
        method: 'ilp',
        debitAmount: { value: '10', assetCode: 'USD', assetScale: 2 },
      },
    )
  const quote = await quoteOf10()
  const spare = await quoteOf10()
  const payment = await app.client.outgoingPayment.create(
    { ...op, accessToken: opToken },
    { walletAddress: alice.url, quoteId: quote.id },
  )
  // Tokens and grants the fuzzer may rotate or revoke (it gets their ids); the ones above it may not.
  const sacrificial = await app.client.grant.request(
    { url: server.authUrl },
    { access_token: { access: [{ type: 'quote', actions: ['read'] }] } },
  )
  if (!('access_token' in sacrificial) || !sacrificial.access_token)
    throw new Error('expected a token')
  const pending = await app.client.grant.request(
    { url: server.authUrl },
    {
      access_token: {
        access: [{ type: 'outgoing-payment', actions: ['create'], identifier: alice.url }],
      },
      interact: {
        start: ['redirect'],
        finish: { method: 'redirect', uri: 'http://127.0.0.1:9/cb', nonce: 'n' },
      },
    },
  )
  if (!('interact' in pending)) throw new Error('expected an interactive grant')
  const [, interactId, nonce] = /\/interact\/([^/]+)\/([^/?]+)/.exec(pending.interact.redirect)!
  const peer = await addPeer(server, { name: 'fuzzpeer', creditLimit: 1_000_000n })
  // The admin routes may change or delete this one; `peer` keeps sending packets.
  const victim = await addPeer(server, { name: 'fuzzvictim' })
  const method = (await app.client.incomingPayment.get({ url: ip.id, accessToken: ipToken })) as {
    methods?: { ilpAddress: string; sharedSecret: string }[]
  }
  const ilpPackets = (method.methods ?? []).map((m) =>
    streamPrepare({ ilpAddress: m.ilpAddress, sharedSecret: m.sharedSecret, amount: 1n }),
  )
  const endpoint = await server.admin('POST', '/webhook-endpoints', {
    url: 'http://127.0.0.1:9/hooks',
    eventTypes: ['incoming_payment.completed'],
  })

  const signIn = await fetch(`${server.adminUrl}/console/sign-in`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ key: server.adminKey }).toString(),
  })
  const cookie = signIn.headers.get('set-cookie')!.split(';')[0]!
  const page = await (await fetch(`${server.adminUrl}/console`, { headers: { cookie } })).text()
  const csrf = /name="csrf" value="([^"]+)"/.exec(page)?.[1] ?? ''

  const tail = (url: string) => url.split('/').pop()!
  const ids = [ip.id, quote.id, spare.id, payment.id].map(tail)
  const adminIds = [
    carol.id,
    victim.id,
    endpoint.body.id,
    sacrificial.access_token.manage.split('/').pop()!,
  ]
  const walletAddressPath = '/alice'
  const adminOpenApi = (await request(`${server.adminUrl}/openapi.json`)).body
  const routes = await allRoutes(adminOpenApi, walletAddressPath)
  ctx = {
    pool: {
      urls: [
        alice.url,
        bob.url,
        app.walletAddressUrl,
        ip.id,
        quote.id,
        spare.id,
        payment.id,
        server.openPaymentsUrl,
        server.authUrl,
        `${server.openPaymentsUrl}/nobody`,
        'http://127.0.0.1:1/incoming-payments/00000000-0000-4000-8000-000000000000',
      ],
      ids: [...ids, ...adminIds],
      strings: [
        'USD',
        'EUR',
        'ilp',
        'accept',
        'fuzz',
        '2',
        'outgoing-payment',
        'incoming-payment',
        'quote',
      ],
    },
    origins: {
      'open-payments': server.openPaymentsUrl,
      auth: server.authUrl,
      admin: server.adminUrl,
      ilp: server.ilpUrl.replace(/\/ilp$/, ''),
    },
    params: {
      interactId: [interactId!],
      nonce: [nonce!],
      id: [...ids, ...adminIds, tail(pending.continue.uri)],
      '/incoming-payments/{id}:id': [tail(ip.id)],
      '/incoming-payments/{id}/complete:id': [tail(completable.id)],
      '/quotes/{id}:id': [tail(quote.id), tail(spare.id)],
      '/outgoing-payments/{id}:id': [tail(payment.id)],
      '/continue/{id}:id': [tail(pending.continue.uri)],
      '/token/{id}:id': [tail(sacrificial.access_token.manage)],
    },
    gnapTokens: [ipToken, quoteToken, opToken, sacrificial.access_token.value],
    tokenFor: {
      'POST /incoming-payments': ipToken,
      'GET /incoming-payments': ipToken,
      'GET /incoming-payments/{id}': ipToken,
      'POST /incoming-payments/{id}/complete': ipToken,
      'POST /quotes': quoteToken,
      'GET /quotes/{id}': quoteToken,
      'POST /outgoing-payments': opToken,
      'GET /outgoing-payments': opToken,
      'GET /outgoing-payments/{id}': opToken,
      'GET /outgoing-payment-grant': opToken,
    },
    continueTokens: [pending.continue.access_token.value],
    peerTokens: [peer.token],
    adminKey: server.adminKey,
    console: { cookie, csrf },
    signer: { privateKey: app.privateKey, keyId: app.keyId },
    ilpPackets: ilpPackets.length > 0 ? ilpPackets : [Buffer.from([12, 0])],
    examples: examples({
      app: app.walletAddressUrl,
      alice: alice.url,
      bob: bob.url,
      ip: ip.id,
      quote: spare.id,
    }),
  }
  routes.sort((a, b) =>
    `${a.listener}${a.template}${a.method}`.localeCompare(`${b.listener}${b.template}${b.method}`),
  )
  plan = {
    routes: routes.map((r) => `${r.listener} ${r.method} ${r.template}`),
    // The Open Payments routes, where money moves, get three times the share of the others.
    arbitrary: fc.oneof(
      ...routes.map((r) => ({
        weight:
          r.listener === 'open-payments' || r.template === '/' || r.template.startsWith('/continue')
            ? 3
            : 1,
        arbitrary: requestsFor(r, ctx),
      })),
    ),
  }
})
after(() => server?.close())

let plan: { routes: string[]; arbitrary: fc.Arbitrary<FuzzRequest> }

/** Valid bodies of the routes that move money or store text, for single-point mutations. */
function examples(u: { app: string; alice: string; bob: string; ip: string; quote: string }) {
  const future = new Date(Date.now() + 3_600_000).toISOString()
  const hook = 'http://127.0.0.1:9/hooks'
  return {
    'POST /incoming-payments': [
      {
        walletAddress: u.bob,
        incomingAmount: usd('100'),
        expiresAt: future,
        metadata: { description: 'fuzz', n: 1 },
      },
    ],
    'POST /quotes': [
      { walletAddress: u.alice, receiver: u.ip, method: 'ilp', debitAmount: usd('5') },
      { walletAddress: u.alice, receiver: u.ip, method: 'ilp', receiveAmount: usd('5') },
    ],
    'POST /outgoing-payments': [
      { walletAddress: u.alice, quoteId: u.quote, metadata: { description: 'fuzz' } },
      { walletAddress: u.alice, incomingPayment: u.ip, debitAmount: usd('5') },
    ],
    'POST /': [
      {
        client: u.app,
        access_token: { access: [{ type: 'incoming-payment', actions: ['create', 'read'] }] },
      },
      {
        client: u.app,
        access_token: {
          access: [
            {
              type: 'outgoing-payment',
              actions: ['create'],
              identifier: u.alice,
              limits: { debitAmount: usd('100'), interval: 'R/2025-01-01T00:00:00Z/P1M' },
            },
          ],
        },
        interact: {
          start: ['redirect'],
          finish: { method: 'redirect', uri: 'http://127.0.0.1:9/cb', nonce: 'n' },
        },
      },
      {
        client: u.app,
        subject: { sub_ids: [{ id: u.alice, format: 'uri' }] },
        interact: { start: ['redirect'] },
      },
    ],
    'POST /continue/{id}': [{ interact_ref: 'ref' }],
    'POST /assets': [{ code: 'EUR', scale: 2 }],
    'POST /wallet-addresses': [
      { path: '/fuzzed', assetCode: 'USD', assetScale: 2, publicName: 'Fuzzed' },
    ],
    'PATCH /wallet-addresses/{id}': [{ publicName: 'Renamed' }],
    'POST /wallet-addresses/{id}/deposits': [{ id: 'fuzz-deposit', amount: '100' }],
    'POST /wallet-addresses/{id}/withdrawals': [{ id: 'fuzz-withdrawal', amount: '1' }],
    'PUT /assets/{id}/fees': [{ fixed: '1', basisPoints: 10 }],
    'POST /webhook-endpoints': [
      { url: hook, eventTypes: ['incoming_payment.completed'], description: 'x' },
    ],
    'PATCH /webhook-endpoints/{id}': [{ description: 'y', enabled: false }],
    'POST /peers': [
      {
        name: 'fuzzed',
        assetCode: 'USD',
        assetScale: 2,
        ilpAddress: 'test.fuzzed',
        httpEndpoint: 'http://127.0.0.1:9/ilp',
        outgoingToken: 'out-token-0123456789',
        incomingTokens: ['in-token-0123456789'],
      },
    ],
    'POST /incoming-payments/{id}/cancel': [{ reason: 'fuzz' }],
    'POST /outgoing-payments/{id}/cancel': [{ reason: 'fuzz' }],
    'POST /introspect': [{ access_token: 'x' }],
  }
}

/** Row counts of the main tables and the ledger's totals: what a refused request must not change. */
async function snapshot(): Promise<Record<string, string>> {
  const db = server.database.db
  const tables = [
    'assets',
    'wallet_addresses',
    'wallet_address_keys',
    'grants',
    'access_tokens',
    'incoming_payments',
    'quotes',
    'outgoing_payments',
    'peers',
    'peer_incoming_tokens',
    'webhook_endpoints',
    'fees',
    'low_balance_thresholds',
    'ledger_accounts',
    'ledger_transfers',
  ]
  const counts = await sql<Record<string, string>>`select ${sql.raw(
    tables.map((t) => `(select count(*) from ${t})::text as ${t}`).join(', '),
  )}, (select coalesce(sum(debits_posted), 0)::text || '/' || coalesce(sum(credits_posted), 0)::text || '/' || coalesce(sum(debits_pending), 0)::text || '/' || coalesce(sum(credits_pending), 0)::text from ledger_account_totals) as ledger_totals, (select coalesce(sum(amount), 0)::text from ledger_transfers) as transfer_total, (select count(*)::text from grants where state <> 'pending') as finalized_grants, (select count(*)::text from access_tokens where revoked_at is not null) as revoked_tokens`.execute(
    db,
  )
  return counts.rows[0]!
}

/**
 * Waits until background work (the payment worker settling an accepted payment) has finished, so
 * that a snapshot moves only by requests. Undefined when a payment is still sending (retrying with
 * backoff): the next batch is then not compared.
 */
async function quiet(): Promise<Record<string, string> | undefined> {
  const db = server.database.db
  for (let i = 0; i < 8; i++) {
    const busy = await sql<{
      n: string
    }>`select count(*)::text as n from outgoing_payments where state = 'sending'`.execute(db)
    if (busy.rows[0]!.n === '0') {
      const a = await snapshot()
      await new Promise((r) => setTimeout(r, 50))
      if (JSON.stringify(await snapshot()) === JSON.stringify(a)) return a
    }
    await new Promise((r) => setTimeout(r, 100))
  }
  return undefined
}

test(`fuzz: ${RUNS} requests over every route of every listener (FUZZ_SEED=${SEED})`, async () => {
  console.log(
    `fuzz seed ${SEED} (replay with FUZZ_SEED=${SEED}), ${RUNS} requests, ${plan.routes.length} routes`,
  )
  const requests = fc.sample(plan.arbitrary, { seed: SEED, numRuns: RUNS })
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY })
  const fresh = new Agent({ keepAlive: false })
  const failures: string[] = []
  const statuses = new Map<string, Map<number, number>>()
  let unsendable = 0
  let checkedBatches = 0
  const started = Date.now()
  let before = await quiet()
  for (let start = 0; start < requests.length; start += BATCH) {
    const batch = requests.slice(start, start + BATCH)
    const results: { req: FuzzRequest; status: number; answer: string }[] = []
    let next = 0
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < batch.length) {
          const req = batch[next++]!
          try {
            let res = await send(req, ctx, agent)
            // A keep-alive connection the server had just closed: once more, on a connection of its
            // own. The first attempt may have been served, so the batch counts as one that wrote.
            const retried = res.status === 0
            if (retried) res = await send(req, ctx, fresh)
            results.push({ req, status: retried ? 0 : res.status, answer: res.body.slice(0, 300) })
            if (res.status === 0 && process.env.FUZZ_DEBUG)
              console.log('reset:', describe(req).slice(0, 600))
            const byStatus = statuses.get(req.route) ?? new Map<number, number>()
            byStatus.set(res.status, (byStatus.get(res.status) ?? 0) + 1)
            statuses.set(req.route, byStatus)
            if (res.status >= 500)
              failures.push(
                `${res.status} for request #${start + batch.indexOf(req)}: ${describe(req)}\n→ ${res.body.slice(0, 500)}`,
              )
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code?.startsWith('ERR_')) unsendable++
            else throw err
          }
        }
      }),
    )
    const wrote = results.some((r) => r.req.method !== 'GET' && r.status < 400)
    if (!wrote && before) {
      const now = await snapshot()
      checkedBatches++
      assert.deepEqual(
        now,
        before,
        `a batch of refused requests changed the database (FUZZ_SEED=${SEED}); its writes:\n${results
          .filter((r) => r.req.method !== 'GET')
          .map((r) => `${r.status} ${describe(r.req)}\n→ ${r.answer}`)
          .join('\n')}`,
      )
      before = now
    } else {
      before = await quiet()
    }
    if (failures.length >= 20) break
  }
  agent.destroy()
  fresh.destroy()
  const seconds = ((Date.now() - started) / 1000).toFixed(1)
  const summary = [...statuses.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(
      ([route, byStatus]) =>
        `  ${route}: ${[...byStatus.entries()]
          .sort(([a], [b]) => a - b)
          .map(([s, n]) => `${s}×${n}`)
          .join(' ')}`,
    )
  console.log(
    `fuzz: ${requests.length} requests in ${seconds} s, ${checkedBatches} refused batches checked unchanged, ${unsendable} not sendable\n${summary.join('\n')}`,
  )
  assert.deepEqual(failures, [], `responses ≥ 500 (FUZZ_SEED=${SEED}):\n${failures.join('\n\n')}`)
  const missed = plan.routes.filter((r) => !statuses.has(r))
  // A short run (FUZZ_RUNS) need not reach every route.
  if (RUNS >= 10_000) assert.deepEqual(missed, [], 'every route was fuzzed')
  const books = await server.admin('GET', '/ledger/check')
  assert.equal(books.status, 200)
  assert.equal(books.body.balanced, true, JSON.stringify(books.body))
})

test('the cases the fuzzer first found: malformed interaction ids, NUL and lone surrogates', async () => {
  const auth = ctx.origins.auth
  for (const path of [
    '/interact/abc/abc',
    '/interact/abc/abc/identity',
    '/interact/abc/abc/consent',
  ]) {
    const res = await fetch(`${auth}${path}`)
    assert.equal(res.status, 404, path)
  }
  const consent = await fetch(`${auth}/interact/abc/abc/consent`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: 'decision=accept',
  })
  assert.equal(consent.status, 404)
  const cases: [string, string, string, string][] = [
    [
      'admin',
      '/wallet-addresses',
      '{"path":"/nul","assetCode":"USD","assetScale":2,"publicName":"a\\u0000b"}',
      'body.publicName',
    ],
    ['admin', '/assets', '{"code":"\\ud800","scale":2}', 'body.code'],
    [
      'auth',
      '/',
      '{"client":"x","interact":{"finish":{"nonce":"\\u0000"}}}',
      'body.interact.finish.nonce',
    ],
    [
      'open-payments',
      '/incoming-payments',
      '{"walletAddress":"x","metadata":{"note":"\\u0000"}}',
      'body.metadata.note',
    ],
  ]
  for (const [listener, path, body, field] of cases) {
    const res = await request(`${ctx.origins[listener as 'admin']}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${ctx.adminKey}` },
      body,
    })
    assert.equal(res.status, 400, `${listener} ${path}`)
    assert.equal(res.body.error.details.field, field)
    assert.match(res.body.error.description, /NUL|surrogate/)
  }
})
