import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { after, before, describe, mock, test } from 'node:test'
import { sql } from 'kysely'
import { coreBankingReceiver } from '../examples/core-banking-receiver.ts'
import { checkBooks } from '../src/ledger/invariants.ts'
import { usd } from './helpers/amounts.ts'
import {
  type ClientIdentity,
  createClientIdentity,
  grantToken,
  outgoingPaymentToken,
} from './helpers/clients.ts'
import {
  createWalletAddress,
  deposit,
  eventually,
  startTestServer,
  type TestServer,
} from './helpers/server.ts'
import {
  type Answer,
  type Received,
  type Receiver,
  startReceiver,
} from './helpers/webhook-receiver.ts'

/**
 * Core-banking hooks on one server: a real receiver on loopback stands in for the ASE's core
 * banking, verifying every callout's signature with the `standardwebhooks` library and answering
 * by the payment's metadata; payments are made with the official Open Payments client.
 */
let server: TestServer
let core: Receiver
let app: ClientIdentity
let rs: string
let alice: { id: string; url: string }
let bob: { id: string; url: string }
let quoteToken: string
let opToken: string
let ipToken: string
/** Post and release callouts fail this many times before being accepted. */
let failFirst = 0

const json = (body: unknown): Answer => ({
  status: 200,
  body: JSON.stringify(body),
  headers: { 'content-type': 'application/json' },
})
const secret = () => `whsec_${randomBytes(32).toString('base64')}`
const lastSegment = (url: string) => url.split('/').at(-1)!

/** Core banking's behaviour, chosen per payment by its metadata. */
function answer(r: Received): Answer {
  const msg = r.payload
  if (!msg) return 401
  switch (msg.type) {
    case 'outgoing_payment.approve':
      switch (msg.data.outgoingPayment.metadata?.core) {
        case 'decline':
          return json({ decision: 'decline', reason: 'over the daily limit' })
        case 'hang':
          return 'hang'
        case 'garbage':
          return { status: 200, body: '{"decision": "appro' }
        case 'error':
          return 500
        case 'no-decision':
          return json({ ok: true })
        default:
          return json({ decision: 'approve' })
      }
    case 'incoming_payment.approve':
      if (msg.data.incomingPayment.metadata?.compliance === 'hang') return 'hang'
      return msg.data.incomingPayment.metadata?.compliance === 'refuse'
        ? json({ decision: 'decline', reason: 'sanctions screening' })
        : json({ decision: 'approve' })
    default:
      return r.attempt <= failFirst ? 503 : 204
  }
}

before(async () => {
  core = await startReceiver(answer)
  core.secrets = [secret()]
  server = await startTestServer({
    CORE_BANKING_URL: core.url,
    CORE_BANKING_SECRET: core.secrets[0]!,
    CORE_BANKING_TIMEOUT_MS: '1000',
    CORE_BANKING_LEASE_SECONDS: '5',
    CORE_BANKING_POLL_MS: '50',
    CORE_BANKING_RETRY_BASE_MS: '100',
  })
  rs = server.openPaymentsUrl
  app = await createClientIdentity(server, { path: '/app', publicName: 'App' })
  alice = await createWalletAddress(server, { path: '/alice', publicName: 'Alice' })
  bob = await createWalletAddress(server, { path: '/bob', publicName: 'Bob' })
  await deposit(server, alice.id, 100_000n)
  quoteToken = await grantToken(server, app, [{ type: 'quote', actions: ['create'] }])
  opToken = await outgoingPaymentToken(server, app, alice.url)
  ipToken = await grantToken(server, app, [
    { type: 'incoming-payment', actions: ['create', 'read'], identifier: bob.url },
  ])
})
after(async () => {
  await server?.close()
  await core?.close()
})

const incomingPayment = (extra: Record<string, unknown> = {}) =>
  app.client.incomingPayment.create(
    { url: rs, accessToken: ipToken },
    { walletAddress: bob.url, incomingAmount: usd('1000'), ...extra },
  )

