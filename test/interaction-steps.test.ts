import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { createHeaders } from '@interledger/http-signature-utils'
import { isFinalizedGrantWithAccessToken, isPendingGrant } from '@interledger/open-payments'
import { type ClientIdentity, createClientIdentity } from './helpers/clients.ts'
import {
  createWalletAddress,
  DEV_PASSWORD,
  startTestServer,
  type TestServer,
} from './helpers/server.ts'

/**
 * Each step of an interaction that writes the grant does so in one statement whose conditions are
 * the checks (src/auth/interaction-steps.ts). These are the refusals those conditions must keep:
 * driven over HTTP as a browser would, each checked against what the grant's row holds after.
 */

let server: TestServer
let app: ClientIdentity
let alice: { id: string; url: string }

before(async () => {
  server = await startTestServer()
  app = await createClientIdentity(server, { path: '/app', publicName: 'App' })
  alice = await createWalletAddress(server, { path: '/alice', publicName: 'Alice' })
})
after(() => server?.close())

const grantRow = (interactId: string) =>
  server.database.db
    .selectFrom('grants')
    .selectAll()
    .where('interact_id', '=', interactId)
    .executeTakeFirstOrThrow()

/** A browser: its own cookie, redirects not followed. */
function browser() {
  let cookie = ''
  return async (url: string, form?: Record<string, string>) => {
    const res = await fetch(url, {
      method: form ? 'POST' : 'GET',
      redirect: 'manual',
      headers: {
        ...(cookie && { cookie }),
        ...(form && { 'content-type': 'application/x-www-form-urlencoded' }),
      },
      body: form && new URLSearchParams(form).toString(),
    })
    const set = res.headers.get('set-cookie')
    if (set) cookie = set.split(';', 1)[0]!
    const location = res.headers.get('location')
    return {
      status: res.status,
      location: location ? new URL(location, url).href : undefined,
      text: await res.text(),
    }
  }
}

/** A pending interactive grant for Alice's account; with a finish redirect unless told not to. */
async function pendingGrant(finish = true) {
  const grant = await app.client.grant.request(
    { url: server.authUrl },
    {
      access_token: {
        access: [{ type: 'outgoing-payment', actions: ['create'], identifier: alice.url }],
      },
      interact: {
        start: ['redirect'],
        ...(finish && { finish: { method: 'redirect', uri: 'http://127.0.0.1:9/cb', nonce: 'n' } }),
      },
    },
  )
  assert.ok(isPendingGrant(grant))
  const [id, nonce] = new URL(grant.interact.redirect).pathname.split('/').slice(2)
  return { grant, id: id!, nonce: nonce! }
}

/** A pending grant, and a browser signed in to its interaction as Alice, on its consent page. */
async function signedIn() {
  const { grant, id, nonce } = await pendingGrant()
  return { grant, id, nonce, ...(await signedInAgain(grant.interact.redirect)) }
}

/** A new browser that opens an interaction's link and signs in as Alice, on its consent page. */
async function signedInAgain(link: string) {
  const go = browser()
  const signIn = (await go(link)).location!
  const identity = (await go(signIn, { walletAddress: alice.url, password: DEV_PASSWORD }))
    .location!
  const consent = (await go(identity)).location!
  const page = await go(consent)
  const csrf = /name="csrf" value="([^"]+)"/.exec(page.text)![1]!
  return { go, identity, consent, csrf }
}

test('the link with another nonce, or one no interaction has, binds no browser', async () => {
  const { grant, id } = await pendingGrant(false)
  const go = browser()
  for (const nonce of ['wrong-nonce', 'x%00y', '%E2%82']) {
    const res = await go(`${server.authUrl}/interact/${id}/${nonce}`)
    // 404, or 400 where the request guard refuses what no URL may carry (a NUL, broken UTF-8).
    assert.ok(res.status === 404 || res.status === 400, `${nonce}: ${res.status}`)
  }
  assert.equal((await grantRow(id)).interact_session_hash, null)
  // The real link still starts the interaction.
  assert.equal((await go(grant.interact.redirect)).status, 302)
  assert.notEqual((await grantRow(id)).interact_session_hash, null)
})

test('the identity step from another browser is refused and signs nobody in', async () => {
  const { grant, id } = await pendingGrant(false)
  const holder = browser()
  const signIn = (await holder(grant.interact.redirect)).location!
  const identity = (await holder(signIn, { walletAddress: alice.url, password: DEV_PASSWORD }))
    .location!
  // The signed answer, replayed by a browser that did not start the interaction.
  const stranger = await browser()(identity)
  assert.equal(stranger.status, 403)
  assert.match(stranger.text, /Start again/)
  assert.equal((await grantRow(id)).interact_signed_in_as, null)
  // The holder's browser goes on.
  assert.match((await holder(identity)).location!, /\/consent$/)
  const row = await grantRow(id!)
  assert.equal(row.interact_signed_in_as, alice.url)
  assert.equal(row.subject_wallet_address_id, alice.id)
})

