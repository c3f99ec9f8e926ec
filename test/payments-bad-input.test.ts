import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { usd } from './helpers/amounts.ts'
import {
  type ClientIdentity,
  createClientIdentity,
  grantToken,
  outgoingPaymentToken,
  signedRequest,
} from './helpers/clients.ts'
import { createWalletAddress, deposit, startTestServer, type TestServer } from './helpers/server.ts'

let server: TestServer
let app: ClientIdentity
let rs: string
let alice: { id: string; url: string }
let bob: { id: string; url: string }
let yen: { id: string; url: string }
let ipToken: string
let quoteToken: string
let opToken: string
let openIp: string

before(async () => {
  server = await startTestServer({ QUOTE_LIFESPAN_SECONDS: '1' })
  rs = server.openPaymentsUrl
  app = await createClientIdentity(server, { path: '/app', publicName: 'App' })
  alice = await createWalletAddress(server, { path: '/alice' })
  bob = await createWalletAddress(server, { path: '/bob' })
  yen = await createWalletAddress(server, { path: '/yen', assetCode: 'JPY', assetScale: 0 })
  await deposit(server, alice.id, 10_000n)
  ipToken = await grantToken(server, app, [
    { type: 'incoming-payment', actions: ['create', 'complete'], identifier: bob.url },
    { type: 'incoming-payment', actions: ['create'], identifier: yen.url },
  ])
  quoteToken = await grantToken(server, app, [{ type: 'quote', actions: ['create'] }])
  opToken = await outgoingPaymentToken(server, app, alice.url, { debitAmount: usd('5000') })
  openIp = (await ip({ incomingAmount: usd('1000') })).id
})
after(() => server.close())

const ip = (extra: Record<string, unknown> = {}, walletAddress = bob.url) =>
  app.client.incomingPayment.create({ url: rs, accessToken: ipToken }, { walletAddress, ...extra })
const postQuote = (body: Record<string, unknown>) =>
  signedRequest(`${rs}/quotes`, {
    body: { walletAddress: alice.url, method: 'ilp', ...body },
    token: quoteToken,
    identity: app,
  })
const postPayment = (body: Record<string, unknown>, token = opToken) =>
  signedRequest(`${rs}/outgoing-payments`, {
    body: { walletAddress: alice.url, ...body },
    token,
    identity: app,
  })
const outgoingCount = async () =>
  Number(
    (
      await server.database.db
        .selectFrom('outgoing_payments')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .executeTakeFirstOrThrow()
    ).n,
  )

