import assert from 'node:assert/strict'
import { generateKeyPairSync, randomUUID } from 'node:crypto'
import { createServer, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { createTestDatabase, type TestDatabase } from '../../test/helpers/db.ts'
import { createAsset } from '../assets/service.ts'
import { type Config, loadConfig } from '../config.ts'
import { createFetchBudget } from '../outbound/budget.ts'
import { addKey, type Jwk, revokeKey, toJwk } from '../wallet-addresses/keys.ts'
import {
  createLocalWalletAddresses,
  LOCAL_CACHE_MAX_AGE_MS,
} from '../wallet-addresses/local-cache.ts'
import { createWalletAddress, updateWalletAddress } from '../wallet-addresses/service.ts'
import { type ClientDirectory, createClientDirectory } from './clients.ts'

const newJwk = (kid: string): Jwk => {
  const { publicKey } = generateKeyPairSync('ed25519')
  return toJwk(kid, publicKey.export({ format: 'jwk' }).x!)
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const config: Config = loadConfig({
  NODE_ENV: 'test',
  DATABASE_URL: 'postgres://unused',
  OPEN_PAYMENTS_URL: 'https://wallet.example',
  AUTH_SERVER_URL: 'https://auth.wallet.example',
  ADMIN_API_KEY: 'k'.repeat(32),
  // Given so that loading the configuration writes no generated secrets to disk.
  AUTH_SECRET: 's'.repeat(32),
  DEV_SIGN_IN_PASSWORD: 'p'.repeat(32),
})

describe('local wallet addresses', () => {
  let database: TestDatabase
  before(async () => {
    database = await createTestDatabase({ poolSize: 2 })
    assert.ok(typeof (await createAsset(database.db, { code: 'USD', scale: 2 })) !== 'string')
  })
  after(() => database.drop())

  const fetches: string[] = []
  const directory = (): ClientDirectory =>
    createClientDirectory({
      config,
      db: database.db,
      outbound: async (url) => {
        fetches.push(String(url))
        throw new Error('local wallet addresses must not be fetched')
      },
    })

  const walletAddress = async (path: string, publicName?: string) => {
    const wa = await createWalletAddress(database.db, {
      path,
      assetCode: 'USD',
      assetScale: 2,
      publicName,
    })
    assert.ok(typeof wa !== 'string', wa as string)
    return wa
  }
  const key = async (walletAddressId: string, kid: string) => {
    const added = await addKey(database.db, walletAddressId, newJwk(kid))
    assert.ok(typeof added !== 'string', added as string)
    return added
  }

  test('keys and the document come straight from the database', async () => {
    const wa = await walletAddress('/alice', 'Alice')
    const k1 = await key(wa.id, 'k1')
    const clients = directory()
    const url = 'https://wallet.example/alice'
    assert.deepEqual(await clients.key(url, 'k1'), k1.jwk)
    assert.equal(await clients.key(url, 'k2'), 'unknown_key')
    // Only what exists is cached: a new key is usable at once.
    const k2 = await key(wa.id, 'k2')
    assert.deepEqual(await clients.key(url, 'k2'), k2.jwk)
    assert.deepEqual(await clients.walletAddress(url), {
      id: url,
      publicName: 'Alice',
      assetCode: 'USD',
      assetScale: 2,
      authServer: 'https://auth.wallet.example',
      resourceServer: 'https://wallet.example',
    })
    assert.deepEqual(fetches, [])
  })

  test('a key revoked elsewhere is used for at most the cache bound; at once after invalidate', async () => {
    const wa = await walletAddress('/bob')
    const k = await key(wa.id, 'k1')
    let now = 1_000_000
    const local = createLocalWalletAddresses(database.db, { now: () => now })
    const clients = createClientDirectory({ config, db: database.db, local })
    const url = 'https://wallet.example/bob'
    assert.deepEqual(await clients.key(url, 'k1'), k.jwk)
    // Revoked by another process: this one does not know until its copy is too old.
    await revokeKey(database.db, wa.id, k.id)
    now += LOCAL_CACHE_MAX_AGE_MS - 1
    assert.deepEqual(await clients.key(url, 'k1'), k.jwk)
    now += 1
    assert.equal(await clients.key(url, 'k1'), 'unknown_key')
    // Revoked by this process (the admin route invalidates): refused on the next request.
    const k2 = await key(wa.id, 'k2')
    assert.deepEqual(await clients.key(url, 'k2'), k2.jwk)
    await revokeKey(database.db, wa.id, k2.id)
    local.invalidate()
    assert.equal(await clients.key(url, 'k2'), 'unknown_key')
  })

  test('a wallet address deactivated elsewhere is served for at most the cache bound', async () => {
    const wa = await walletAddress('/erin')
    await key(wa.id, 'k1')
    let now = 1_000_000
    const local = createLocalWalletAddresses(database.db, { now: () => now })
    const clients = createClientDirectory({ config, db: database.db, local })
    const url = 'https://wallet.example/erin'
    assert.equal((await clients.walletAddress(url))?.id, url)
    assert.equal((await local.byPath('/erin'))?.status, 'active')
    assert.equal((await local.byId(wa.id))?.status, 'active')
    assert.notEqual(await clients.key(url, 'k1'), 'unknown_key')
    await updateWalletAddress(database.db, wa.id, { status: 'inactive' })
    now += LOCAL_CACHE_MAX_AGE_MS - 1
    assert.equal((await clients.walletAddress(url))?.id, url)
    assert.notEqual(await clients.key(url, 'k1'), 'unknown_key')
    assert.equal((await local.byId(wa.id))?.status, 'active')
    now += 1
    assert.equal(await clients.walletAddress(url), undefined)
    assert.equal(await clients.key(url, 'k1'), 'unknown_key')
    assert.equal((await local.byPath('/erin'))?.status, 'inactive')
    assert.equal((await local.byId(wa.id))?.status, 'inactive')
  })

  test('what does not exist is not cached: a wallet address or key made elsewhere is found at once', async () => {
    let now = 1_000_000
    const local = createLocalWalletAddresses(database.db, { now: () => now })
    assert.equal(await local.byPath('/frank'), undefined)
    assert.equal(await local.activeKey('/frank', 'k1'), undefined)
    const wa = await walletAddress('/frank')
    const k = await key(wa.id, 'k1')
    assert.equal((await local.byPath('/frank'))?.id, wa.id)
    assert.deepEqual(await local.activeKey('/frank', 'k1'), k.jwk)
    now += 1
    const k2 = await key(wa.id, 'k2')
    assert.deepEqual(await local.activeKey('/frank', 'k2'), k2.jwk)
  })

  test('an inactive or unknown wallet address has no keys and no document', async () => {
    const wa = await walletAddress('/carol')
    await key(wa.id, 'k1')
    await updateWalletAddress(database.db, wa.id, { status: 'inactive' })
    const clients = directory()
    assert.equal(await clients.key('https://wallet.example/carol', 'k1'), 'unknown_key')
    assert.equal(await clients.walletAddress('https://wallet.example/carol'), undefined)
    assert.equal(await clients.key('https://wallet.example/nobody', 'k1'), 'unknown_key')
    assert.equal(await clients.walletAddress('https://wallet.example/nobody'), undefined)
  })

  test('the path-less wallet address is /.well-known/pay', async () => {
    const wa = await walletAddress('')
    const k = await key(wa.id, 'root')
    const clients = directory()
    const url = 'https://wallet.example/.well-known/pay'
    assert.deepEqual(await clients.key(url, 'root'), k.jwk)
    const doc = await clients.walletAddress(url)
    assert.equal(doc?.id, url)
    assert.equal(doc && 'publicName' in doc, false)
  })

  test('only the canonical URL names a local wallet address, and it is never fetched', async () => {
    const wa = await walletAddress('/dave')
    await key(wa.id, 'k1')
    const clients = directory()
    for (const url of [
      'https://wallet.example/dave/',
      'https://wallet.example/dave?x=1',
      'https://wallet.example/x/../dave',
      'https://wallet.example:443/dave',
      'https://wallet.example',
    ]) {
      assert.equal(await clients.key(url, 'k1'), 'unknown_key', url)
      assert.equal(await clients.walletAddress(url), undefined, url)
    }
    assert.deepEqual(fetches, [])
  })
})

describe('remote wallet addresses', () => {
  let server: Server
  let origin: string
  const routes = new Map<string, (res: ServerResponse) => void>()
  const hits = new Map<string, number>()

  before(async () => {
    server = createServer((req, res) => {
      hits.set(req.url!, (hits.get(req.url!) ?? 0) + 1)
      const route = routes.get(req.url!)
      if (req.headers.accept !== 'application/json') res.writeHead(406).end()
      else if (route) route(res)
      else res.writeHead(404).end()
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  after(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })

  const json = (body: unknown) => (res: ServerResponse) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body))

  /** A wallet address of its own for each test, so that hit counts do not mix. */
  const remote = (keys: Jwk[] = []) => {
    const path = `/${randomUUID()}`
    const url = `${origin}${path}`
    const document = {
      id: url,
      publicName: 'Remote',
      assetCode: 'EUR',
      assetScale: 2,
      authServer: 'https://auth.remote.example',
      resourceServer: 'https://remote.example',
      cardService: 'https://card.remote.example',
    }
    const state = { keys, document: document as unknown }
    routes.set(`${path}/jwks.json`, (res) => json({ keys: state.keys })(res))
    routes.set(path, (res) => json(state.document)(res))
    return {
      url,
      path,
      state,
      jwksHits: () => hits.get(`${path}/jwks.json`) ?? 0,
      documentHits: () => hits.get(path) ?? 0,
    }
  }

  const directory = (
    opts: { cacheTtlMs?: number; minRefreshIntervalMs?: number; timeoutMs?: number } = {},
  ) => createClientDirectory({ config, db: undefined as never, ...opts })

  test('keys and the document are fetched once and cached', async () => {
    const k1 = newJwk('k1')
    const r = remote([k1])
    const clients = directory()
    assert.deepEqual(await clients.key(r.url, 'k1'), k1)
    assert.deepEqual(await clients.key(r.url, 'k1'), k1)
    assert.equal(r.jwksHits(), 1)
    const expected = {
      id: r.url,
      publicName: 'Remote',
      assetCode: 'EUR',
      assetScale: 2,
      authServer: 'https://auth.remote.example',
      resourceServer: 'https://remote.example',
    }
    assert.deepEqual(await clients.walletAddress(r.url), expected)
    assert.deepEqual(await clients.walletAddress(r.url), expected)
    assert.equal(r.documentHits(), 1)
  })

  test('concurrent lookups share one request', async () => {
    const r = remote([newJwk('k1')])
    const clients = directory()
    const results = await Promise.all([1, 2, 3].map(() => clients.key(r.url, 'k1')))
    assert.ok(results.every((k) => typeof k === 'object'))
    assert.equal(r.jwksHits(), 1)
  })

  test('the cache expires after cacheTtlMs', async () => {
    const r = remote([newJwk('k1')])
    const clients = directory({ cacheTtlMs: 50 })
    await clients.key(r.url, 'k1')
    await clients.walletAddress(r.url)
    await sleep(70)
    await clients.key(r.url, 'k1')
    await clients.walletAddress(r.url)
    assert.equal(r.jwksHits(), 2)
    assert.equal(r.documentHits(), 2)
  })

  test('an unknown kid refetches the key set, at most once per minRefreshIntervalMs', async () => {
    const r = remote([newJwk('k1')])
    const clients = directory({ minRefreshIntervalMs: 100 })
    assert.equal(await clients.key(r.url, 'k2'), 'unknown_key')
    // The set was fetched a moment ago: no second request.
    assert.equal(r.jwksHits(), 1)
    const k2 = newJwk('k2')
    r.state.keys = [...r.state.keys, k2]
    assert.equal(await clients.key(r.url, 'k2'), 'unknown_key')
    assert.equal(r.jwksHits(), 1)
    await sleep(120)
    assert.deepEqual(await clients.key(r.url, 'k2'), k2)
    assert.equal(r.jwksHits(), 2)
    for (let i = 0; i < 5; i++) assert.equal(await clients.key(r.url, `k${i + 3}`), 'unknown_key')
    assert.equal(r.jwksHits(), 2)
    await sleep(120)
    assert.equal(await clients.key(r.url, 'k9'), 'unknown_key')
    assert.equal(r.jwksHits(), 3)
  })

  test('a server that does not answer in time makes the keys unavailable', async () => {
    const r = remote()
    routes.set(`${r.path}/jwks.json`, () => {})
    routes.set(r.path, () => {})
    const clients = directory({ timeoutMs: 100 })
    const started = Date.now()
    assert.equal(await clients.key(r.url, 'k1'), 'keys_unavailable')
    assert.equal(await clients.walletAddress(r.url), undefined)
    assert.ok(Date.now() - started < 2000)
  })

  test('invalid JSON, errors and bad shapes make the keys unavailable', async () => {
    const clients = directory()
    const bodies: ((res: ServerResponse) => void)[] = [
      (res) => res.writeHead(200).end('{"keys": ['),
      (res) => res.writeHead(500).end('{"keys": []}'),
      (res) => res.writeHead(200).end(''),
      json([]),
      json({ keys: 'none' }),
      json({ keys: [{ ...newJwk('k1'), kty: 'RSA' }] }),
      json({ keys: [{ ...newJwk('k1'), crv: 'X25519' }] }),
      json({ keys: [{ ...newJwk('k1'), x: 'short' }] }),
      json({ keys: [{ ...newJwk('k1'), alg: undefined }] }),
      json({ keys: [newJwk('k1'), { kid: 'k2' }] }),
      (res) =>
        res.writeHead(200).end(JSON.stringify({ keys: [newJwk('k1')], pad: 'x'.repeat(70_000) })),
    ]
    for (const [i, body] of bodies.entries()) {
      const r = remote()
      routes.set(`${r.path}/jwks.json`, body)
      assert.equal(await clients.key(r.url, 'k1'), 'keys_unavailable', `body ${i}`)
    }
  })

  test('a wallet address document must have the required fields and its own id', async () => {
    const clients = directory()
    const good = remote()
    const base = good.state.document as Record<string, unknown>
    for (const change of [
      { id: 'https://elsewhere.example/x' },
      { assetCode: undefined },
      { assetScale: 2.5 },
      { assetScale: 256 },
      { authServer: 'not a url' },
      { resourceServer: undefined },
      { publicName: 7 },
    ]) {
      const r = remote()
      r.state.document = { ...base, id: r.url, ...change }
      assert.equal(await clients.walletAddress(r.url), undefined, JSON.stringify(change))
    }
    const r = remote()
    r.state.document = '[]'
    assert.equal(await clients.walletAddress(r.url), undefined)
  })

  test('a failure is retried no sooner than minRefreshIntervalMs', async () => {
    const k1 = newJwk('k1')
    const r = remote([k1])
    routes.set(`${r.path}/jwks.json`, (res) => res.writeHead(503).end())
    const clients = directory({ minRefreshIntervalMs: 100 })
    assert.equal(await clients.key(r.url, 'k1'), 'keys_unavailable')
    routes.set(`${r.path}/jwks.json`, json({ keys: [k1] }))
    assert.equal(await clients.key(r.url, 'k1'), 'keys_unavailable')
    assert.equal(r.jwksHits(), 1)
    await sleep(120)
    assert.deepEqual(await clients.key(r.url, 'k1'), k1)
    assert.equal(r.jwksHits(), 2)
  })

  test('a requester can make us fetch only so many URLs a minute; cached ones are free', async () => {
    const clients = createClientDirectory({
      config,
      db: undefined as never,
      budget: createFetchBudget(2),
    })
    const [r1, r2, r3] = [remote([newJwk('k1')]), remote([newJwk('k1')]), remote([newJwk('k1')])]
    assert.equal(typeof (await clients.key(r1.url, 'k1', 'ip:10.0.0.1')), 'object')
    assert.equal(typeof (await clients.key(r2.url, 'k1', 'ip:10.0.0.1')), 'object')
    // Cached: costs nothing.
    assert.equal(typeof (await clients.key(r1.url, 'k1', 'ip:10.0.0.1')), 'object')
    assert.equal(await clients.key(r3.url, 'k1', 'ip:10.0.0.1'), 'keys_unavailable')
    assert.equal(await clients.walletAddress(r3.url, 'ip:10.0.0.1'), undefined)
    assert.equal(r3.jwksHits() + r3.documentHits(), 0)
    // Nothing was cached for the refused requester: another one gets the URL fetched.
    assert.equal(typeof (await clients.key(r3.url, 'k1', 'ip:10.0.0.2')), 'object')
    assert.equal(r3.jwksHits(), 1)
  })

  test('only http and https URLs without query or fragment are fetched', async () => {
    const fetched: string[] = []
    const clients = createClientDirectory({
      config,
      db: undefined as never,
      outbound: async (url) => {
        fetched.push(String(url))
        return { kind: 'response', status: 404, headers: {}, body: Buffer.from('{}') }
      },
    })
    for (const url of [
      'ftp://remote.example/x',
      'not a url',
      'https://remote.example/x?y=1',
      'https://remote.example/x#y',
    ]) {
      assert.equal(await clients.key(url, 'k1'), 'unknown_key', url)
      assert.equal(await clients.walletAddress(url), undefined, url)
    }
    assert.deepEqual(fetched, [])
    assert.equal(await clients.key('https://remote.example/x', 'k1'), 'keys_unavailable')
    assert.deepEqual(fetched, ['https://remote.example/x/jwks.json'])
  })
})