test('a consent answer with a wrong form token, or from another browser, changes nothing', async () => {
  const s = await signedIn()
  const wrong = await s.go(s.consent, { csrf: 'forged', decision: 'accept' })
  assert.equal(wrong.status, 403)
  const stranger = await browser()(s.consent, { csrf: s.csrf, decision: 'accept' })
  assert.equal(stranger.status, 403)
  const row = await grantRow(s.id)
  assert.equal(row.state, 'pending')
  assert.equal(row.interact_ref_hash, null)
})

test('the link opened anew by another browser (the client has it) signs it in as nobody', async () => {
  const s = await signedIn()
  // The client opens the interaction's link itself while the holder is on the consent page.
  const client = browser()
  assert.equal((await client(s.grant.interact.redirect)).status, 302)
  let row = await grantRow(s.id)
  assert.equal(row.interact_signed_in_as, null)
  assert.equal(row.subject_wallet_address_id, null)
  // Its browser is not signed in: no consent page, no form token, no answer.
  const page = await client(s.consent)
  assert.equal(page.status, 403)
  assert.doesNotMatch(page.text, /name="csrf"/)
  const answer = await client(s.consent, { csrf: s.csrf, decision: 'accept' })
  assert.equal(answer.status, 403)
  // Nor is the holder's browser bound any more: the holder starts again from the link.
  assert.equal((await s.go(s.consent, { csrf: s.csrf, decision: 'accept' })).status, 403)
  row = await grantRow(s.id)
  assert.equal(row.state, 'pending')
  assert.equal(row.interact_ref_hash, null)
  // The holder opens the link again, signs in, and the answer counts.
  const again = await signedInAgain(s.grant.interact.redirect)
  const accepted = await again.go(again.consent, { csrf: again.csrf, decision: 'accept' })
  const ref = new URL(accepted.location!).searchParams.get('interact_ref')
  assert.ok(ref)
  const continued = await app.client.grant.continue(
    { url: s.grant.continue.uri, accessToken: s.grant.continue.access_token.value },
    { interact_ref: ref },
  )
  assert.ok(isFinalizedGrantWithAccessToken(continued))
})

test('a continuation whose form body the signature does not cover is refused', async () => {
  const s = await signedIn()
  const accepted = await s.go(s.consent, { csrf: s.csrf, decision: 'accept' })
  const ref = new URL(accepted.location!).searchParams.get('interact_ref')!
  // Signed as a body-less POST, sent with the interact_ref as a form body.
  const url = s.grant.continue.uri
  const headers = { authorization: `GNAP ${s.grant.continue.access_token.value}` }
  const signature = await createHeaders({
    request: { method: 'POST', url, headers },
    privateKey: app.privateKey,
    keyId: app.keyId,
  })
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      ...headers,
      ...(signature as unknown as Record<string, string>),
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: `interact_ref=${ref}`,
  })
  assert.equal(res.status, 401)
  assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'invalid_client')
  assert.equal((await grantRow(s.id)).state, 'approved')
  // The continuation as the client sends it still issues the token.
  const continued = await app.client.grant.continue(
    { url, accessToken: s.grant.continue.access_token.value },
    { interact_ref: ref },
  )
  assert.ok(isFinalizedGrantWithAccessToken(continued))
})

test('two answers at once: one is the answer, the other is told the request was answered', async () => {
  const s = await signedIn()
  const answers = await Promise.all([
    s.go(s.consent, { csrf: s.csrf, decision: 'accept' }),
    s.go(s.consent, { csrf: s.csrf, decision: 'deny' }),
  ])
  const results = answers.map((a) => new URL(a.location!).searchParams)
  const first = results.find((q) => q.has('interact_ref') || q.get('result') === 'grant_rejected')
  assert.ok(first, 'one answer counts')
  assert.equal(results.filter((q) => q.get('result') === 'grant_invalid').length, 1)
  const row = await grantRow(s.id)
  if (first.has('interact_ref')) {
    assert.equal(row.state, 'approved')
    const continued = await app.client.grant.continue(
      { url: s.grant.continue.uri, accessToken: s.grant.continue.access_token.value },
      { interact_ref: first.get('interact_ref')! },
    )
    assert.ok(isFinalizedGrantWithAccessToken(continued))
  } else {
    assert.equal(row.state, 'finalized')
    assert.equal(row.finalization, 'rejected')
  }
})

test('an answer after the interaction expired is refused and changes nothing', async () => {
  const s = await signedIn()
  await server.database.db
    .updateTable('grants')
    .set({ interact_expires_at: new Date(Date.now() - 1000) })
    .where('interact_id', '=', s.id)
    .execute()
  const res = await s.go(s.consent, { csrf: s.csrf, decision: 'accept' })
  assert.equal(new URL(res.location!).searchParams.get('result'), 'grant_invalid')
  const row = await grantRow(s.id)
  assert.equal(row.state, 'pending')
  assert.equal(row.interact_ref_hash, null)
})
