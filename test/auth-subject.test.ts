import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { after, before, describe, test } from 'node:test'
import {
  isFinalizedGrantWithAccessToken,
  isFinalizedGrantWithSubject,
  isPendingGrant,
  type PendingGrant,
} from '@interledger/open-payments'
import type { Browser } from 'playwright-core'
import { introspect } from '../src/auth/introspection.ts'
import { launchBrowser, startCallbackServer } from './helpers/browser.ts'
import { type ClientIdentity, createClientIdentity } from './helpers/clients.ts'
import {
  createWalletAddress,
  DEV_PASSWORD,
  startTestServer,
  type TestServer,
} from './helpers/server.ts'

/**
 * Subject grants (auth-server spec 1.3.0): the client asks the account holder to prove control of a
 * wallet address. Driven with the official client, validating every response, and the consent page
 * in Chromium.
 */
let server: TestServer
let app: ClientIdentity
let alice: { id: string; url: string }
let bob: { id: string; url: string }
let browser: Browser
let callback: Awaited<ReturnType<typeof startCallbackServer>>

before(async () => {
  server = await startTestServer({ GRANT_WAIT_SECONDS: '1' })
  app = await createClientIdentity(server, { path: '/login-app', publicName: 'Login App' })
  alice = await createWalletAddress(server, { path: '/alice', publicName: 'Alice' })
  bob = await createWalletAddress(server, { path: '/bob', publicName: 'Bob' })
  browser = await launchBrowser()
  callback = await startCallbackServer()
})
after(async () => {
  await browser?.close()
  await callback?.close()
  await server?.close()
})

const subjectOf = (url: string) => ({ sub_ids: [{ id: url, format: 'uri' as const }] })

const outgoingAccess = () => ({
  type: 'outgoing-payment' as const,
  actions: ['create' as const, 'read' as const],
  identifier: alice.url,
  limits: { debitAmount: { value: '5000', assetCode: 'USD', assetScale: 2 } },
})

async function requestSubjectGrant(
  nonce: string,
  opts: { withAccess?: boolean; withFinish?: boolean } = {},
): Promise<PendingGrant> {
  const grant = await app.client.grant.request(
    { url: server.authUrl },
    {
      subject: subjectOf(alice.url),
      ...(opts.withAccess && { access_token: { access: [outgoingAccess()] } }),
      interact: {
        start: ['redirect'],
        ...(opts.withFinish !== false && {
          finish: { method: 'redirect', uri: callback.url, nonce },
        }),
      },
    },
  )
  assert.ok(isPendingGrant(grant))
  assert.match(grant.interact.redirect, new RegExp(`^${server.authUrl}/interact/`))
  return grant
}

/**
 * Signs in on the development sign-in as the holder of `signInAs`, checks what the consent page
 * says, and answers. Returns the page's text and the finish query (undefined without a finish).
 */
async function answerInBrowser(
  redirect: string,
  signInAs: string,
  decision: 'Accept' | 'Deny',
  expectFinish = true,
) {
  const page = await browser.newPage()
  try {
    const hitsBefore = callback.hits.length
    await page.goto(redirect)
    // The sign-in form is filled in with the wallet address the client asked about.
    assert.equal(await page.getByLabel('Wallet address').inputValue(), alice.url)
    await page.getByLabel('Wallet address').fill(signInAs)
    await page.getByLabel('Password').fill(DEV_PASSWORD)
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.getByRole('button', { name: decision }).waitFor()
    const text = await page.locator('main').innerText()
    await page.getByRole('button', { name: decision }).click()
    if (!expectFinish) {
      await page.getByText(/You (accepted|denied) the request/).waitFor()
      return { text, finish: undefined }
    }
    await page.waitForURL((u) => u.href.startsWith(callback.url))
    assert.equal(callback.hits.length, hitsBefore + 1)
    return { text, finish: callback.hits.at(-1)! }
  } finally {
    await page.close()
  }
}

const grantsOfAlice = async () =>
  (await server.admin('GET', `/wallet-addresses/${alice.id}/grants`)).body.items as {
    id: string
    subject?: string
    finalization?: string
    access: unknown[]
  }[]