async function createPayment(
  receiver: string,
  metadata?: Record<string, unknown>,
  amount: Record<string, unknown> = {},
) {
  const quote = await app.client.quote.create({ url: rs, accessToken: quoteToken }, {
    walletAddress: alice.url,
    receiver,
    method: 'ilp',
    ...amount,
  } as never)
  return app.client.outgoingPayment.create(
    { url: rs, accessToken: opToken },
    { walletAddress: alice.url, quoteId: quote.id, ...(metadata && { metadata }) },
  )
}

async function balance(id: string) {
  return (await server.admin('GET', `/wallet-addresses/${id}/balance`)).body as {
    balance: string
    reserved: string
  }
}

const count = async (
  table: 'outgoing_payments' | 'core_banking_approvals' | 'core_banking_callouts',
) =>
  Number(
    (
      await server.database.db
        .selectFrom(table)
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .executeTakeFirstOrThrow()
    ).n,
  )

/** Everything a refused create must leave as it was. */
async function snapshot() {
  return {
    alice: await balance(alice.id),
    payments: await count('outgoing_payments'),
    approvals: await count('core_banking_approvals'),
    callouts: await count('core_banking_callouts'),
  }
}

/** Callouts core banking received of one type, for one payment id. */
const callouts = (type: string, paymentId: string) =>
  core.requests.filter(
    (r) =>
      r.payload?.type === type &&
      (r.payload.data.paymentId ??
        r.payload.data.outgoingPayment?.paymentId ??
        r.payload.data.incomingPayment?.paymentId) === paymentId,
  )

/**
 * The approval core banking gave a payment from `walletAddress`, and the release callout that
 * followed it (waited for): for a payment approved and then not created.
 */
async function approvalAndRelease(walletAddress: string) {
  const approval = core.requests.find(
    (r) =>
      r.payload?.type === 'outgoing_payment.approve' &&
      r.payload.data.outgoingPayment.walletAddress === walletAddress,
  )!
  const id = approval.payload.data.outgoingPayment.paymentId
  await eventually(async () => (callouts('outgoing_payment.release', id).length ? true : undefined))
  return { approval, release: callouts('outgoing_payment.release', id)[0]!.payload.data }
}

async function stateOf(paymentUrl: string) {
  return eventually(async () => {
    const row = await server.database.db
      .selectFrom('outgoing_payments')
      .select(['state', 'failure'])
      .where('id', '=', lastSegment(paymentUrl))
      .executeTakeFirstOrThrow()
    return row.state === 'sending' ? undefined : row
  }, 10_000)
}