describe('quotes that are refused', () => {
  const cases: [string, () => Promise<Record<string, unknown>>, string?][] = [
    [
      'both amounts',
      async () => ({ receiver: openIp, debitAmount: usd('10'), receiveAmount: usd('10') }),
    ],
    ['no method', async () => ({ receiver: openIp, method: undefined })],
    ['method spsp', async () => ({ receiver: openIp, method: 'spsp' })],
    ['a wallet address as receiver', async () => ({ receiver: bob.url })],
    [
      'zero debit amount',
      async () => ({ receiver: openIp, debitAmount: usd('0') }),
      'invalid amount',
    ],
    [
      'debit amount in the wrong asset',
      async () => ({
        receiver: openIp,
        debitAmount: { value: '10', assetCode: 'EUR', assetScale: 2 },
      }),
      'invalid amount',
    ],
    [
      'receive amount in the wrong asset',
      async () => ({
        receiver: openIp,
        receiveAmount: { value: '10', assetCode: 'USD', assetScale: 3 },
      }),
      'invalid amount',
    ],
    [
      'receive amount beyond what the receiver still expects',
      async () => ({ receiver: openIp, receiveAmount: usd('1001') }),
      'invalid amount',
    ],
    [
      'no amount and none on the receiver',
      async () => ({ receiver: (await ip()).id }),
      'invalid amount: no amount was provided and none can be inferred from the receiver',
    ],
    [
      'an unknown receiver',
      async () => ({
        receiver: `${rs}/incoming-payments/00000000-0000-4000-8000-000000000000`,
        debitAmount: usd('10'),
      }),
      'invalid receiver',
    ],
    [
      'a receiver at another server',
      async () => ({
        receiver:
          'https://elsewhere.example/incoming-payments/00000000-0000-4000-8000-000000000000',
        debitAmount: usd('10'),
      }),
      'invalid receiver',
    ],
    [
      'a completed receiver',
      async () => {
        const done = await ip()
        await app.client.incomingPayment.complete({ url: done.id, accessToken: ipToken })
        return { receiver: done.id, debitAmount: usd('10') }
      },
      'invalid receiver',
    ],
    [
      'an expired receiver',
      async () => {
        const soon = await ip({ expiresAt: new Date(Date.now() + 300).toISOString() })
        await new Promise((r) => setTimeout(r, 400))
        return { receiver: soon.id, debitAmount: usd('10') }
      },
      'invalid receiver',
    ],
    [
      'no exchange rate for the assets',
      async () => ({ receiver: (await ip({}, yen.url)).id, debitAmount: usd('100') }),
      'could not convert between assets',
    ],
    [
      'an amount above 2^64-1',
      async () => ({ receiver: openIp, debitAmount: usd('18446744073709551616') }),
    ],
  ]
  for (const [name, body, description] of cases) {
    test(name, async () => {
      const res = await postQuote(await body())
      assert.equal(res.status, 400, JSON.stringify(res.body))
      assert.equal(res.body.error.code, '400')
      if (description) assert.equal(res.body.error.description, description)
    })
  }

  test('a local receiver is read with the token, which is judged first and on every request', async () => {
    const send = (receiver: string, token: string) =>
      signedRequest(`${rs}/quotes`, {
        body: { walletAddress: alice.url, method: 'ilp', receiver, debitAmount: usd('10') },
        token,
        identity: app,
      })
    const refused = async (res: { status: number; body: any }, status: number, text: string) => {
      assert.equal(res.status, status, JSON.stringify(res.body))
      assert.equal(res.body.error.description, text)
    }
    const unknown = `${rs}/incoming-payments/00000000-0000-4000-8000-000000000000`
    for (const receiver of [openIp, unknown]) {
      await refused(await send(receiver, 'no-such-token'), 403, 'Inactive Token')
      await refused(await send(receiver, ipToken), 403, 'Insufficient Grant')
      await refused(
        await send(receiver, 'two words'),
        401,
        'Missing or invalid authorization header value',
      )
    }
    // A revoked token is refused on the very next request.
    const token = await grantToken(server, app, [{ type: 'quote', actions: ['create'] }])
    assert.equal((await send(openIp, token)).status, 201)
    const { body } = await server.admin('POST', '/introspect', { access_token: token })
    await server.admin('POST', `/grants/${body.grant}/revoke`)
    await refused(await send(openIp, token), 403, 'Inactive Token')
  })

  test('fees that eat the whole amount: non-positive receive amount', async () => {
    const assets = (await server.admin('GET', '/assets')).body.items
    const usdAsset = assets.find((a: any) => a.code === 'USD')
    await server.admin('PUT', `/assets/${usdAsset.id}/fees`, { fixed: '50', basisPoints: 0 })
    try {
      const res = await postQuote({ receiver: openIp, debitAmount: usd('50') })
      assert.equal(res.status, 400)
      assert.equal(res.body.error.description, 'non-positive receive amount')
    } finally {
      await server.admin('PUT', `/assets/${usdAsset.id}/fees`, { fixed: '0', basisPoints: 0 })
    }
  })

  test('a fixed send too small says the least debit that delivers, and that amount quotes', async () => {
    const assets = (await server.admin('GET', '/assets')).body.items
    const usdAsset = assets.find((a: any) => a.code === 'USD')
    await server.admin('PUT', `/assets/${usdAsset.id}/fees`, { fixed: '50', basisPoints: 100 })
    try {
      const res = await postQuote({ receiver: openIp, debitAmount: usd('50') })
      assert.equal(res.status, 400)
      assert.equal(res.body.error.description, 'non-positive receive amount')
      // One cent of principal delivers one cent; its fee is 50 + 1 % rounded up.
      assert.deepEqual(res.body.error.details, { minSendAmount: '52' })
      const ok = await postQuote({ receiver: openIp, debitAmount: usd('52') })
      assert.equal(ok.status, 201, JSON.stringify(ok.body))
      assert.deepEqual(ok.body.receiveAmount, usd('1'))
      assert.equal((await postQuote({ receiver: openIp, debitAmount: usd('51') })).status, 400)
    } finally {
      await server.admin('PUT', `/assets/${usdAsset.id}/fees`, { fixed: '0', basisPoints: 0 })
    }
  })
})

