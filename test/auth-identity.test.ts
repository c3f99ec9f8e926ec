import assert from 'node:assert/strict'
import { createHmac, randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import { after, before, test } from 'node:test'
import { isPendingGrant } from '@interledger/open-payments'
import type { Browser } from 'playwright-core'
import { launchBrowser, startCallbackServer } from './helpers/browser.ts'
import { type ClientIdentity, createClientIdentity } from './helpers/clients.ts'
import {
  createWalletAddress,
  freePort,
  startTestServer,
  type TestServer,
} from './helpers/server.ts'

/**
 * The production identity step: the ASE's identity provider, reached by the signed
 * redirect-and-return of docs/authorization.md. The identity provider here implements that
 * document with node:crypto only, so the test checks the documented protocol, not our code.
 */
const IDP_SECRET = randomBytes(32).toString('base64url')
const sign = (...parts: string[]) =>
  createHmac('sha256', IDP_SECRET).update(parts.join('\n')).digest('base64url')

let server: TestServer
let app: ClientIdentity
let alice: { url: string }
let browser: Browser
let idp: Server
let callback: Awaited<ReturnType<typeof startCallbackServer>>
/** What the identity provider answers next: the wallet address the user "signs in" as, or a failure. */
let answer: { subject?: string; deny?: boolean; badSig?: boolean } = {}
const starts: URLSearchParams[] = []

before(async () => {
  const idpPort = await freePort()
  idp = createServer((req, res) => {
    const q = new URL(req.url!, 'http://idp').searchParams
    if (!q.has('interaction')) return res.writeHead(404).end()
    starts.push(q)
    const validStart =
      q.get('sig') ===
      sign(
        'start',
        q.get('interaction')!,
        q.get('return_to')!,
        q.get('wallet_address')!,
        q.get('ts')!,
      )
    const back = new URL(q.get('return_to')!)
    const ts = String(Math.floor(Date.now() / 1000))
    const subject = answer.deny || !validStart ? '' : answer.subject!
    if (subject === '') back.searchParams.set('error', 'access_denied')
    else back.searchParams.set('subject', subject)
    back.searchParams.set('ts', ts)
    back.searchParams.set(
      'sig',
      answer.badSig ? 'forged' : sign('identity', q.get('interaction')!, subject, ts),
    )
    res.writeHead(302, { location: back.href }).end()
  })
  await new Promise<void>((resolve) => idp.listen(idpPort, '127.0.0.1', resolve))
  server = await startTestServer({
    NODE_ENV: 'production',
    IDENTITY_PROVIDER: 'redirect',
    IDP_URL: `http://127.0.0.1:${idpPort}/login`,
    IDP_SECRET,
  })
  app = await createClientIdentity(server, { path: '/app', publicName: 'App' })
  alice = await createWalletAddress(server, { path: '/alice', publicName: 'Alice' })
  browser = await launchBrowser()
  callback = await startCallbackServer()
})
after(async () => {
  await browser?.close()
  await callback?.close()
  await new Promise((r) => idp?.close(r))
  await server?.close()
})

const pendingGrant = async () => {
  const grant = await app.client.grant.request(
    { url: server.authUrl },
    {
      access_token: {
        access: [{ type: 'outgoing-payment', actions: ['create'], identifier: alice.url }],
      },
      interact: {
        start: ['redirect'],
        finish: { method: 'redirect', uri: callback.url, nonce: 'n' },
      },
    },
  )
  assert.ok(isPendingGrant(grant))
  return grant
}

test('the identity provider signs the account holder in; consent is given on our page', async () => {
  answer = { subject: alice.url }
  const grant = await pendingGrant()
  const page = await browser.newPage()
  await page.goto(grant.interact.redirect)
  await page.getByRole('button', { name: 'Accept' }).waitFor()
  const start = starts.at(-1)!
  assert.equal(start.get('wallet_address'), alice.url)
  assert.equal(start.get('client_name'), 'App')
  await page.getByRole('button', { name: 'Accept' }).click()
  await page.waitForURL((u) => u.href.startsWith(callback.url))
  await page.close()
  const ref = callback.hits.at(-1)!.get('interact_ref')!
  const done = await app.client.grant.continue(
    { url: grant.continue.uri, accessToken: grant.continue.access_token.value },
    { interact_ref: ref },
  )
  assert.ok('access_token' in done && done.access_token)
})

test('the identity provider denies: the client gets result=grant_rejected', async () => {
  answer = { deny: true }
  const grant = await pendingGrant()
  const page = await browser.newPage()
  await page.goto(grant.interact.redirect)
  await page.waitForURL((u) => u.href.startsWith(callback.url))
  await page.close()
  assert.equal(callback.hits.at(-1)!.get('result'), 'grant_rejected')
})

test('a forged answer or another account holder is refused', async () => {
  answer = { subject: alice.url, badSig: true }
  let page = await browser.newPage()
  await page.goto((await pendingGrant()).interact.redirect)
  await page.getByText('Sign-in failed').waitFor()
  await page.close()

  const bob = await createWalletAddress(server, { path: '/bob' })
  answer = { subject: bob.url }
  page = await browser.newPage()
  await page.goto((await pendingGrant()).interact.redirect)
  await page.getByText('Wrong account').waitFor()
  await page.close()
})

test('the consent page cannot be driven from another browser session', async () => {
  answer = { subject: alice.url }
  const grant = await pendingGrant()
  const page = await browser.newPage()
  await page.goto(grant.interact.redirect)
  await page.getByRole('button', { name: 'Accept' }).waitFor()
  const consentUrl = page.url()
  await page.close()
  const stranger = await browser.newContext()
  const other = await stranger.newPage()
  await other.goto(consentUrl)
  await other.getByText('Start again').waitFor()
  await stranger.close()
})
