import assert from 'node:assert/strict'
import { request as httpRequest } from 'node:http'
import { after, test } from 'node:test'
import { deserializeIlpReply, isFulfill, isReject } from 'ilp-packet'
import {
  type ClientIdentity,
  createClientIdentity,
  grantToken,
  signedRequest,
} from './helpers/clients.ts'
import { addPeer, postIlp, streamPrepare } from './helpers/ilp.ts'
import {
  createWalletAddress,
  type JsonResponse,
  request,
  startTestServer,
  type TestServer,
} from './helpers/server.ts'

/**
 * The rate limits on real listeners, each with a small limit so that it is reached quickly. All
 * test traffic comes from loopback; a second client address (127.0.0.2) or X-Forwarded-For behind
 * a trusted proxy shows that limits are kept per address.
 */
const servers: TestServer[] = []
after(() => Promise.all(servers.map((s) => s.close())))

async function server(env: Record<string, string>): Promise<TestServer> {
  const s = await startTestServer(env)
  servers.push(s)
  return s
}

/** A request from a chosen local address (the client IP the server sees). */
function from(
  localAddress: string,
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<JsonResponse & { text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { method: init.method ?? 'GET', headers: init.headers, localAddress },
      (res) => {
        let text = ''
        res.on('data', (c) => {
          text += c
        })
        res.on('end', () => {
          const headers = new Headers()
          for (const [k, v] of Object.entries(res.headers))
            if (typeof v === 'string') headers.set(k, v)
          let body: unknown
          try {
            body = JSON.parse(text)
          } catch {}
          resolve({ status: res.statusCode!, headers, body, text })
        })
      },
    )
    req.on('error', reject)
    req.end(init.body)
  })
}

/** A 429 in the listener's envelope; Retry-After is at most `retryAfter` (less if time passed). */
const assert429 = (res: JsonResponse, code: string, retryAfter: number) => {
  assert.equal(res.status, 429)
  const seconds = Number(res.headers.get('retry-after'))
  assert.ok(seconds <= retryAfter && seconds > retryAfter - 10, `Retry-After: ${seconds}`)
  assert.equal(res.body.error.code, code)
  assert.match(res.body.error.description, /^too many requests: retry after \d+ s$/)
}

test('per IP on the Open Payments listener: 429 with Retry-After in the Open Payments envelope', async () => {
  const s = await server({ RATE_LIMIT_IP_PER_MINUTE: '5' })
  const wa = await createWalletAddress(s, { path: '/alice' })
  for (let i = 0; i < 5; i++) assert.equal((await request(wa.url)).status, 200)
  const limited = await request(wa.url)
  // One request back every 12 s (5 a minute).
  assert429(limited, '429', 12)
  assert.match(limited.headers.get('access-control-expose-headers')!, /retry-after/)
  // Another address has its own allowance.
  assert.equal((await from('127.0.0.2', wa.url)).status, 200)
})

test('per client on the resource server: one client over its limit, another unaffected', async () => {
  const s = await server({ RATE_LIMIT_CLIENT_PER_MINUTE: '3' })
  const bob = await createWalletAddress(s, { path: '/bob' })
  const apps: ClientIdentity[] = []
  const tokens: string[] = []
  for (const path of ['/app-one', '/app-two']) {
    const app = await createClientIdentity(s, { path })
    apps.push(app)
    tokens.push(
      await grantToken(s, app, [
        { type: 'incoming-payment', actions: ['create', 'read'], identifier: bob.url },
      ]),
    )
  }
  const create = (i: number) =>
    signedRequest(`${s.openPaymentsUrl}/incoming-payments`, {
      body: { walletAddress: bob.url },
      token: tokens[i],
      identity: apps[i]!,
    })
  for (let i = 0; i < 3; i++) assert.equal((await create(0)).status, 201)
  assert429(await create(0), '429', 20)
  // The other client, from the same address, through the official client: under its limit.
  for (let i = 0; i < 3; i++) {
    const ip = await apps[1]!.client.incomingPayment.create(
      { url: s.openPaymentsUrl, accessToken: tokens[1]! },
      { walletAddress: bob.url },
    )
    assert.equal(ip.walletAddress, bob.url)
  }
  // Nothing was created for the refused request.
  const created = await s.database.db
    .selectFrom('incoming_payments')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .executeTakeFirstOrThrow()
  assert.equal(Number(created.n), 6)
})

