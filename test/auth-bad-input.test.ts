import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import { isFinalizedGrantWithAccessToken, isPendingGrant } from '@interledger/open-payments'
import { usd } from './helpers/amounts.ts'
import { type ClientIdentity, createClientIdentity, signedRequest } from './helpers/clients.ts'
import { createWalletAddress, request, startTestServer, type TestServer } from './helpers/server.ts'

let server: TestServer
let app: ClientIdentity
let other: ClientIdentity
let alice: { id: string; url: string }

before(async () => {
  server = await startTestServer()
  app = await createClientIdentity(server, { path: '/app', publicName: 'App', keyId: 'k1' })
  // Same kid as `app`, different key: a continuation signed by it must not pass as `app`.
  other = await createClientIdentity(server, { path: '/other', publicName: 'Other', keyId: 'k1' })
  alice = await createWalletAddress(server, { path: '/alice', publicName: 'Alice' })
})
after(() => server.close())

const grantCount = async () =>
  Number(
    (
      await server.database.db
        .selectFrom('grants')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .executeTakeFirstOrThrow()
    ).n,
  )

const outgoing = (extra: Record<string, unknown> = {}) => ({
  type: 'outgoing-payment',
  actions: ['create'],
  identifier: alice.url,
  ...extra,
})
const interact = {
  start: ['redirect'],
  finish: { method: 'redirect', uri: 'http://127.0.0.1:1/cb', nonce: 'n' },
}

/** POSTs a grant request signed by `app`, as the official client would sign it. */
const grantRequest = (body: Record<string, unknown>, identity = app) =>
  signedRequest(server.authUrl, { body: { client: identity.walletAddressUrl, ...body }, identity })