describe('subject grants with the official client', () => {
  test('subject only: the account holder confirms; the continuation returns the subject', async () => {
    const nonce = 'subject-nonce-1'
    const pending = await requestSubjectGrant(nonce)
    const { text, finish } = await answerInBrowser(pending.interact.redirect, alice.url, 'Accept')
    assert.match(text, /Confirm your wallet address to Login App\?/)
    assert.match(text, new RegExp(`Confirm that you control ${alice.url.replace(/[.]/g, '\\.')}`))
    assert.match(text, /tell Login App that this wallet address is yours/)
    assert.doesNotMatch(text, /send payments/)
    const ref = finish!.get('interact_ref')!
    assert.equal(
      finish!.get('hash'),
      createHash('sha256')
        .update(`${nonce}\n${pending.interact.finish}\n${ref}\n${server.authUrl}/`)
        .digest('base64'),
    )

    const grant = await app.client.grant.continue(
      { url: pending.continue.uri, accessToken: pending.continue.access_token.value },
      { interact_ref: ref },
    )
    assert.ok(isFinalizedGrantWithSubject(grant))
    assert.deepEqual(grant.subject, subjectOf(alice.url))
    assert.equal(isFinalizedGrantWithAccessToken(grant), false)
    assert.equal(grant.continue.uri, pending.continue.uri)

    const listed = (await grantsOfAlice()).find((g) => g.subject === alice.url)
    assert.equal(listed?.finalization, 'issued')
    assert.deepEqual(listed?.access, [])
    // The grant can be cancelled like any other.
    await app.client.grant.cancel({
      url: grant.continue.uri,
      accessToken: grant.continue.access_token.value,
    })
  })

  test('subject and access_token: both are returned, and the token works', async () => {
    const pending = await requestSubjectGrant('subject-nonce-2', { withAccess: true })
    const { text, finish } = await answerInBrowser(pending.interact.redirect, alice.url, 'Accept')
    assert.match(text, /Allow Login App to use your account\?/)
    assert.match(text, /Confirm that you control/)
    assert.match(text, /send payments from this account/)
    assert.match(text, /At most 50\.00 USD taken from your account in total/)

    const grant = await app.client.grant.continue(
      { url: pending.continue.uri, accessToken: pending.continue.access_token.value },
      { interact_ref: finish!.get('interact_ref')! },
    )
    assert.ok(isFinalizedGrantWithSubject(grant))
    assert.ok(isFinalizedGrantWithAccessToken(grant))
    assert.deepEqual(grant.subject, subjectOf(alice.url))
    assert.deepEqual(grant.access_token.access, [outgoingAccess()])
    const result = await introspect(server.database.db, {
      access_token: grant.access_token.value,
      access: [{ type: 'outgoing-payment', actions: ['create'], identifier: alice.url }],
    })
    assert.ok(result.active && result.access.length === 1)
  })

  test('another account holder consents: no subject is returned, the client gets request_denied', async () => {
    const pending = await requestSubjectGrant('subject-nonce-3')
    const { text, finish } = await answerInBrowser(pending.interact.redirect, bob.url, 'Accept')
    // The page says so before they answer.
    assert.match(
      text,
      new RegExp(`You signed in as ${bob.url.replace(/[.]/g, '\\.')}, which does not control`),
    )
    const ref = finish!.get('interact_ref')!
    await assert.rejects(
      app.client.grant.continue(
        { url: pending.continue.uri, accessToken: pending.continue.access_token.value },
        { interact_ref: ref },
      ),
      (err: any) =>
        err.status === 401 &&
        err.code === 'request_denied' &&
        /did not prove control of/.test(err.description),
    )
    // The grant is over: nothing can be issued from it later.
    await assert.rejects(
      app.client.grant.continue(
        { url: pending.continue.uri, accessToken: pending.continue.access_token.value },
        { interact_ref: ref },
      ),
      (err: any) => err.status === 404 && err.code === 'invalid_continuation',
    )
    const row = await server.database.db
      .selectFrom('grants')
      .select(['finalization'])
      .where('continue_id', '=', pending.continue.uri.split('/').at(-1)!)
      .executeTakeFirstOrThrow()
    assert.equal(row.finalization, 'rejected')
    const tokens = await server.database.db
      .selectFrom('access_tokens as t')
      .innerJoin('grants as g', 'g.id', 't.grant_id')
      .select('t.id')
      .where('g.continue_id', '=', pending.continue.uri.split('/').at(-1)!)
      .execute()
    assert.deepEqual(tokens, [])
  })

  test('a polled subject grant answered by another account holder is refused too', async () => {
    const pending = await requestSubjectGrant('unused', { withFinish: false })
    await answerInBrowser(pending.interact.redirect, bob.url, 'Accept', false)
    await assert.rejects(
      app.client.grant.continue({
        url: pending.continue.uri,
        accessToken: pending.continue.access_token.value,
      }),
      (err: any) => err.status === 401 && err.code === 'request_denied',
    )
  })

  test('a polled subject grant confirmed by the account holder returns the subject', async () => {
    const pending = await requestSubjectGrant('unused', { withFinish: false })
    await answerInBrowser(pending.interact.redirect, alice.url, 'Accept', false)
    const grant = await app.client.grant.continue({
      url: pending.continue.uri,
      accessToken: pending.continue.access_token.value,
    })
    assert.ok(isFinalizedGrantWithSubject(grant))
    assert.deepEqual(grant.subject, subjectOf(alice.url))
  })

  test('the account holder denies: result=grant_rejected, nothing to continue', async () => {
    const pending = await requestSubjectGrant('subject-nonce-4')
    const { finish } = await answerInBrowser(pending.interact.redirect, alice.url, 'Deny')
    assert.equal(finish!.get('result'), 'grant_rejected')
    assert.equal(finish!.get('interact_ref'), null)
  })

  test('with access to the account, only its holder may answer', async () => {
    const pending = await requestSubjectGrant('subject-nonce-5', { withAccess: true })
    const page = await browser.newPage()
    await page.goto(pending.interact.redirect)
    await page.getByLabel('Wallet address').fill(bob.url)
    await page.getByLabel('Password').fill(DEV_PASSWORD)
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.getByText('Wrong account').waitFor()
    await page.close()
  })
})