describe('outgoing payments', () => {
  test('decline: the client sees 400 insufficient balance, nothing is reserved or written', async () => {
    const ip = await incomingPayment()
    const before = await snapshot()
    await assert.rejects(createPayment(ip.id, { core: 'decline' }), (err: any) => {
      assert.equal(err.status, 400)
      assert.equal(err.description, 'insufficient balance')
      return true
    })
    assert.deepEqual(await snapshot(), before)
    const asked = core.requests.filter(
      (r) =>
        r.payload?.type === 'outgoing_payment.approve' &&
        r.payload.data.outgoingPayment.metadata?.core === 'decline',
    )
    assert.equal(asked.length, 1)
    // Signed (verified by the receiver), with the idempotency id as the webhook id.
    const request = asked[0]!
    assert.equal(request.idempotencyKey, request.webhookId)
    assert.equal(request.payload.data.outgoingPayment.walletAddress, alice.url)
    assert.deepEqual(request.payload.data.outgoingPayment.debitAmount, usd('1000'))
    assert.equal(request.payload.data.outgoingPayment.receiver, ip.id)
    assert.ok((await checkBooks(server.database.db)).balanced)
    const metrics = (await server.admin('GET', '/metrics')).body as string
    assert.match(metrics, /op_core_banking_callouts_total\{kind="outgoing",outcome="declined"\} 1/)
  })

  test('approve: the payment completes and the post callout arrives exactly once', async () => {
    const ip = await incomingPayment()
    const before = await balance(alice.id)
    // Core banking fails the post twice: the retries carry the same ids, it accepts it once.
    failFirst = 2
    const payment = await createPayment(ip.id)
    const id = lastSegment(payment.id)
    assert.equal(callouts('outgoing_payment.approve', id).length, 1)
    assert.equal((await stateOf(payment.id)).state, 'completed')
    await eventually(async () =>
      core.accepted.some(
        (r) => r.payload?.type === 'outgoing_payment.post' && r.payload.data.paymentId === id,
      )
        ? true
        : undefined,
    )
    // Nothing more comes afterwards.
    await new Promise((r) => setTimeout(r, 500))
    const posts = callouts('outgoing_payment.post', id)
    assert.equal(posts.length, 3)
    assert.equal(new Set(posts.map((p) => p.webhookId)).size, 1)
    assert.ok(posts.every((p) => p.idempotencyKey === p.webhookId))
    assert.equal(core.accepted.filter((r) => r.webhookId === posts[0]!.webhookId).length, 1)
    assert.equal(callouts('outgoing_payment.release', id).length, 0)
    const post = posts[0]!.payload
    assert.deepEqual(
      [post.data.state, post.data.approvedAmount, post.data.postAmount, post.data.releaseAmount],
      ['completed', '1000', '1000', '0'],
    )
    // The receiver was approved once too; the money moved in this server's ledger.
    assert.equal(callouts('incoming_payment.approve', lastSegment(ip.id)).length, 1)
    assert.equal(BigInt(before.balance) - BigInt((await balance(alice.id)).balance), 1000n)
    const row = await server.database.db
      .selectFrom('core_banking_callouts')
      .select(['status', 'attempts', 'kind'])
      .where('payment_id', '=', id)
      .executeTakeFirstOrThrow()
    assert.deepEqual(row, { status: 'delivered', attempts: 3, kind: 'post' })
    failFirst = 0
    assert.ok((await checkBooks(server.database.db)).balanced)
  })

  test('approved, then refused by the balance: 400, nothing reserved, the approval released', async () => {
    const poor = await createWalletAddress(server, { path: '/poor' })
    await deposit(server, poor.id, 50n)
    const token = await outgoingPaymentToken(server, app, poor.url)
    const ip = await incomingPayment()
    const quote = await app.client.quote.create({ url: rs, accessToken: quoteToken }, {
      walletAddress: poor.url,
      receiver: ip.id,
      method: 'ilp',
    } as never)
    await assert.rejects(
      app.client.outgoingPayment.create(
        { url: rs, accessToken: token },
        { walletAddress: poor.url, quoteId: quote.id },
      ),
      (err: any) => err.status === 400 && err.description === 'insufficient balance',
    )
    const { release } = await approvalAndRelease(poor.url)
    assert.deepEqual(
      [release.state, release.failure, release.postAmount, release.releaseAmount],
      ['not_created', 'insufficient_balance', '0', '1000'],
    )
    const wallet = await balance(poor.id)
    assert.deepEqual([wallet.balance, wallet.reserved], ['50', '0'])
    assert.ok((await checkBooks(server.database.db)).balanced)
  })

  test('approved, then the create fails unexpectedly: nothing written, the approval released', async () => {
    const unlucky = await createWalletAddress(server, { path: '/unlucky' })
    await deposit(server, unlucky.id, 10_000n)
    const token = await outgoingPaymentToken(server, app, unlucky.url)
    const ip = await incomingPayment()
    const quote = await app.client.quote.create({ url: rs, accessToken: quoteToken }, {
      walletAddress: unlucky.url,
      receiver: ip.id,
      method: 'ilp',
    } as never)
    // The database refuses this sender's payment row: an error no rule of the create expects.
    const db = server.database.db
    await sql`CREATE FUNCTION refuse_unlucky() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION 'the database refuses the payment'; END $$`.execute(db)
    await sql`CREATE TRIGGER refuse_unlucky BEFORE INSERT ON outgoing_payments FOR EACH ROW
      WHEN (NEW.wallet_address_id = ${sql.lit(unlucky.id)}::uuid)
      EXECUTE FUNCTION refuse_unlucky()`.execute(db)
    try {
      await assert.rejects(
        app.client.outgoingPayment.create(
          { url: rs, accessToken: token },
          { walletAddress: unlucky.url, quoteId: quote.id },
        ),
        (err: any) => err.status === 500,
      )
    } finally {
      await sql`DROP TRIGGER refuse_unlucky ON outgoing_payments`.execute(db)
      await sql`DROP FUNCTION refuse_unlucky()`.execute(db)
    }
    const { approval, release } = await approvalAndRelease(unlucky.url)
    assert.deepEqual(
      [release.state, release.failure, release.postAmount, release.releaseAmount],
      [
        'not_created',
        'create_failed',
        '0',
        approval.payload.data.outgoingPayment.debitAmount.value,
      ],
    )
    const wallet = await balance(unlucky.id)
    assert.deepEqual([wallet.balance, wallet.reserved], ['10000', '0'])
    assert.ok((await checkBooks(db)).balanced)
  })

  for (const [mode, what] of [
    ['hang', 'a callout that times out'],
    ['garbage', 'malformed JSON'],
    ['error', 'an HTTP 500'],
    ['no-decision', 'JSON without a decision'],
  ] as const) {
    test(`${what}: the create fails cleanly with 503, nothing reserved, books balanced`, async () => {
      const ip = await incomingPayment()
      const before = await snapshot()
      const started = Date.now()
      await assert.rejects(createPayment(ip.id, { core: mode }), (err: any) => {
        assert.equal(err.status, 503)
        return true
      })
      // Bounded by the callout timeout (1 s), not by the receiver.
      assert.ok(Date.now() - started < 5000)
      assert.deepEqual(await snapshot(), before)
      assert.equal((await balance(alice.id)).reserved, '0')
      assert.ok((await checkBooks(server.database.db)).balanced)
    })
  }
})

