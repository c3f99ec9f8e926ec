import assert from 'node:assert/strict'
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync, readFileSync } from 'node:fs'
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http'
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https'
import { type AddressInfo, createServer as createTcpServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import type { OpenPaymentsClientError } from '@interledger/open-payments'
import {
  type ClientIdentity,
  createClientIdentity,
  grantToken,
  signedRequest,
} from './helpers/clients.ts'
import { DATABASE_URL, dropSchema } from './helpers/db.ts'
import { killAll, type ServerProcess, spawnServer, waitReady } from './helpers/process.ts'
import {
  createWalletAddress,
  eventually,
  freePort,
  request,
  startTestServer,
  type TestServer,
} from './helpers/server.ts'

/**
 * Server-side request forgery: URLs that clients name (their wallet address, a quote's receiver)
 * must not make the server reach loopback, private or link-local addresses in production, whatever
 * form the address takes or however the server is sent there. The server runs as a real process
 * with NODE_ENV=production, compiled as production runs it. Tripwires listen where a forged request would land and count every
 * TCP connection: they must see none.
 */
const fixtures = join(import.meta.dirname, 'fixtures', 'tls')
const schema = `ssrf_${randomBytes(6).toString('hex')}`
const tripwires: { v4: Tripwire; v6: Tripwire } = {} as never
let allowed: HttpsServer
/** An https server on 127.0.0.2, the one address the production server may reach here. */
let allowedOrigin: string
const allowedHits: string[] = []
let prod: ServerProcess
let prodServer: TestServer
let app: ClientIdentity
let quoteToken: string
const signer = generateKeyPairSync('ed25519')
const identity = { privateKey: signer.privateKey, keyId: 'remote-key' }

interface Tripwire {
  port: number
  hits: number
  server: Server
}

async function tripwire(host: string): Promise<Tripwire> {
  const t = { port: 0, hits: 0, server: undefined as unknown as Server }
  t.server = createTcpServer((socket) => {
    t.hits++
    socket.destroy()
  })
  await new Promise<void>((resolve) => t.server.listen(0, host, resolve))
  t.port = (t.server.address() as AddressInfo).port
  return t
}

/** Where a forged request would go: every form of a refused address, and a name for loopback. */
const forbidden = () => [
  `https://127.0.0.1:${tripwires.v4.port}`,
  `https://[::1]:${tripwires.v6.port}`,
  `https://[::ffff:127.0.0.1]:${tripwires.v4.port}`,
  `https://localhost:${tripwires.v4.port}`,
  `https://10.0.0.1`,
  `https://169.254.169.254`,
  `https://100.64.0.1`,
  `https://[fd00::1]`,
]

before(async () => {
  tripwires.v4 = await tripwire('127.0.0.1')
  tripwires.v6 = await tripwire('::1')
  const x = signer.publicKey.export({ format: 'jwk' }).x
  allowed = createHttpsServer(
    {
      key: readFileSync(join(fixtures, 'server.key')),
      cert: readFileSync(join(fixtures, 'server.crt')),
    },
    (req, res) => {
      allowedHits.push(req.url!)
      const json = (body: unknown) =>
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body))
      // /redirect/<n>/… sends the server on to forbidden()[n], path kept.
      const redirect = /^\/redirect\/(\d+)(\/.*)$/.exec(req.url!)
      if (redirect) {
        const target = forbidden()[Number(redirect[1])]!
        return res.writeHead(302, { location: `${target}${redirect[2]}` }).end()
      }
      if (req.url === '/good/jwks.json') {
        return json({ keys: [{ kid: 'remote-key', kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', x }] })
      }
      if (req.url === '/good') {
        return json({
          id: `${allowedOrigin}/good`,
          assetCode: 'USD',
          assetScale: 2,
          authServer: `${allowedOrigin}/auth`,
          resourceServer: allowedOrigin,
        })
      }
      res.writeHead(404).end()
    },
  )
  await new Promise<void>((resolve) => allowed.listen(0, '127.0.0.2', resolve))
  allowedOrigin = `https://127.0.0.2:${(allowed.address() as AddressInfo).port}`

  const ports = {
    OPEN_PAYMENTS_PORT: String(await freePort()),
    AUTH_PORT: String(await freePort()),
    ADMIN_PORT: String(await freePort()),
    ILP_PORT: String(await freePort()),
  }
  const adminKey = randomBytes(32).toString('base64url')
  prod = spawnServer(
    {
      NODE_ENV: 'production',
      LOG_LEVEL: 'info',
      DATABASE_URL,
      DATABASE_SCHEMA: schema,
      DATA_DIR: mkdtempSync(join(tmpdir(), 'op-ssrf-')),
      ...ports,
      OPEN_PAYMENTS_URL: `http://127.0.0.1:${ports.OPEN_PAYMENTS_PORT}`,
      AUTH_SERVER_URL: `http://127.0.0.1:${ports.AUTH_PORT}`,
      ADMIN_API_KEY: adminKey,
      AUTH_SECRET: randomBytes(32).toString('base64url'),
      STREAM_SECRET: randomBytes(32).toString('base64'),
      SERVER_PRIVATE_KEY: randomBytes(32).toString('base64'),
      IDP_URL: 'https://idp.example/sign-in',
      IDP_SECRET: randomBytes(32).toString('base64url'),
      // The one exception to the production policy: the test's https server, trusted by its CA.
      OUTBOUND_ALLOWED_NETWORKS: '127.0.0.2/32',
      NODE_EXTRA_CA_CERTS: join(fixtures, 'ca.crt'),
    },
    // Compiled, as production runs (`npm test` builds it first).
    { build: true },
  )
  await waitReady(prod)
  const adminUrl = `http://127.0.0.1:${ports.ADMIN_PORT}`
  prodServer = {
    openPaymentsUrl: `http://127.0.0.1:${ports.OPEN_PAYMENTS_PORT}`,
    authUrl: `http://127.0.0.1:${ports.AUTH_PORT}`,
    admin: (method: string, path: string, body?: unknown) =>
      request(`${adminUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${adminKey}`,
          ...(body !== undefined && { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      }),
  } as TestServer
  // A client of this ASE: its own wallet address is read from the database, never fetched.
  app = await createClientIdentity(prodServer, { path: '/app' })
  quoteToken = await grantToken(prodServer, app, [{ type: 'quote', actions: ['create'] }])
})

after(async () => {
  killAll()
  tripwires.v4?.server.close()
  tripwires.v6?.server.close()
  allowed?.closeAllConnections()
  allowed?.close()
  await dropSchema(schema)
})

const grantRequest = (client: string) =>
  signedRequest(`${prodServer.authUrl}/`, {
    body: { client, access_token: { access: [{ type: 'quote', actions: ['create'] }] } },
    identity,
  })

describe('in production (NODE_ENV=production)', () => {
  test('a client on an allowed https address is fetched: the guard is not a blanket refusal', async () => {
    const res = await grantRequest(`${allowedOrigin}/good`)
    assert.equal(res.status, 200, JSON.stringify(res.body))
    assert.ok(res.body.access_token.value)
    assert.ok(allowedHits.includes('/good/jwks.json'))
  })

  test('a client wallet address on a refused address: 400 invalid_client, no connection', async () => {
    for (const origin of forbidden()) {
      const started = Date.now()
      const res = await grantRequest(`${origin}/alice`)
      assert.equal(res.status, 400, origin)
      assert.deepEqual(res.body.error, {
        code: 'invalid_client',
        description: 'could not determine client: could not retrieve client keys',
      })
      // Refused at once, not after a connection attempt timed out.
      assert.ok(Date.now() - started < 2000, origin)
    }
    assert.deepEqual([tripwires.v4.hits, tripwires.v6.hits], [0, 0])
    // The log says why, for each: the policy refused them, no connection failed. (The last
    // lines may still be in the pipe.)
    const reasons = [
      '127.0.0.1 is loopback',
      '::1 is loopback',
      '::ffff:7f00:1 is IPv4-mapped loopback',
      'localhost resolves to 127.0.0.1 (loopback)',
      '10.0.0.1 is private',
      '169.254.169.254 is link-local',
      '100.64.0.1 is shared (CGNAT)',
      'fd00::1 is unique-local',
    ]
    const missing = () => reasons.filter((r) => !prod.output().includes(r))
    await eventually(async () => (missing().length === 0 ? true : undefined)).catch(() => {})
    assert.deepEqual(missing(), [])
  })

  test('a redirect to a refused address is not followed', async () => {
    const before = allowedHits.length
    for (const [i, origin] of forbidden().entries()) {
      const res = await grantRequest(`${allowedOrigin}/redirect/${i}/alice`)
      assert.equal(res.status, 400, origin)
      assert.equal(res.body.error.code, 'invalid_client')
    }
    // The allowed server was asked (and answered 302) each time; nothing reached a tripwire.
    assert.equal(allowedHits.length - before, forbidden().length)
    assert.deepEqual([tripwires.v4.hits, tripwires.v6.hits], [0, 0])
  })

  test('only https: a client on http is refused even at an allowed address', async () => {
    const before = allowedHits.length
    const res = await grantRequest(`${allowedOrigin.replace('https:', 'http:')}/good`)
    assert.equal(res.status, 400)
    assert.equal(res.body.error.code, 'invalid_client')
    assert.equal(allowedHits.length, before)
    await eventually(async () =>
      prod.output().includes('http: URLs are not fetched (https only)') ? true : undefined,
    )
  })

  test('a quote whose receiver is on a refused address, or redirects there: 400 invalid receiver', async () => {
    const alice = await createWalletAddress(prodServer, { path: '/alice' })
    const receivers = [
      ...forbidden().map((origin) => `${origin}/incoming-payments/${randomUUID()}`),
      ...forbidden().map(
        (_, i) => `${allowedOrigin}/redirect/${i}/incoming-payments/${randomUUID()}`,
      ),
    ]
    for (const receiver of receivers) {
      await assert.rejects(
        app.client.quote.create(
          { url: prodServer.openPaymentsUrl, accessToken: quoteToken },
          {
            walletAddress: alice.url,
            receiver,
            method: 'ilp',
            debitAmount: { value: '100', assetCode: 'USD', assetScale: 2 },
          },
        ),
        (err: OpenPaymentsClientError) => {
          assert.equal(err.status, 400, receiver)
          assert.equal(err.description, 'invalid receiver')
          return true
        },
      )
    }
    assert.deepEqual([tripwires.v4.hits, tripwires.v6.hits], [0, 0])
    assert.equal(
      allowedHits.filter((h) => h.startsWith('/redirect/') && h.includes('/incoming-payments/'))
        .length,
      forbidden().length,
    )
  })
})

describe('the per-client cap on new URLs (OUTBOUND_NEW_URLS_PER_MINUTE)', () => {
  let s: TestServer
  let remote: HttpServer
  let origin: string
  const hits: string[] = []
  before(async () => {
    s = await startTestServer({ OUTBOUND_NEW_URLS_PER_MINUTE: '3' })
    remote = createHttpServer((req, res) => {
      hits.push(req.url!)
      res.writeHead(404).end()
    })
    await new Promise<void>((resolve) => remote.listen(0, '127.0.0.1', resolve))
    origin = `http://127.0.0.1:${(remote.address() as AddressInfo).port}`
  })
  after(async () => {
    remote?.close()
    await s?.close()
  })

  test('grant requests from one address make the server fetch at most 3 new client URLs', async () => {
    for (let i = 0; i < 5; i++) {
      const res = await signedRequest(`${s.authUrl}/`, {
        body: {
          client: `${origin}/client-${i}`,
          access_token: { access: [{ type: 'quote', actions: ['create'] }] },
        },
        identity,
      })
      assert.equal(res.status, 400)
      assert.equal(res.body.error.code, 'invalid_client')
    }
    assert.deepEqual(hits, ['/client-0/jwks.json', '/client-1/jwks.json', '/client-2/jwks.json'])
  })

  test('quotes of one client make the server read at most 3 new receivers; another client is unaffected', async () => {
    hits.length = 0
    const bob = await createWalletAddress(s, { path: '/bob' })
    const quoter = async (path: string) => {
      const c = await createClientIdentity(s, { path })
      return { c, token: await grantToken(s, c, [{ type: 'quote', actions: ['create'] }]) }
    }
    const [one, two] = [await quoter('/one'), await quoter('/two')]
    const quote = (q: typeof one, n: number) =>
      signedRequest(`${s.openPaymentsUrl}/quotes`, {
        body: {
          walletAddress: bob.url,
          receiver: `${origin}/incoming-payments/${n}`,
          method: 'ilp',
        },
        token: q.token,
        identity: q.c,
      })
    for (let n = 0; n < 5; n++) {
      const res = await quote(one, n)
      assert.equal(res.status, 400)
      assert.equal(res.body.error.description, 'invalid receiver')
    }
    assert.deepEqual(
      hits,
      [0, 1, 2].map((n) => `/incoming-payments/${n}`),
    )
    assert.equal((await quote(two, 9)).status, 400)
    assert.equal(hits.at(-1), '/incoming-payments/9')
  })
})
