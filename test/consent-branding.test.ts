import assert from 'node:assert/strict'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { isPendingGrant } from '@interledger/open-payments'
import type { Browser } from 'playwright-core'
import { launchBrowser, startCallbackServer } from './helpers/browser.ts'
import { type ClientIdentity, createClientIdentity } from './helpers/clients.ts'
import {
  createWalletAddress,
  DEV_PASSWORD,
  startTestServer,
  type TestServer,
} from './helpers/server.ts'

/**
 * The consent pages under an ASE's own brand, from configuration only: its name (with characters
 * that must be escaped), its colour and its logo, in headless Chromium, under a Content Security
 * Policy that allows no script and no inline style but the page's own stylesheet.
 */
const NAME = `Acme <Bank> & "Co"`
const LOGO = `data:image/svg+xml;base64,${Buffer.from(
  '<svg xmlns="http://www.w3.org/2000/svg" width="180" height="40" viewBox="0 0 180 40"><rect width="40" height="40" rx="10" fill="#7c3aed"/><path d="M11 28 20 10l9 18" stroke="#fff" stroke-width="4" fill="none" stroke-linejoin="round"/><text x="50" y="27" font-family="system-ui, sans-serif" font-size="18" font-weight="700" fill="#1e1b4b">Acme Bank</text></svg>',
).toString('base64')}`

let server: TestServer
let app: ClientIdentity
let alice: { url: string }
let browser: Browser
let callback: Awaited<ReturnType<typeof startCallbackServer>>

before(async () => {
  server = await startTestServer({
    BRAND_NAME: NAME,
    BRAND_PRIMARY_COLOR: '#7c3aed',
    BRAND_LOGO_URL: LOGO,
  })
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

test('the consent page carries the configured name, colour and logo, escaped and under a strict CSP', async () => {
  const grant = await app.client.grant.request(
    { url: server.authUrl },
    {
      access_token: {
        access: [{ type: 'outgoing-payment', actions: ['create', 'read'], identifier: alice.url }],
      },
      interact: {
        start: ['redirect'],
        finish: { method: 'redirect', uri: callback.url, nonce: 'brand-nonce' },
      },
    },
  )
  assert.ok(isPendingGrant(grant))
  const page = await browser.newPage()
  const errors: string[] = []
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text())
  })
  try {
    // The sign-in step is branded too.
    await page.goto(grant.interact.redirect)
    await page.getByLabel('Password').waitFor()
    assert.equal(await page.locator('.brand img').getAttribute('alt'), NAME)
    await page.getByLabel('Password').fill(DEV_PASSWORD)
    const [consent] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/consent') && r.request().method() === 'GET'),
      page.getByRole('button', { name: 'Sign in' }).click(),
    ])
    await page.getByRole('heading', { name: /Allow Shop App to use your account/ }).waitFor()

    const csp = consent.headers()['content-security-policy']!
    assert.match(csp, /default-src 'none'/)
    assert.match(csp, /style-src 'sha256-[A-Za-z0-9+/]+=*'/)
    assert.match(csp, /img-src data:/)
    assert.match(csp, /frame-ancestors 'none'/)
    assert.doesNotMatch(csp, /unsafe-inline|script-src/)
    assert.equal(consent.headers()['x-frame-options'], 'DENY')
    assert.equal(consent.headers()['cache-control'], 'no-store')

    // The name is text, never markup: the page shows it as written and has no <bank> element.
    assert.equal(await page.locator('footer').innerText(), NAME)
    assert.equal(await page.title(), `Allow Shop App to use your account? · ${NAME}`)
    assert.equal(await page.locator('bank').count(), 0)
    // The logo loaded (as an image: an SVG there runs nothing), and the colour is the brand's.
    const logo = page.locator('.brand img')
    assert.equal(await logo.getAttribute('alt'), NAME)
    assert.ok(await logo.evaluate((i: any) => i.complete && i.naturalWidth > 0))
    const accept = page.getByRole('button', { name: 'Accept' })
    const style = (prop: string) =>
      accept.evaluate((e, p) => (globalThis as any).getComputedStyle(e)[p], prop)
    assert.equal(await style('backgroundColor'), 'rgb(124, 58, 237)')
    assert.equal(await style('color'), 'rgb(255, 255, 255)')

    mkdirSync('artifacts', { recursive: true })
    await page.screenshot({ path: join('artifacts', 'consent-branded.png'), fullPage: true })

    await accept.click()
    await page.waitForURL((u) => u.href.startsWith(callback.url))
    assert.ok(callback.hits.at(-1)?.get('interact_ref'))
    // The stylesheet's hash matched: no policy violation was reported on any page.
    assert.deepEqual(
      errors.filter((e) => /Content Security Policy|Refused to/.test(e)),
      [],
    )
  } finally {
    await page.close()
  }
})