describe('grant requests that are refused (400, nothing stored)', () => {
  const cases: [string, () => Record<string, unknown>, string, RegExp?][] = [
    [
      'invalid access type',
      () => ({ access_token: { access: [{ type: 'payment', actions: ['create'] }] } }),
      'invalid_request',
    ],
    [
      'invalid action',
      () => ({ access_token: { access: [{ type: 'incoming-payment', actions: ['destroy'] }] } }),
      'invalid_request',
    ],
    [
      'duplicate actions',
      () => ({ access_token: { access: [{ type: 'quote', actions: ['create', 'create'] }] } }),
      'invalid_request',
    ],
    [
      'both limit amounts',
      () => ({
        access_token: {
          access: [outgoing({ limits: { debitAmount: usd('1'), receiveAmount: usd('1') } })],
        },
        interact,
      }),
      'invalid_request',
      /only one access amount allowed/,
    ],
    [
      'four access items',
      () => ({
        access_token: {
          access: [
            { type: 'quote', actions: ['create'] },
            { type: 'quote', actions: ['read'] },
            { type: 'incoming-payment', actions: ['create'] },
            { type: 'incoming-payment', actions: ['read'] },
          ],
        },
      }),
      'invalid_request',
    ],
    [
      'outgoing payment without identifier',
      () => ({
        access_token: { access: [{ type: 'outgoing-payment', actions: ['create'] }] },
        interact,
      }),
      'invalid_request',
    ],
    [
      'interactive request without interact',
      () => ({ access_token: { access: [outgoing()] } }),
      'invalid_request',
      /needs interaction/,
    ],
    [
      'list-all without interact',
      () => ({
        access_token: {
          access: [{ type: 'incoming-payment', actions: ['list-all'], identifier: alice.url }],
        },
      }),
      'invalid_request',
      /needs interaction/,
    ],
    [
      'empty access',
      () => ({ access_token: { access: [] } }),
      'invalid_request',
      /must not be empty/,
    ],
    ['no access_token', () => ({ interact }), 'invalid_request'],
    [
      'zero limit',
      () => ({
        access_token: { access: [outgoing({ limits: { debitAmount: usd('0') } })] },
        interact,
      }),
      'invalid_request',
      /greater than zero/,
    ],
    [
      'debit limit in another asset',
      () => ({
        access_token: {
          access: [
            outgoing({ limits: { debitAmount: { value: '5', assetCode: 'EUR', assetScale: 2 } } }),
          ],
        },
        interact,
      }),
      'invalid_request',
      /wallet address asset/,
    ],
    [
      'bad interval',
      () => ({
        access_token: { access: [outgoing({ limits: { interval: 'every month' } })] },
        interact,
      }),
      'invalid_request',
      /invalid interval/,
    ],
    [
      'limit amount above 2^64-1',
      () => ({
        access_token: {
          access: [outgoing({ limits: { debitAmount: usd('18446744073709551616') } })],
        },
        interact,
      }),
      'invalid_request',
    ],
    [
      'unknown wallet address identifier',
      () => ({
        access_token: {
          access: [
            {
              type: 'incoming-payment',
              actions: ['create'],
              identifier: 'https://elsewhere.example/bob',
            },
          ],
        },
      }),
      'invalid_request',
      /unknown wallet address/,
    ],
    [
      'finish without nonce',
      () => ({
        access_token: { access: [outgoing()] },
        interact: {
          start: ['redirect'],
          finish: { method: 'redirect', uri: 'http://x.example/cb' },
        },
      }),
      'invalid_request',
    ],
    [
      // The spec's `uri` format takes it; no URL parser does, so no redirect could reach it.
      'finish uri with a port above 65535',
      () => ({
        access_token: { access: [outgoing()] },
        interact: {
          start: ['redirect'],
          finish: { method: 'redirect', uri: 'http://x.example:99999/cb', nonce: 'n' },
        },
      }),
      'invalid_request',
      /finish\.uri/,
    ],
    [
      'subject request without interact',
      () => ({
        access_token: { access: [{ type: 'quote', actions: ['create'] }] },
        subject: { sub_ids: [{ id: alice.url, format: 'uri' }] },
      }),
      'invalid_request',
      /subject/,
    ],
  ]
  for (const [name, body, code, description] of cases) {
    test(name, async () => {
      const before = await grantCount()
      const res = await grantRequest(body())
      assert.equal(res.status, 400, JSON.stringify(res.body))
      assert.equal(res.body.error.code, code)
      if (description) assert.match(res.body.error.description, description)
      assert.equal(await grantCount(), before)
    })
  }

  test('a directed-identity (jwk) client cannot ask for an interactive grant', async () => {
    const { publicKey, privateKey } = generateKeyPairSync('ed25519')
    const jwk = {
      kid: 'jwk-1',
      kty: 'OKP',
      crv: 'Ed25519',
      alg: 'EdDSA',
      x: publicKey.export({ format: 'jwk' }).x,
    }
    const res = await signedRequest(server.authUrl, {
      body: { client: { jwk }, access_token: { access: [outgoing()] }, interact },
      identity: { privateKey, keyId: 'jwk-1' },
    })
    assert.equal(res.status, 400)
    assert.equal(res.body.error.code, 'invalid_client')
    // …but can for a non-interactive one, signing with its own key.
    const ok = await signedRequest(server.authUrl, {
      body: {
        client: { jwk },
        access_token: {
          access: [{ type: 'incoming-payment', actions: ['create'], identifier: alice.url }],
        },
      },
      identity: { privateKey, keyId: 'jwk-1' },
    })
    assert.equal(ok.status, 200, JSON.stringify(ok.body))
    assert.ok(ok.body.access_token.value)
    const wrongKid = await signedRequest(server.authUrl, {
      body: { client: { jwk }, access_token: { access: [{ type: 'quote', actions: ['create'] }] } },
      identity: { privateKey, keyId: 'other-kid' },
    })
    assert.equal(wrongKid.status, 400)
    assert.equal(wrongKid.body.error.code, 'invalid_client')
  })
})

