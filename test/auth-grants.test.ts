import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import {
  isFinalizedGrantWithAccessToken,
  isPendingGrant,
  type PendingGrant,
} from '@interledger/open-payments'
import type { Browser } from 'playwright-core'
import { consentOverHttp } from '../demo/consent.ts'
import { introspect } from '../src/auth/introspection.ts'
import { launchBrowser, startCallbackServer } from './helpers/browser.ts'
import { type ClientIdentity, createClientIdentity } from './helpers/clients.ts'
import {
  createWalletAddress,
  DEV_PASSWORD,
  startTestServer,
  type TestServer,
} from './helpers/server.ts'

let server: TestServer
let app: ClientIdentity
let alice: { id: string; url: string }
let browser: Browser
let callback: Awaited<ReturnType<typeof startCallbackServer>>

before(async () => {
  server = await startTestServer({ GRANT_WAIT_SECONDS: '1' })
  app = await createClientIdentity(server, { path: '/shop-app', publicName: 'Shop App' })
  alice = await createWalletAddress(server, { path: '/alice', publicName: 'Alice' })
  browser = await launchBrowser()
  callback = await startCallbackServer()
})
after(async () => {
  await browser?.close()
  await callback?.close()
  await server?.close()
})

const db = () => server.database.db
const active = async (token: string, type = 'incoming-payment', action = 'create') =>
  (
    await introspect(db(), {
      access_token: token,
      access: [{ type: type as never, actions: [action] }],
    })
  ).active

const outgoingAccess = () => ({
  type: 'outgoing-payment' as const,
  actions: ['create' as const, 'read' as const],
  identifier: alice.url,
  limits: {
    debitAmount: { value: '12345', assetCode: 'USD', assetScale: 2 },
    interval: 'R/2026-01-01T00:00:00Z/P1M',
  },
})

async function requestOutgoingGrant(nonce: string, withFinish = true): Promise<PendingGrant> {
  const grant = await app.client.grant.request(
    { url: server.authUrl },
    {
      access_token: { access: [outgoingAccess()] },
      interact: {
        start: ['redirect'],
        ...(withFinish && { finish: { method: 'redirect', uri: callback.url, nonce } }),
      },
    },
  )
  assert.ok(isPendingGrant(grant))
  return grant
}

/** Drives the consent page in Chromium as the account holder would; returns the finish query. */
async function consentInBrowser(
  redirect: string,
  decision: 'Accept' | 'Deny',
  screenshot?: string,
) {
  const page = await browser.newPage()
  try {
    const hitsBefore = callback.hits.length
    await page.goto(redirect)
    await page.getByLabel('Wallet address').waitFor()
    assert.equal(await page.getByLabel('Wallet address').inputValue(), alice.url)
    await page.getByLabel('Password').fill(DEV_PASSWORD)
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.getByRole('heading', { name: /Allow Shop App to use your account/ }).waitFor()
    const text = await page.locator('main').innerText()
    assert.match(text, /Shop App/)
    assert.match(text, new RegExp(app.walletAddressUrl.replace(/[.]/g, '\\.')))
    assert.match(text, /send payments from this account/)
    assert.match(
      text,
      /At most 123\.45 USD taken from your account every month, starting 1 Jan 2026 00:00 UTC/,
    )
    if (screenshot) {
      mkdirSync('artifacts', { recursive: true })
      await page.screenshot({ path: join('artifacts', screenshot), fullPage: true })
    }
    await page.getByRole('button', { name: decision }).click()
    await page.waitForURL((u) => u.href.startsWith(callback.url))
    assert.equal(callback.hits.length, hitsBefore + 1)
    return callback.hits.at(-1)!
  } finally {
    await page.close()
  }
}