test('per IP and per client on the authorization server, in the GNAP envelope', async () => {
  const s = await server({ RATE_LIMIT_IP_PER_MINUTE: '6', RATE_LIMIT_CLIENT_PER_MINUTE: '2' })
  const one = await createClientIdentity(s, { path: '/one' })
  const two = await createClientIdentity(s, { path: '/two' })
  const grant = (app: ClientIdentity) =>
    signedRequest(`${s.authUrl}/`, {
      body: {
        client: app.walletAddressUrl,
        access_token: { access: [{ type: 'quote', actions: ['create'] }] },
      },
      identity: app,
    })
  assert.equal((await grant(one)).status, 200)
  assert.equal((await grant(one)).status, 200)
  const perClient = await grant(one)
  assert429(perClient, 'too_fast', 30)
  assert.equal((await grant(two)).status, 200)
  assert.equal((await grant(two)).status, 200)
  // Six requests from this address so far: the seventh is refused before anything is looked at.
  const perIp = await request(`${s.authUrl}/`, { method: 'POST', body: 'not even JSON' })
  assert.equal(perIp.status, 400)
  assert429(await request(`${s.authUrl}/`, { method: 'POST', body: '{}' }), 'too_fast', 10)
  assert.equal((await from('127.0.0.2', `${s.authUrl}/continue/x`, { method: 'POST' })).status, 400)
})

test('the interaction and sign-in pages have a lower limit per IP; browsers get a page', async () => {
  const s = await server({ RATE_LIMIT_PAGES_PER_MINUTE: '2' })
  const page = `${s.authUrl}/interact/00000000-0000-4000-8000-000000000000/nonce`
  assert.equal((await from('127.0.0.1', page)).status, 404)
  assert.equal((await from('127.0.0.1', `${s.authUrl}/dev-sign-in`)).status, 400)
  const html = await from('127.0.0.1', page, { headers: { accept: 'text/html' } })
  assert.equal(html.status, 429)
  assert.equal(html.headers.get('retry-after'), '30')
  assert.match(html.headers.get('content-type')!, /^text\/html/)
  assert.match(html.text, /Too many requests/)
  assert429(await request(page), 'too_fast', 30)
  // The GNAP API is not a page: it keeps the general limit.
  assert.equal((await request(`${s.authUrl}/`, { method: 'POST', body: '{}' })).status, 400)
})

test('wrong admin API keys: slowed down after half the allowance, then every request refused', async () => {
  const s = await server({ RATE_LIMIT_CREDENTIAL_FAILURES: '4' })
  const wrong = () =>
    from('127.0.0.1', `${s.adminUrl}/assets`, { headers: { authorization: 'Bearer wrong' } })
  const timed = async () => {
    const t = performance.now()
    const res = await wrong()
    return { status: res.status, ms: performance.now() - t }
  }
  // A request without a key is no guess: not counted.
  for (let i = 0; i < 5; i++) {
    assert.equal((await from('127.0.0.1', `${s.adminUrl}/assets`)).status, 401)
  }
  const first = [await timed(), await timed()]
  const slowed = [await timed(), await timed()]
  for (const r of [...first, ...slowed]) assert.equal(r.status, 401)
  for (const r of first) assert.ok(r.ms < 900, `${r.ms} ms`)
  for (const r of slowed) assert.ok(r.ms >= 950, `${r.ms} ms`)
  // Refused outright now, even with the right key: a guesser learns nothing more.
  const right = { authorization: `Bearer ${s.adminKey}` }
  const refused = await from('127.0.0.1', `${s.adminUrl}/assets`, { headers: right })
  // One failure is forgiven every 15 min / 4 = 225 s.
  assert429(refused, 'too_many_requests', 225)
  // Health stays open, and another address is unaffected.
  assert.equal((await request(`${s.adminUrl}/healthz`)).status, 200)
  assert.equal((await from('127.0.0.2', `${s.adminUrl}/assets`, { headers: right })).status, 200)
})