describe('incoming credit', () => {
  test('declined: the local payment fails, nothing credited, the release callout arrives once', async () => {
    const ip = await incomingPayment({ metadata: { compliance: 'refuse' } })
    const before = await balance(alice.id)
    const bobBefore = await balance(bob.id)
    const first = await createPayment(ip.id)
    const failed = await stateOf(first.id)
    assert.equal(failed.state, 'failed')
    assert.match(failed.failure!, /receiver declined: sanctions screening/)
    // A second payment to the same incoming payment is refused by the stored decision.
    const second = await createPayment(ip.id)
    assert.equal((await stateOf(second.id)).state, 'failed')
    assert.equal(callouts('incoming_payment.approve', lastSegment(ip.id)).length, 1)
    for (const p of [first, second]) {
      const id = lastSegment(p.id)
      await eventually(async () =>
        callouts('outgoing_payment.release', id).length > 0 ? true : undefined,
      )
    }
    await new Promise((r) => setTimeout(r, 300))
    for (const p of [first, second]) {
      const releases = callouts('outgoing_payment.release', lastSegment(p.id))
      assert.equal(releases.length, 1)
      assert.deepEqual(
        [releases[0]!.payload.data.postAmount, releases[0]!.payload.data.releaseAmount],
        ['0', '1000'],
      )
      assert.equal(callouts('outgoing_payment.post', lastSegment(p.id)).length, 0)
    }
    assert.deepEqual(await balance(alice.id), before)
    assert.deepEqual(await balance(bob.id), bobBefore)
    const metrics = (await server.admin('GET', '/metrics')).body as string
    assert.match(metrics, /op_outgoing_payments_failed_total\{reason="receiver_declined"\} \d/)
    const read = await app.client.incomingPayment.get({ url: ip.id, accessToken: ipToken })
    assert.deepEqual(read.receivedAmount, usd('0'))
    assert.ok((await checkBooks(server.database.db)).balanced)
  })

  test('no answer: the local payment fails, nothing credited, and the next payment asks again', async () => {
    const ip = await incomingPayment({ metadata: { compliance: 'hang' } })
    const before = await balance(alice.id)
    const first = await createPayment(ip.id)
    const failed = await stateOf(first.id)
    assert.deepEqual(failed, {
      state: 'failed',
      failure: 'receiver not approved: core banking did not answer',
    })
    const second = await createPayment(ip.id)
    assert.equal((await stateOf(second.id)).state, 'failed')
    // Not remembered as a decline: asked once per payment.
    assert.equal(callouts('incoming_payment.approve', lastSegment(ip.id)).length, 2)
    const row = await server.database.db
      .selectFrom('incoming_payments')
      .select(['core_banking_decision', 'received_amount'])
      .where('id', '=', lastSegment(ip.id))
      .executeTakeFirstOrThrow()
    assert.deepEqual(row, { core_banking_decision: null, received_amount: 0n })
    assert.deepEqual(await balance(alice.id), before)
    assert.ok((await checkBooks(server.database.db)).balanced)
  })

  test('asked once per incoming payment, however many payments credit it', async () => {
    const ip = await app.client.incomingPayment.create(
      { url: rs, accessToken: ipToken },
      { walletAddress: bob.url },
    )
    const payments = await Promise.all(
      [1, 2, 3].map(() => createPayment(ip.id, undefined, { debitAmount: usd('1000') })),
    )
    for (const p of payments) assert.equal((await stateOf(p.id)).state, 'completed')
    assert.equal(callouts('incoming_payment.approve', lastSegment(ip.id)).length, 1)
    const row = await server.database.db
      .selectFrom('incoming_payments')
      .select(['core_banking_decision', 'received_amount'])
      .where('id', '=', lastSegment(ip.id))
      .executeTakeFirstOrThrow()
    assert.deepEqual(row, { core_banking_decision: 'approved', received_amount: 3000n })
  })
})