describe('outgoing payments that are refused, and nothing is reserved', () => {
  const quoteFor = async (debit = '100', walletAddress = alice.url, receiver = openIp) =>
    (
      await signedRequest(`${rs}/quotes`, {
        body: { walletAddress, receiver, method: 'ilp', debitAmount: usd(debit) },
        token: quoteToken,
        identity: app,
      })
    ).body

  const expectRefused = async (
    res: { status: number; body: any },
    status: number,
    description?: string,
  ) => {
    assert.equal(res.status, status, JSON.stringify(res.body))
    if (description) assert.equal(res.body.error.description, description)
  }

  test('quoteId and debitAmount together; incomingPayment without debitAmount', async () => {
    const before = await outgoingCount()
    await expectRefused(
      await postPayment({ quoteId: (await quoteFor()).id, debitAmount: usd('10') }),
      400,
    )
    await expectRefused(await postPayment({ incomingPayment: openIp }), 400)
    await expectRefused(await postPayment({}), 400)
    assert.equal(await outgoingCount(), before)
  })

  test('an expired quote, a used quote, a quote of another wallet address, an unknown quote', async () => {
    const expiring = await quoteFor()
    await new Promise((r) => setTimeout(r, 1100))
    await expectRefused(await postPayment({ quoteId: expiring.id }), 400, 'invalid quote')

    const q = await quoteFor()
    assert.equal((await postPayment({ quoteId: q.id })).status, 201)
    await expectRefused(await postPayment({ quoteId: q.id }), 400, 'invalid quote')

    const bobsToken = await grantToken(server, app, [{ type: 'quote', actions: ['create'] }])
    const bobsQuote = (
      await signedRequest(`${rs}/quotes`, {
        body: { walletAddress: bob.url, receiver: openIp, method: 'ilp', debitAmount: usd('10') },
        token: bobsToken,
        identity: app,
      })
    ).body
    await expectRefused(await postPayment({ quoteId: bobsQuote.id }), 400, 'invalid quote')
    await expectRefused(
      await postPayment({ quoteId: `${rs}/quotes/00000000-0000-4000-8000-000000000000` }),
      404,
      'unknown quote',
    )
    await expectRefused(
      await postPayment({ quoteId: 'https://elsewhere.example/quotes/x' }),
      404,
      'unknown quote',
    )
  })

  test('a quote is read with the token, which is judged first and on every request', async () => {
    const unknown = `${rs}/quotes/00000000-0000-4000-8000-000000000000`
    const q = await quoteFor()
    for (const quoteId of [q.id, unknown]) {
      await expectRefused(await postPayment({ quoteId }, 'no-such-token'), 403, 'Inactive Token')
      await expectRefused(await postPayment({ quoteId }, quoteToken), 403, 'Insufficient Grant')
    }
    // A revoked token is refused on the very next request, and nothing is paid.
    const token = await outgoingPaymentToken(server, app, alice.url)
    assert.equal((await postPayment({ quoteId: (await quoteFor()).id }, token)).status, 201)
    const { body } = await server.admin('POST', '/introspect', { access_token: token })
    await server.admin('POST', `/grants/${body.grant}/revoke`)
    const before = await outgoingCount()
    await expectRefused(await postPayment({ quoteId: q.id }, token), 403, 'Inactive Token')
    assert.equal(await outgoingCount(), before)
  })

  test('more than the balance: 400 insufficient balance, nothing reserved', async () => {
    const poor = await createWalletAddress(server, { path: '/poor' })
    await deposit(server, poor.id, 50n)
    const token = await outgoingPaymentToken(server, app, poor.url)
    const q = await quoteFor('100', poor.url)
    const res = await signedRequest(`${rs}/outgoing-payments`, {
      body: { walletAddress: poor.url, quoteId: q.id },
      token,
      identity: app,
    })
    await expectRefused(res, 400, 'insufficient balance')
    const balance = (await server.admin('GET', `/wallet-addresses/${poor.id}/balance`)).body
    assert.deepEqual([balance.balance, balance.reserved], ['50', '0'])
  })

  test('a token for another wallet address: 403 Insufficient Grant', async () => {
    const q = await quoteFor()
    const res = await signedRequest(`${rs}/outgoing-payments`, {
      body: { walletAddress: bob.url, quoteId: q.id },
      token: opToken,
      identity: app,
    })
    await expectRefused(res, 403, 'Insufficient Grant')
  })

  test('a single payment above the grant limit, or to another receiver than the grant allows: 403 unauthorized', async () => {
    const open = (await ip()).id
    await expectRefused(
      await postPayment({ quoteId: (await quoteFor('5001', alice.url, open)).id }),
      403,
      'unauthorized',
    )
    const pinned = await outgoingPaymentToken(server, app, alice.url, {
      receiver: `${rs}/incoming-payments/00000000-0000-4000-8000-000000000000`,
    })
    await expectRefused(
      await postPayment({ quoteId: (await quoteFor()).id }, pinned),
      403,
      'unauthorized',
    )
    const future = await outgoingPaymentToken(server, app, alice.url, {
      debitAmount: usd('100'),
      interval: 'R/2099-01-01T00:00:00Z/P1M',
    })
    await expectRefused(
      await postPayment({ quoteId: (await quoteFor()).id }, future),
      403,
      'unauthorized',
    )
  })

  test('list paging edge cases', async () => {
    for (const q of ['first=1&last=1&cursor=x', 'last=1', 'first=0', 'first=101']) {
      const res = await signedRequest(
        `${rs}/outgoing-payments?wallet-address=${encodeURIComponent(alice.url)}&${q}`,
        { method: 'GET', token: opToken, identity: app },
      )
      assert.equal(res.status, 400, q)
    }
  })

  test('the outgoing-payment-grant endpoint with a grant that never paid: nulls', async () => {
    const fresh = await outgoingPaymentToken(server, app, alice.url)
    const spent = await app.client.outgoingPayment.getGrantSpentAmounts({
      url: rs,
      accessToken: fresh,
    })
    assert.deepEqual(spent, { spentDebitAmount: null, spentReceiveAmount: null })
  })
})