test('ILP: bad peer tokens are refused like admin keys; a peer over its packet rate gets T05', async () => {
  const s = await server({
    RATE_LIMIT_CREDENTIAL_FAILURES: '2',
    RATE_LIMIT_ILP_PACKETS_PER_SECOND: '3',
  })
  const peer = await addPeer(s, { name: 'peer-a', creditLimit: 1000n })
  const bob = await createWalletAddress(s, { path: '/bob' })
  const app = await createClientIdentity(s, { path: '/app' })
  const token = await grantToken(s, app, [
    { type: 'incoming-payment', actions: ['create'], identifier: bob.url },
  ])
  const ip = await app.client.incomingPayment.create(
    { url: s.openPaymentsUrl, accessToken: token },
    { walletAddress: bob.url },
  )
  const target = { ...ip.methods[0]!, amount: 1n }
  // Six at once against 3 a second: the first three are handled, the rest get T05.
  const replies = await Promise.all(
    Array.from({ length: 6 }, async () => {
      const res = await postIlp(s.ilpUrl, streamPrepare(target), { token: peer.token })
      assert.equal(res.status, 200)
      return deserializeIlpReply(res.body)
    }),
  )
  const limited = replies.filter((r) => isReject(r) && r.code === 'T05').length
  const fulfilled = replies.filter((r) => isFulfill(r)).length
  assert.equal(limited + fulfilled, 6)
  assert.ok(fulfilled >= 3 && limited >= 2, `${fulfilled} fulfilled, ${limited} limited`)
  // Two bad tokens, then the address is refused.
  for (let i = 0; i < 2; i++) {
    assert.equal((await postIlp(s.ilpUrl, Buffer.from('x'), { token: 'nope' })).status, 401)
  }
  const refused = await postIlp(s.ilpUrl, streamPrepare(target), { token: peer.token })
  assert.equal(refused.status, 429)
})

test('RATE_LIMIT_ENABLED=false switches every limit off', async () => {
  const s = await server({
    RATE_LIMIT_ENABLED: 'false',
    RATE_LIMIT_IP_PER_MINUTE: '1',
    RATE_LIMIT_CREDENTIAL_FAILURES: '1',
  })
  for (let i = 0; i < 20; i++) {
    assert.equal((await request(`${s.openPaymentsUrl}/nobody`)).status, 404)
    const res = await request(`${s.adminUrl}/assets`, { headers: { authorization: 'Bearer no' } })
    assert.equal(res.status, 401)
  }
})

test('behind a trusted proxy, each forwarded client address has its own allowance', async () => {
  const s = await server({ RATE_LIMIT_IP_PER_MINUTE: '1', TRUST_PROXY: '127.0.0.1' })
  const get = (forwardedFor: string, localAddress = '127.0.0.1') =>
    from(localAddress, `${s.openPaymentsUrl}/nobody`, {
      headers: { 'x-forwarded-for': forwardedFor },
    })
  assert.equal((await get('203.0.113.7')).status, 404)
  assert.equal((await get('203.0.113.7')).status, 429)
  assert.equal((await get('198.51.100.8')).status, 404)
  // IPv6 clients are counted by /64.
  assert.equal((await get('2001:db8:1:2::1')).status, 404)
  assert.equal((await get('2001:db8:1:2::99')).status, 429)
  // A peer that is not the trusted proxy cannot choose its address by header.
  assert.equal((await get('192.0.2.1', '127.0.0.2')).status, 404)
  assert.equal((await get('192.0.2.2', '127.0.0.2')).status, 429)
})