describe('grants with the official client', () => {
  test('non-interactive incoming-payment grant: token issued, introspection active', async () => {
    const grant = await app.client.grant.request(
      { url: server.authUrl },
      {
        access_token: {
          access: [
            {
              type: 'incoming-payment',
              actions: ['create', 'read', 'list'],
              identifier: alice.url,
            },
          ],
        },
      },
    )
    assert.ok(isFinalizedGrantWithAccessToken(grant))
    assert.ok(grant.access_token.value)
    assert.equal(grant.access_token.expires_in, 600)
    assert.match(grant.access_token.manage, new RegExp(`^${server.authUrl}/token/`))
    assert.match(grant.continue.uri, new RegExp(`^${server.authUrl}/continue/`))
    const result = await introspect(db(), {
      access_token: grant.access_token.value,
      access: [{ type: 'incoming-payment', actions: ['read'], identifier: alice.url }],
    })
    assert.ok(result.active)
    assert.deepEqual(result.client, { walletAddress: app.walletAddressUrl })
    assert.deepEqual(result.access, [
      { type: 'incoming-payment', actions: ['create', 'read', 'list'], identifier: alice.url },
    ])
    assert.equal(await active(grant.access_token.value, 'incoming-payment', 'complete'), true) // active; access is empty
    const none = await introspect(db(), {
      access_token: grant.access_token.value,
      access: [{ type: 'incoming-payment', actions: ['complete'] }],
    })
    assert.ok(none.active && none.access.length === 0)
    assert.deepEqual(await introspect(db(), { access_token: 'nope' }), { active: false })
  })

  test('quote grant without identifier is non-interactive', async () => {
    const grant = await app.client.grant.request(
      { url: server.authUrl },
      { access_token: { access: [{ type: 'quote', actions: ['create', 'read'] }] } },
    )
    assert.ok(isFinalizedGrantWithAccessToken(grant))
    assert.ok(await active(grant.access_token.value, 'quote', 'create'))
  })

  test('interactive grant accepted in Chromium, hash verified, then grant.continue', async () => {
    const nonce = 'client-nonce-123'
    const pending = await requestOutgoingGrant(nonce)
    assert.equal(pending.interact.finish.length > 0, true)
    assert.equal(pending.continue.wait, 1)
    const q = await consentInBrowser(pending.interact.redirect, 'Accept', 'consent-page.png')
    const interactRef = q.get('interact_ref')!
    // As the client checks it: sha-256 over nonces, ref and grant endpoint, standard base64.
    const expected = createHash('sha256')
      .update(`${nonce}\n${pending.interact.finish}\n${interactRef}\n${server.authUrl}/`)
      .digest('base64')
    assert.equal(q.get('hash'), expected)

    const grant = await app.client.grant.continue(
      { url: pending.continue.uri, accessToken: pending.continue.access_token.value },
      { interact_ref: interactRef },
    )
    assert.ok(isFinalizedGrantWithAccessToken(grant))
    assert.deepEqual(grant.access_token.access, [outgoingAccess()])
    const result = await introspect(db(), {
      access_token: grant.access_token.value,
      access: [{ type: 'outgoing-payment', actions: ['create'], identifier: alice.url }],
    })
    assert.ok(result.active)
    assert.deepEqual(result.access[0]?.limits, outgoingAccess().limits)

    // interact_ref is single use.
    await assert.rejects(
      app.client.grant.continue(
        { url: pending.continue.uri, accessToken: pending.continue.access_token.value },
        { interact_ref: interactRef },
      ),
      (err: any) => err.status === 404 && err.code === 'invalid_continuation',
    )
    // The operator sees it.
    const listed = await server.admin('GET', `/wallet-addresses/${alice.id}/grants`)
    assert.ok(
      listed.body.items.some(
        (g: any) => g.access[0].type === 'outgoing-payment' && g.finalization === 'issued',
      ),
    )
  })

  test('racing continuations with one interact_ref: one token, the rest invalid_continuation', async () => {
    const pending = await requestOutgoingGrant('n-race')
    const finish = await consentOverHttp({
      redirect: pending.interact.redirect,
      walletAddress: alice.url,
      password: DEV_PASSWORD,
      decision: 'accept',
    })
    const interactRef = finish.searchParams.get('interact_ref')!
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, () =>
        app.client.grant.continue(
          { url: pending.continue.uri, accessToken: pending.continue.access_token.value },
          { interact_ref: interactRef },
        ),
      ),
    )
    const issued = results.filter((r) => r.status === 'fulfilled')
    assert.equal(issued.length, 1)
    assert.ok(isFinalizedGrantWithAccessToken((issued[0] as PromiseFulfilledResult<any>).value))
    for (const r of results.filter((r) => r.status === 'rejected')) {
      const err = (r as PromiseRejectedResult).reason
      assert.ok(err.status === 404 && err.code === 'invalid_continuation', String(err))
    }
    const grantId = pending.continue.uri.split('/').at(-1)!
    const tokens = await db()
      .selectFrom('access_tokens as t')
      .innerJoin('grants as g', 'g.id', 't.grant_id')
      .select('t.id')
      .where('g.continue_id', '=', grantId)
      .execute()
    assert.equal(tokens.length, 1)
  })

  test('interactive grant denied: result=grant_rejected, no token', async () => {
    const pending = await requestOutgoingGrant('n-deny')
    const q = await consentInBrowser(pending.interact.redirect, 'Deny')
    assert.equal(q.get('result'), 'grant_rejected')
    assert.equal(q.get('interact_ref'), null)
    await assert.rejects(
      app.client.grant.continue(
        { url: pending.continue.uri, accessToken: pending.continue.access_token.value },
        { interact_ref: 'guess' },
      ),
      (err: any) => err.status === 404 && err.code === 'invalid_continuation',
    )
    // The interaction link is dead afterwards.
    const page = await browser.newPage()
    await page.goto(pending.interact.redirect)
    await page.waitForURL((u) => u.href.startsWith(callback.url))
    assert.equal(callback.hits.at(-1)!.get('result'), 'grant_invalid')
    await page.close()
  })

  test('a grant without finish is polled: too_fast, pending, then the token', async () => {
    const pending = await requestOutgoingGrant('unused', false)
    const poll = () =>
      app.client.grant.continue({
        url: pending.continue.uri,
        accessToken: pending.continue.access_token.value,
      })
    await assert.rejects(poll(), (err: any) => err.status === 400 && err.code === 'too_fast')
    await new Promise((r) => setTimeout(r, 1100))
    const still = await poll()
    assert.ok(!isFinalizedGrantWithAccessToken(still) && still.continue.wait === 1)

    const page = await browser.newPage()
    await page.goto(pending.interact.redirect)
    await page.getByLabel('Password').fill(DEV_PASSWORD)
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.getByRole('button', { name: 'Accept' }).click()
    await page.getByText('You accepted the request.').waitFor()
    await page.close()

    // Approval does not have to wait for the polling interval.
    const grant = await poll()
    assert.ok(isFinalizedGrantWithAccessToken(grant))
    assert.ok(await active(grant.access_token.value, 'outgoing-payment', 'create'))
  })
})