describe('subject requests that are refused (400, nothing stored)', () => {
  const grantCount = async () =>
    Number(
      (
        await server.database.db
          .selectFrom('grants')
          .select((eb) => eb.fn.countAll<string>().as('n'))
          .executeTakeFirstOrThrow()
      ).n,
    )
  const interact = {
    start: ['redirect' as const],
    finish: { method: 'redirect' as const, uri: 'http://127.0.0.1:1/cb', nonce: 'n' },
  }
  const cases: [string, () => Record<string, unknown>, string, RegExp][] = [
    [
      'two sub_ids',
      () => ({
        subject: {
          sub_ids: [
            { id: alice.url, format: 'uri' },
            { id: bob.url, format: 'uri' },
          ],
        },
        interact,
      }),
      'invalid_request',
      /sub_ids/,
    ],
    ['no sub_ids', () => ({ subject: { sub_ids: [] }, interact }), 'invalid_request', /sub_ids/],
    [
      'a format other than uri',
      () => ({ subject: { sub_ids: [{ id: 'alice@example.com', format: 'email' }] }, interact }),
      'invalid_request',
      /format/,
    ],
    [
      'no interact',
      () => ({ subject: subjectOf(alice.url) }),
      'invalid_request',
      /subject request needs interaction/,
    ],
    [
      'interact without redirect',
      () => ({ subject: subjectOf(alice.url), interact: { start: [] } }),
      'invalid_request',
      /subject request needs interaction/,
    ],
    [
      'an unknown wallet address of this server',
      () => ({ subject: subjectOf(`${server.openPaymentsUrl}/nobody`), interact }),
      'invalid_request',
      /unknown wallet address/,
    ],
    [
      'a wallet address of another ASE',
      () => ({ subject: subjectOf('https://elsewhere.example/alice'), interact }),
      'invalid_request',
      /not a wallet address of this server/,
    ],
    [
      'access for another wallet address than the subject',
      () => ({
        subject: subjectOf(bob.url),
        access_token: { access: [outgoingAccess()] },
        interact,
      }),
      'invalid_request',
      /single wallet address/,
    ],
  ]
  for (const [name, body, code, description] of cases) {
    test(name, async () => {
      const before = await grantCount()
      await assert.rejects(
        app.client.grant.request({ url: server.authUrl }, body() as never),
        (err: any) => {
          assert.equal(err.status, 400, JSON.stringify(err))
          assert.equal(err.code, code)
          assert.match(err.description, description)
          return true
        },
      )
      assert.equal(await grantCount(), before)
    })
  }
})