describe('per-asset hooks on the admin API', () => {
  test('an asset’s own hook overrides the global one; set, read, removed; bad input refused', async () => {
    const own = await startReceiver(() => json({ decision: 'decline', reason: 'EUR desk closed' }))
    try {
      const carol = await createWalletAddress(server, { path: '/carol', assetCode: 'EUR' })
      const eur = (await server.admin('GET', '/assets')).body.items.find(
        (a: any) => a.code === 'EUR',
      )
      const path = `/assets/${eur.id}/core-banking-hook`
      assert.equal((await server.admin('GET', path)).status, 404)
      const set = await server.admin('PUT', path, { url: own.url })
      assert.equal(set.status, 200, JSON.stringify(set.body))
      assert.match(set.body.secret, /^whsec_/)
      own.secrets = [set.body.secret]
      // Set again without a secret: the hook keeps its own, and it is not shown again.
      const again = await server.admin('PUT', path, { url: own.url })
      assert.equal(again.status, 200)
      assert.equal(again.body.secret, undefined)
      assert.deepEqual(
        [(await server.admin('GET', path)).body.url, (await server.admin('GET', path)).body.secret],
        [own.url, undefined],
      )
      for (const [body, field] of [
        [{ url: 'ftp://example.com/x' }, 'body.url'],
        [{ url: 'HTTPS://example.com/x' }, 'body.url'],
        [{ url: own.url, secret: 'not-a-secret' }, 'body.secret'],
      ] as const) {
        const res = await server.admin('PUT', path, body)
        assert.equal(res.status, 400)
        assert.equal(res.body.error.details.field, field)
      }
      assert.equal(
        (
          await server.admin('PUT', `/assets/${crypto.randomUUID()}/core-banking-hook`, {
            url: own.url,
          })
        ).status,
        404,
      )

      await deposit(server, carol.id, 10_000n)
      const token = await outgoingPaymentToken(server, app, carol.url)
      const carolIps = await grantToken(server, app, [
        { type: 'incoming-payment', actions: ['create'], identifier: carol.url },
      ])
      const ip = await app.client.incomingPayment.create(
        { url: rs, accessToken: carolIps },
        { walletAddress: carol.url },
      )
      const q = await app.client.quote.create({ url: rs, accessToken: quoteToken }, {
        walletAddress: carol.url,
        receiver: ip.id,
        method: 'ilp',
        debitAmount: { value: '100', assetCode: 'EUR', assetScale: 2 },
      } as never)
      const globalBefore = core.requests.length
      await assert.rejects(
        app.client.outgoingPayment.create(
          { url: rs, accessToken: token },
          { walletAddress: carol.url, quoteId: q.id },
        ),
        (err: any) => err.status === 400,
      )
      assert.equal(own.requests.length, 1)
      assert.ok(own.requests[0]!.payload, 'signed with the asset hook’s secret')
      assert.equal(core.requests.length, globalBefore)

      assert.equal((await server.admin('DELETE', path)).status, 204)
      assert.equal((await server.admin('GET', path)).status, 404)
    } finally {
      await own.close()
    }
  })
})