describe('token management and cancellation', () => {
  const newGrant = async () => {
    const grant = await app.client.grant.request(
      { url: server.authUrl },
      {
        access_token: {
          access: [{ type: 'incoming-payment', actions: ['create'], identifier: alice.url }],
        },
      },
    )
    assert.ok(isFinalizedGrantWithAccessToken(grant))
    return grant
  }

  test('token.rotate: new token and manage URL; the old token dies at once', async () => {
    const grant = await newGrant()
    const rotated = await app.client.token.rotate({
      url: grant.access_token.manage,
      accessToken: grant.access_token.value,
    })
    assert.notEqual(rotated.access_token.value, grant.access_token.value)
    assert.notEqual(rotated.access_token.manage, grant.access_token.manage)
    assert.equal(await active(grant.access_token.value), false)
    assert.equal(await active(rotated.access_token.value), true)
    await assert.rejects(
      app.client.token.rotate({
        url: grant.access_token.manage,
        accessToken: grant.access_token.value,
      }),
      (err: any) => err.status === 400 && err.code === 'invalid_rotation',
    )
  })

  test('token.rotate works for an expired token', async () => {
    const grant = await newGrant()
    await db()
      .updateTable('access_tokens')
      .set({ expires_at: new Date(Date.now() - 1000) })
      .where('manage_id', '=', grant.access_token.manage.split('/').at(-1)!)
      .execute()
    assert.equal(await active(grant.access_token.value), false)
    const rotated = await app.client.token.rotate({
      url: grant.access_token.manage,
      accessToken: grant.access_token.value,
    })
    assert.equal(await active(rotated.access_token.value), true)
  })

  test('token.revoke: the token is inactive; revoking again is harmless', async () => {
    const grant = await newGrant()
    await app.client.token.revoke({
      url: grant.access_token.manage,
      accessToken: grant.access_token.value,
    })
    assert.equal(await active(grant.access_token.value), false)
    await app.client.token.revoke({
      url: grant.access_token.manage,
      accessToken: grant.access_token.value,
    })
  })

  test('grant.cancel revokes every token of the grant', async () => {
    const grant = await newGrant()
    const rotated = await app.client.token.rotate({
      url: grant.access_token.manage,
      accessToken: grant.access_token.value,
    })
    await app.client.grant.cancel({
      url: grant.continue.uri,
      accessToken: grant.continue.access_token.value,
    })
    assert.equal(await active(rotated.access_token.value), false)
    await assert.rejects(
      app.client.token.rotate({
        url: rotated.access_token.manage,
        accessToken: rotated.access_token.value,
      }),
      (err: any) => err.status === 400 && err.code === 'invalid_rotation',
    )
  })

  test('the operator can revoke a grant; introspection over HTTP reflects it', async () => {
    const grant = await newGrant()
    const body = {
      access_token: grant.access_token.value,
      access: [{ type: 'incoming-payment', actions: ['create'], identifier: alice.url }],
    }
    const before = await server.admin('POST', '/introspect', body)
    assert.equal(before.body.active, true)
    assert.equal(before.body.access.length, 1)
    const listed = await server.admin('GET', `/wallet-addresses/${alice.id}/grants`)
    const id = listed.body.items.find((g: any) => g.finalization === 'issued').id
    const grantId = before.body.grant
    const revoked = await server.admin('POST', `/grants/${grantId}/revoke`)
    assert.equal(revoked.status, 200)
    assert.equal(revoked.body.finalization, 'revoked')
    assert.ok(id)
    assert.deepEqual((await server.admin('POST', '/introspect', body)).body, { active: false })
  })
})

describe('GRANT_WAIT_SECONDS=0', () => {
  test('a grant without finish may be polled at once, with wait 0', async () => {
    const eager = await startTestServer({ GRANT_WAIT_SECONDS: '0' })
    try {
      const client = await createClientIdentity(eager, { path: '/eager-app' })
      const bob = await createWalletAddress(eager, { path: '/bob' })
      const pending = await client.client.grant.request(
        { url: eager.authUrl },
        {
          access_token: { access: [{ ...outgoingAccess(), identifier: bob.url }] },
          interact: { start: ['redirect'] },
        },
      )
      assert.ok(isPendingGrant(pending))
      assert.equal(pending.continue.wait, 0)
      for (let i = 0; i < 3; i++) {
        const still = await client.client.grant.continue({
          url: pending.continue.uri,
          accessToken: pending.continue.access_token.value,
        })
        assert.ok(!isFinalizedGrantWithAccessToken(still) && still.continue.wait === 0)
      }
    } finally {
      await eager.close()
    }
  })
})
