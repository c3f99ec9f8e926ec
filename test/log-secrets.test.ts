import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { after, before, test } from 'node:test'
import { sql } from 'kysely'
import { pino } from 'pino'
import { redactUrl, serializeError } from '../src/http/log-redaction.ts'
import { createClientIdentity, grantToken, outgoingPaymentToken } from './helpers/clients.ts'
import { addPeer, destinationOf, postIlp, streamPrepare } from './helpers/ilp.ts'
import {
  createWalletAddress,
  deposit,
  eventually,
  startTestServer,
  type TestServer,
} from './helpers/server.ts'

/**
 * Issue 8, point 6: a full flow with the log at `trace`, and every secret the flow used or was
 * issued searched for in the whole log. Secrets are collected where they cross the wire: every
 * request and response of the test passes through a recording `fetch`.
 */
let log = ''
const secrets = new Set<string>()
const realFetch = globalThis.fetch
let server: TestServer

const keep = (value: string | null | undefined) => {
  // Short values (a status, "n") would match by chance; every real secret here is longer.
  if (value && value.length >= 8) secrets.add(value)
}

/** Secret parts of a URL: the interaction nonce and signed or bearer query values. */
function urlSecrets(href: string) {
  let url: URL
  try {
    url = new URL(href, 'http://x')
  } catch {
    return
  }
  keep(/^\/interact\/[^/]+\/([^/]+)/.exec(url.pathname)?.[1])
  for (const k of ['sig', 'interact_ref', 'hash', 'return_to']) keep(url.searchParams.get(k))
}

/** Tokens and secrets in a JSON document: access and continuation token values, secrets. */
function jsonSecrets(value: unknown, path = '') {
  if (typeof value === 'string') {
    if (
      /(access_token\.value|secret|sharedSecret|interact_ref|incomingTokens\.\d+|outgoingToken|key)$/i.test(
        path,
      )
    )
      keep(value)
    return
  }
  if (value && typeof value === 'object')
    for (const [k, v] of Object.entries(value)) jsonSecrets(v, path ? `${path}.${k}` : k)
}

function headerSecrets(headers: Headers) {
  const auth = headers.get('authorization')
  keep(auth?.replace(/^\S+\s+/, ''))
  keep(headers.get('signature'))
  keep(/:([^:]+):/.exec(headers.get('signature') ?? '')?.[1])
  for (const c of (headers.get('cookie') ?? '').split(';')) keep(c.split('=')[1])
}

before(async () => {
  const capture = new Writable({
    write(chunk, _enc, done) {
      log += chunk.toString()
      done()
    },
  })
  globalThis.fetch = async (input, init) => {
    const req = new Request(input, init)
    headerSecrets(req.headers)
    urlSecrets(req.url)
    const body = req.body ? await req.clone().text() : ''
    if (body) {
      for (const [k, v] of new URLSearchParams(body))
        if (['password', 'csrf', 'key'].includes(k)) keep(v)
      try {
        jsonSecrets(JSON.parse(body))
      } catch {}
    }
    const res = await realFetch(req)
    const location = res.headers.get('location')
    if (location) urlSecrets(location)
    for (const c of res.headers.getSetCookie()) keep(c.split(';')[0]!.split('=')[1])
    if (/json/.test(res.headers.get('content-type') ?? '')) {
      try {
        jsonSecrets(await res.clone().json())
      } catch {}
    }
    return res
  }
  server = await startTestServer({}, { logger: pino({ level: 'trace' }, capture) })
})
after(async () => {
  globalThis.fetch = realFetch
  await server?.close()
})

test('request URLs are logged with the nonce and query values redacted', () => {
  assert.equal(
    redactUrl('/interact/abc/s3cret/consent?x=1'),
    '/interact/abc/[redacted]/consent?x=[redacted]',
  )
  assert.equal(
    redactUrl(
      '/dev-sign-in?interaction=i&return_to=http%3A%2F%2Fa%2Finteract%2Fi%2Fn&sig=abc&ts=1',
    ),
    '/dev-sign-in?interaction=[redacted]&return_to=[redacted]&sig=[redacted]&ts=[redacted]',
  )
  assert.equal(
    redactUrl('/incoming-payments?wallet-address=http%3A%2F%2Fa%2Fb&first=3'),
    '/incoming-payments?wallet-address=http%3A%2F%2Fa%2Fb&first=3',
  )
})

test('a database error is logged without the row it quotes', async () => {
  const secret = `whsec_${'s3cret'.repeat(8)}`
  // A row that fails a CHECK: PostgreSQL's detail quotes it whole, secret included.
  const err = await sql`INSERT INTO webhook_endpoints (id, url, event_types, secret)
      VALUES (gen_random_uuid(), 'HTTP://hooks.example/x', '{peer.liquidity_low}', ${secret})`
    .execute(server.database.db)
    .then(
      () => assert.fail('the CHECK refuses the row'),
      (e: Error) => e,
    )
  assert.match(String((err as { detail?: string }).detail), /s3cret/)
  const logged = JSON.stringify(serializeError(err))
  assert.doesNotMatch(logged, /s3cret/)
  assert.match(logged, /webhook_endpoints_url_check/)
})