describe('the sample receiver (examples/core-banking-receiver.ts)', () => {
  test('verifies signatures, approves within its limit, declines above it, accepts the post', async () => {
    const sampleSecret = secret()
    const sample = coreBankingReceiver(sampleSecret)
    await new Promise<void>((resolve) => sample.listen(0, '127.0.0.1', resolve))
    const logged = mock.method(console, 'log', () => {})
    try {
      const dan = await createWalletAddress(server, { path: '/dan', assetCode: 'GBP' })
      const gbp = (await server.admin('GET', '/assets')).body.items.find(
        (a: any) => a.code === 'GBP',
      )
      const url = `http://127.0.0.1:${(sample.address() as AddressInfo).port}/`
      const set = await server.admin('PUT', `/assets/${gbp.id}/core-banking-hook`, {
        url,
        secret: sampleSecret,
      })
      assert.equal(set.status, 200, JSON.stringify(set.body))
      assert.equal(set.body.secret, undefined)
      await deposit(server, dan.id, 3_000_000n)
      const ips = await grantToken(server, app, [
        { type: 'incoming-payment', actions: ['create'], identifier: dan.url },
      ])
      const token = await outgoingPaymentToken(server, app, dan.url)
      const pay = async (value: string) => {
        const ip = await app.client.incomingPayment.create(
          { url: rs, accessToken: ips },
          { walletAddress: dan.url },
        )
        const quote = await app.client.quote.create({ url: rs, accessToken: quoteToken }, {
          walletAddress: dan.url,
          receiver: ip.id,
          method: 'ilp',
          debitAmount: { value, assetCode: 'GBP', assetScale: 2 },
        } as never)
        return app.client.outgoingPayment.create(
          { url: rs, accessToken: token },
          { walletAddress: dan.url, quoteId: quote.id },
        )
      }
      const approved = await pay('1000')
      assert.equal((await stateOf(approved.id)).state, 'completed')
      await eventually(async () => {
        const row = await server.database.db
          .selectFrom('core_banking_callouts')
          .select(['status', 'kind'])
          .where('payment_id', '=', lastSegment(approved.id))
          .executeTakeFirst()
        return row?.status === 'delivered' ? row : undefined
      })
      assert.deepEqual(logged.mock.calls.at(-1)?.arguments, [
        'outgoing_payment.post',
        lastSegment(approved.id),
        '1000',
        '0',
      ])
      await assert.rejects(pay('1500000'), (err: any) => err.status === 400)
    } finally {
      logged.mock.restore()
      sample.closeAllConnections()
      await new Promise((resolve) => sample.close(resolve))
    }
  })
})
