import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import {
  createUnauthenticatedClient,
  getWalletAddressServerOpenAPI,
} from '@interledger/open-payments'
import { createWalletAddress, request, startTestServer, type TestServer } from './helpers/server.ts'

let server: TestServer
let validate: {
  walletAddress: (r: { status: number; body: unknown }) => boolean
  jwks: (r: { status: number; body: unknown }) => boolean
}

before(async () => {
  server = await startTestServer()
  const spec = await getWalletAddressServerOpenAPI()
  validate = {
    walletAddress: spec.createResponseValidator({ path: '/', method: 'get' as never }),
    jwks: spec.createResponseValidator({ path: '/jwks.json', method: 'get' as never }),
  }
})
after(() => server.close())

const newJwk = (kid: string) => {
  const { publicKey } = generateKeyPairSync('ed25519')
  const jwk = publicKey.export({ format: 'jwk' })
  return { kid, kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', x: jwk.x! }
}

describe('public wallet address documents', () => {
  test('GET {walletAddress} returns the spec shape, passes the official validator, and is cacheable', async () => {
    const wa = await createWalletAddress(server, { path: '/alice', publicName: 'Alice' })
    assert.equal(wa.url, `${server.openPaymentsUrl}/alice`)
    const res = await request(wa.url)
    assert.equal(res.status, 200)
    assert.deepEqual(res.body, {
      id: wa.url,
      publicName: 'Alice',
      assetCode: 'USD',
      assetScale: 2,
      authServer: server.authUrl,
      resourceServer: server.openPaymentsUrl,
    })
    assert.ok(!res.body.authServer.endsWith('/') && !res.body.resourceServer.endsWith('/'))
    assert.ok(validate.walletAddress({ status: res.status, body: res.body }))
    assert.match(res.headers.get('cache-control')!, /max-age=\d+/)
    assert.equal(res.headers.get('access-control-allow-origin'), '*')
    assert.ok(res.headers.get('x-request-id'))
  })

  test('nested paths and a wallet address without a public name', async () => {
    const wa = await createWalletAddress(server, {
      path: '/shop/checkout-1',
      assetCode: 'EUR',
      assetScale: 2,
    })
    const res = await request(wa.url)
    assert.equal(res.status, 200)
    assert.equal(res.body.id, wa.url)
    assert.equal(res.body.publicName, undefined)
    assert.equal(res.body.assetCode, 'EUR')
    assert.ok(validate.walletAddress({ status: res.status, body: res.body }))
  })

  test('the path-less wallet address is served at /.well-known/pay', async () => {
    const wa = await createWalletAddress(server, { path: '/', publicName: 'Shop' })
    assert.equal(wa.url, `${server.openPaymentsUrl}/.well-known/pay`)
    const res = await request(wa.url)
    assert.equal(res.status, 200)
    assert.equal(res.body.id, wa.url)
    assert.ok(validate.walletAddress({ status: res.status, body: res.body }))
    const keys = await request(`${wa.url}/jwks.json`)
    assert.equal(keys.status, 200)
    assert.ok(validate.jwks({ status: keys.status, body: keys.body }))
    assert.equal((await request(`${server.openPaymentsUrl}/jwks.json`)).status, 404)
  })

  test('unknown and inactive wallet addresses are 404 with a JSON error', async () => {
    const unknown = await request(`${server.openPaymentsUrl}/nobody`)
    assert.equal(unknown.status, 404)
    assert.deepEqual(unknown.body, {
      error: { code: '404', description: 'wallet address not found' },
    })
    assert.equal((await request(`${server.openPaymentsUrl}/nobody/jwks.json`)).status, 404)
    assert.equal((await request(`${server.openPaymentsUrl}/alice/`)).status, 404)

    const wa = await createWalletAddress(server, { path: '/carol' })
    const off = await server.admin('PATCH', `/wallet-addresses/${wa.id}`, { status: 'inactive' })
    assert.equal(off.status, 200)
    assert.equal(off.body.status, 'inactive')
    assert.equal((await request(wa.url)).status, 404)
    assert.equal((await request(`${wa.url}/jwks.json`)).status, 404)
    await server.admin('PATCH', `/wallet-addresses/${wa.id}`, { status: 'active' })
    assert.equal((await request(wa.url)).status, 200)
  })
})

describe('keys and JWKS', () => {
  test('keys added by the operator appear in the JWKS until revoked', async () => {
    const wa = await createWalletAddress(server, { path: '/dave', publicName: 'Dave' })
    const k1 = newJwk('key-1')
    const k2 = newJwk('key-2')
    const added1 = await server.admin('POST', `/wallet-addresses/${wa.id}/keys`, { jwk: k1 })
    assert.equal(added1.status, 201)
    assert.deepEqual(added1.body.jwk, k1)
    assert.equal(
      (await server.admin('POST', `/wallet-addresses/${wa.id}/keys`, { jwk: k2 })).status,
      201,
    )

    let jwks = await request(`${wa.url}/jwks.json`)
    assert.equal(jwks.status, 200)
    assert.deepEqual(jwks.body, { keys: [k1, k2] })
    assert.ok(validate.jwks({ status: jwks.status, body: jwks.body }))

    const revoked = await server.admin(
      'DELETE',
      `/wallet-addresses/${wa.id}/keys/${added1.body.id}`,
    )
    assert.equal(revoked.status, 200)
    assert.ok(revoked.body.revokedAt)
    jwks = await request(`${wa.url}/jwks.json`)
    assert.deepEqual(jwks.body, { keys: [k2] })
    // The kid of a revoked key is never reused.
    assert.equal(
      (await server.admin('POST', `/wallet-addresses/${wa.id}/keys`, { jwk: newJwk('key-1') }))
        .status,
      409,
    )
    const all = await server.admin('GET', `/wallet-addresses/${wa.id}/keys`)
    assert.equal(all.body.items.length, 2)
  })

  test('invalid keys are refused', async () => {
    const wa = await createWalletAddress(server, { path: '/erin' })
    const path = `/wallet-addresses/${wa.id}/keys`
    const bad = [
      { jwk: { ...newJwk('a'), kty: 'RSA' } },
      { jwk: { ...newJwk('a'), crv: 'P-256' } },
      { jwk: { ...newJwk('a'), x: 'too-short' } },
      { jwk: { ...newJwk('a'), extra: 1 } },
      { jwk: { kid: 'a', kty: 'OKP', crv: 'Ed25519' } },
      {},
    ]
    for (const body of bad) {
      const res = await server.admin('POST', path, body)
      assert.equal(res.status, 400, JSON.stringify(body))
      assert.equal(res.body.error.code, 'invalid_request')
    }
    assert.deepEqual((await request(`${wa.url}/jwks.json`)).body, { keys: [] })
  })
})

describe('the official unauthenticated client', () => {
  test('walletAddress.get and walletAddress.getKeys work and validate', async () => {
    const wa = await createWalletAddress(server, { path: '/frank', publicName: 'Frank' })
    const jwk = newJwk('frank-key')
    await server.admin('POST', `/wallet-addresses/${wa.id}/keys`, { jwk })
    const client = await createUnauthenticatedClient({
      validateResponses: true,
      logLevel: 'silent',
    })
    const doc = await client.walletAddress.get({ url: wa.url })
    assert.equal(doc.id, wa.url)
    assert.equal(doc.publicName, 'Frank')
    assert.equal(doc.resourceServer, server.openPaymentsUrl)
    const keys = await client.walletAddress.getKeys({ url: wa.url })
    assert.deepEqual(keys.keys, [jwk])
    await assert.rejects(client.walletAddress.get({ url: `${server.openPaymentsUrl}/nobody` }))
  })
})