test('a full flow at trace level: no secret it used or was issued appears in the log', async () => {
  keep(server.adminKey)
  const app = await createClientIdentity(server, { path: '/app', publicName: 'App' })
  const alice = await createWalletAddress(server, { path: '/alice', publicName: 'Alice' })
  const bob = await createWalletAddress(server, { path: '/bob', publicName: 'Bob' })
  await deposit(server, alice.id, 10_000n)
  const ipToken = await grantToken(server, app, [
    { type: 'incoming-payment', actions: ['create', 'read', 'complete'], identifier: bob.url },
  ])
  const quoteToken = await grantToken(server, app, [{ type: 'quote', actions: ['create', 'read'] }])
  // Interactive: redirect with the nonce, development sign-in with signed redirects, consent with
  // the interaction cookie and a CSRF token, finish with interact_ref and hash, continuation.
  const opToken = await outgoingPaymentToken(server, app, alice.url)
  for (const t of [ipToken, quoteToken, opToken]) keep(t)

  const op = { url: server.openPaymentsUrl }
  const ip = await app.client.incomingPayment.create(
    { ...op, accessToken: ipToken },
    { walletAddress: bob.url, incomingAmount: { value: '500', assetCode: 'USD', assetScale: 2 } },
  )
  for (const m of ip.methods) if ('sharedSecret' in m) keep(m.sharedSecret)
  const quote = await app.client.quote.create(
    { ...op, accessToken: quoteToken },
    {
      walletAddress: alice.url,
      receiver: ip.id,
      method: 'ilp',
      debitAmount: { value: '100', assetCode: 'USD', assetScale: 2 },
    },
  )
  const payment = await app.client.outgoingPayment.create(
    { ...op, accessToken: opToken },
    { walletAddress: alice.url, quoteId: quote.id },
  )
  await eventually(async () => {
    const p = await app.client.outgoingPayment.get({ url: payment.id, accessToken: opToken })
    return p.sentAmount.value === '100' ? true : undefined
  })

  // Token management: rotation issues a new value.
  const grant = await app.client.grant.request(
    { url: server.authUrl },
    { access_token: { access: [{ type: 'quote', actions: ['read'] }] } },
  )
  if (!('access_token' in grant) || !grant.access_token) throw new Error('expected a token')
  const rotated = await app.client.token.rotate({
    url: grant.access_token.manage,
    accessToken: grant.access_token.value,
  })
  keep(rotated.access_token.value)

  // ILP: a peer's bearer token and a STREAM packet to the incoming payment.
  const peer = await addPeer(server, { name: 'peer', creditLimit: 1_000_000n })
  keep(peer.token)
  const method = destinationOf(
    await app.client.incomingPayment.get({ url: ip.id, accessToken: ipToken }),
  )
  const prepare = streamPrepare({
    ilpAddress: method.destinationAddress,
    sharedSecret: Buffer.from(method.sharedSecret).toString('base64url'),
    amount: 1n,
  })
  assert.equal((await postIlp(server.ilpUrl, prepare, { token: peer.token })).status, 200)
  assert.equal((await postIlp(server.ilpUrl, prepare, { token: 'wrong-token-123456' })).status, 401)

  // Admin: a webhook endpoint (its secret, and a rotated one), the console's session cookie.
  const endpoint = await server.admin('POST', '/webhook-endpoints', {
    url: 'http://127.0.0.1:9/hooks',
    eventTypes: ['incoming_payment.completed'],
  })
  assert.equal(endpoint.status, 201)
  await server.admin('POST', `/webhook-endpoints/${endpoint.body.id}/rotate-secret`, {})
  const signIn = await fetch(`${server.adminUrl}/console/sign-in`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ key: server.adminKey }).toString(),
  })
  const cookie = signIn.headers.getSetCookie()[0]!.split(';')[0]!
  assert.equal((await fetch(`${server.adminUrl}/console`, { headers: { cookie } })).status, 200)
  await fetch(`${server.adminUrl}/assets`, {
    headers: { authorization: 'Bearer a-wrong-admin-key' },
  })

  // The flow was logged (so the search below is not vacuous), with redacted URLs.
  assert.match(log, /"url":"\/interact\/[^/]+\/\[redacted\]/)
  assert.match(log, /dev-sign-in\?[^"]*sig=\[redacted\]/)
  assert.match(log, /"level":20/, 'debug lines were written')
  assert.ok(secrets.size >= 20, `collected ${secrets.size} secrets`)
  const leaked = [...secrets].filter((s) => log.includes(s))
  assert.deepEqual(leaked, [], 'secrets found in the log')
})