describe('signatures on the grant endpoint', () => {
  const body = { access_token: { access: [{ type: 'quote', actions: ['create'] }] } }

  test('a correctly signed request is accepted', async () => {
    const res = await grantRequest(body)
    assert.equal(res.status, 200)
  })

  test('tampered body → 401 invalid_client', async () => {
    const res = await signedRequest(server.authUrl, {
      body: { client: app.walletAddressUrl, ...body },
      identity: app,
      tamper: (h) => {
        h['content-digest'] = `sha-512=:${Buffer.alloc(64).toString('base64')}:`
      },
    })
    assert.equal(res.status, 401)
    assert.equal(res.body.error.code, 'invalid_client')
  })

  test('signed with a key that is not the client’s → 401 invalid_client', async () => {
    const res = await signedRequest(server.authUrl, {
      body: { client: app.walletAddressUrl, ...body },
      identity: other,
    })
    assert.equal(res.status, 401)
    assert.equal(res.body.error.code, 'invalid_client')
  })

  test('unknown kid → 400 invalid_client "could not determine client"', async () => {
    const res = await signedRequest(server.authUrl, {
      body: { client: app.walletAddressUrl, ...body },
      identity: { privateKey: app.privateKey, keyId: 'no-such-key' },
    })
    assert.equal(res.status, 400)
    assert.equal(res.body.error.code, 'invalid_client')
    assert.match(res.body.error.description, /could not determine client/)
  })

  test('a revoked key stops working at once', async () => {
    const temp = await createClientIdentity(server, { path: '/temp-app', publicName: 'Temp' })
    assert.equal((await grantRequest(body, temp)).status, 200)
    const keys = await server.admin('GET', `/wallet-addresses/${temp.walletAddressId}/keys`)
    await server.admin(
      'DELETE',
      `/wallet-addresses/${temp.walletAddressId}/keys/${keys.body.items[0].id}`,
    )
    const res = await grantRequest(body, temp)
    assert.equal(res.status, 400)
    assert.equal(res.body.error.code, 'invalid_client')
  })

  test('missing signature headers → 401 invalid_client', async () => {
    const res = await request(server.authUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ client: app.walletAddressUrl, ...body }),
    })
    assert.equal(res.status, 401)
    assert.equal(res.body.error.code, 'invalid_client')
  })

  test('stale signature (created an hour ago) → 401 invalid_client', async () => {
    const res = await signedRequest(server.authUrl, {
      body: { client: app.walletAddressUrl, ...body },
      identity: app,
      tamper: (h) => {
        const old = Math.floor(Date.now() / 1000) - 3600
        h['signature-input'] = h['signature-input']!.replace(/created=\d+/, `created=${old}`)
      },
    })
    assert.equal(res.status, 401)
    assert.equal(res.body.error.code, 'invalid_client')
  })
})

describe('continuation and token management refusals', () => {
  const pendingGrant = async () => {
    const grant = await app.client.grant.request(
      { url: server.authUrl },
      { access_token: { access: [outgoing() as never] }, interact: interact as never },
    )
    assert.ok(isPendingGrant(grant))
    return grant
  }

  test('wrong continuation token → 401 invalid_continuation', async () => {
    const grant = await pendingGrant()
    await assert.rejects(
      app.client.grant.continue(
        { url: grant.continue.uri, accessToken: 'not-the-token' },
        { interact_ref: 'x' },
      ),
      (err: any) => err.status === 401 && err.code === 'invalid_continuation',
    )
  })

  test('continuation signed by another client’s key → 401 invalid_client', async () => {
    const grant = await pendingGrant()
    const res = await signedRequest(grant.continue.uri, {
      body: { interact_ref: 'x' },
      token: grant.continue.access_token.value,
      identity: other,
    })
    assert.equal(res.status, 401)
    assert.equal(res.body.error.code, 'invalid_client')
  })

  test('continuation without the authorization component signed → 401 invalid_client', async () => {
    const grant = await pendingGrant()
    const res = await signedRequest(grant.continue.uri, {
      body: { interact_ref: 'x' },
      identity: app,
      // Sign without Authorization, then add it: the signature does not cover it.
      tamper: (h) => {
        h.authorization = `GNAP ${grant.continue.access_token.value}`
      },
    })
    assert.equal(res.status, 401)
    assert.equal(res.body.error.code, 'invalid_client')
  })

  test('unknown continuation id → 404; malformed id → 400', async () => {
    const res = await signedRequest(
      `${server.authUrl}/continue/00000000-0000-4000-8000-000000000000`,
      { body: {}, token: 'x', identity: app },
    )
    assert.equal(res.status, 404)
    assert.equal(res.body.error.code, 'invalid_request')
    const bad = await signedRequest(`${server.authUrl}/continue/nope`, {
      body: {},
      token: 'x',
      identity: app,
    })
    assert.equal(bad.status, 400)
  })

  test('rotating with another token than the managed one → 404 invalid_rotation', async () => {
    const a = await app.client.grant.request(
      { url: server.authUrl },
      { access_token: { access: [{ type: 'quote', actions: ['create'] }] } },
    )
    const b = await app.client.grant.request(
      { url: server.authUrl },
      { access_token: { access: [{ type: 'quote', actions: ['create'] }] } },
    )
    assert.ok(isFinalizedGrantWithAccessToken(a) && isFinalizedGrantWithAccessToken(b))
    await assert.rejects(
      app.client.token.rotate({ url: a.access_token.manage, accessToken: b.access_token.value }),
      (err: any) => err.status === 404 && err.code === 'invalid_rotation',
    )
    // Another client cannot rotate app's token even with its value.
    const res = await signedRequest(a.access_token.manage, {
      token: a.access_token.value,
      identity: other,
    })
    assert.equal(res.status, 401)
    assert.equal(res.body.error.code, 'invalid_client')
  })
})
