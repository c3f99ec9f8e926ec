import assert from 'node:assert/strict'
import { mkdirSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { sql } from 'kysely'
import { pino } from 'pino'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { createAdminApp } from '../src/admin/app.ts'
import { formatAmount } from '../src/lib/amount.ts'
import { createDeps } from '../src/server.ts'
import { usd } from './helpers/amounts.ts'
import { launchBrowser } from './helpers/browser.ts'
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
  request,
  startTestServer,
  type TestServer,
} from './helpers/server.ts'
import { type Receiver, startReceiver } from './helpers/webhook-receiver.ts'

/**
 * The operator console in headless Chromium, on a server with real payments (the official Open
 * Payments client) and real webhook deliveries (receivers on loopback, one of them failing): what
 * the pages show is compared with what the admin API answers, replay is done by clicking, and the
 * session and CSRF defences are tried the way a browser and an attacker would.
 */
let server: TestServer
let app: ClientIdentity
let browser: Browser
let context: BrowserContext
let page: Page
let good: Receiver
let bad: Receiver
let badEndpointId: string
let attacker: Server
let attackerUrl: string
/** The UTC day the payments were made. */
let setUpOn: string
/** Console messages the browser reported (a CSP violation would be one). */
const browserErrors: string[] = []

const idOf = (url: string) => url.split('/').at(-1)!
/** The logo an ASE would configure: an inline SVG, so nothing is fetched from elsewhere. */
const LOGO = `data:image/svg+xml;base64,${Buffer.from(
  `<svg xmlns="http://www.w3.org/2000/svg" width="190" height="36" viewBox="0 0 190 36"><circle cx="18" cy="18" r="16" fill="#0b6e4f"/><path d="M7 21c4-4 7-4 11 0s7 4 11 0" stroke="#fff" stroke-width="3" fill="none" stroke-linecap="round"/><path d="M7 14c4-4 7-4 11 0s7 4 11 0" stroke="#f4a259" stroke-width="3" fill="none" stroke-linecap="round"/><text x="42" y="24" font-family="system-ui, sans-serif" font-size="17" font-weight="700" fill="#12263a">Riverside Bank</text></svg>`,
).toString('base64')}`

before(async () => {
  server = await startTestServer({
    WEBHOOK_POLL_MS: '50',
    WEBHOOK_RETRY_BASE_MS: '100',
    WEBHOOK_RETRY_PERIOD_SECONDS: '2',
    WEBHOOK_TIMEOUT_MS: '1000',
    WEBHOOK_LEASE_SECONDS: '5',
    BRAND_NAME: 'Riverside Bank',
    BRAND_LOGO_URL: LOGO,
    BRAND_PRIMARY_COLOR: '#0b6e4f',
    BRAND_ACCENT_COLOR: '#f4a259',
  })
  const db = server.database.db

  // Webhook receivers: one that takes everything, one that fails until told otherwise.
  good = await startReceiver(() => 204)
  bad = await startReceiver(() => 500)
  for (const [receiver, types] of [
    [
      good,
      ['incoming_payment.created', 'incoming_payment.completed', 'outgoing_payment.completed'],
    ],
    [bad, ['incoming_payment.completed', 'outgoing_payment.failed']],
  ] as const) {
    const res = await server.admin('POST', '/webhook-endpoints', {
      url: receiver.url,
      eventTypes: types,
      description: receiver === bad ? 'core banking (down)' : 'ledger sync',
    })
    assert.equal(res.status, 201)
    receiver.secrets = [res.body.secret]
    if (receiver === bad) badEndpointId = res.body.id
  }

  // Wallet addresses in two assets, payments between them with the official client.
  app = await createClientIdentity(server, { path: '/shop', publicName: 'Corner Shop' })
  const alice = await createWalletAddress(server, { path: '/alice', publicName: 'Alice Moreau' })
  const bob = await createWalletAddress(server, { path: '/bob', publicName: 'Bob Okafor' })
  const carol = await createWalletAddress(server, {
    path: '/carol',
    assetCode: 'EUR',
    assetScale: 2,
    publicName: 'Carol Jansen',
  })
  await deposit(server, alice.id, 250_000n)
  await deposit(server, carol.id, 48_050n)
  const ipToken = await grantToken(server, app, [
    { type: 'incoming-payment', actions: ['create', 'read'], identifier: bob.url },
  ])
  const quoteToken = await grantToken(server, app, [{ type: 'quote', actions: ['create'] }])
  const opToken = await outgoingPaymentToken(server, app, alice.url)
  // A payment asking for `fault: refuse` is credited nothing (a trigger at the database), so it
  // fails: the console must show failures too.
  await sql`CREATE FUNCTION console_test_fault() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF OLD.metadata->>'fault' = 'refuse' THEN RETURN NULL; END IF;
      RETURN NEW;
    END $$`.execute(db)
  await sql`CREATE TRIGGER console_test_fault BEFORE UPDATE ON incoming_payments FOR EACH ROW
    WHEN (NEW.received_amount > OLD.received_amount) EXECUTE FUNCTION console_test_fault()`.execute(
    db,
  )
  const incoming = (value: string, metadata?: Record<string, unknown>) =>
    app.client.incomingPayment.create(
      { url: server.openPaymentsUrl, accessToken: ipToken },
      { walletAddress: bob.url, incomingAmount: usd(value), ...(metadata && { metadata }) },
    )
  const pay = async (receiver: string) => {
    const quote = await app.client.quote.create(
      { url: server.openPaymentsUrl, accessToken: quoteToken },
      { walletAddress: alice.url, receiver, method: 'ilp' },
    )
    const op = await app.client.outgoingPayment.create(
      { url: server.openPaymentsUrl, accessToken: opToken },
      { walletAddress: alice.url, quoteId: quote.id },
    )
    return eventually(async () => {
      const p = await server.admin('GET', `/outgoing-payments/${idOf(op.id)}`)
      return p.body.state === 'sending' ? undefined : p.body
    })
  }
  // Spread over the last days (created_at moved back at the database), so the chart has a shape.
  const paid: [string, number][] = [
    ['12500', 6],
    ['8990', 5],
    ['31000', 3],
    ['4250', 2],
    ['19999', 1],
    ['6400', 0],
  ]
  for (const [value, daysAgo] of paid) {
    const ip = await incoming(value, { invoice: `INV-${value}` })
    const op = await pay(ip.id)
    assert.equal(op.state, 'completed')
    for (const table of ['incoming_payments', 'outgoing_payments'] as const) {
      await sql`UPDATE ${sql.table(table)} SET created_at = created_at - make_interval(days => ${daysAgo})
        WHERE id = ${table === 'incoming_payments' ? idOf(ip.id) : op.id}`.execute(db)
    }
  }
  setUpOn = new Date().toISOString().slice(0, 10)
  const refused = await incoming('2000', { fault: 'refuse' })
  assert.equal((await pay(refused.id)).state, 'failed')
  await incoming('1500') // left open
  const cancelled = await incoming('3000')
  assert.equal(
    (
      await server.admin('POST', `/incoming-payments/${idOf(cancelled.id)}/cancel`, {
        reason: 'duplicate invoice',
      })
    ).status,
    200,
  )

  // Every delivery has ended: the good receiver's delivered, the bad one's dead after 2 s.
  await eventually(async () => {
    const pending = await server.admin('GET', '/webhook-deliveries?status=pending')
    return pending.body.items.length === 0 ? true : undefined
  }, 15_000)

  // A page on another site (localhost is not 127.0.0.1) that posts to the console on load.
  attacker = createServer((req, res) => {
    const target = new URL(req.url!, 'http://x').searchParams.get('target')!
    res.writeHead(200, { 'content-type': 'text/html' }).end(`<!doctype html>
<form method="post" action="${target}"><input name="csrf" value="guessed"></form>
<script>document.forms[0].submit()</script>`)
  })
  await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve))
  attackerUrl = `http://localhost:${(attacker.address() as AddressInfo).port}/`

  browser = await launchBrowser()
  context = await browser.newContext({ viewport: { width: 1360, height: 900 } })
  page = await context.newPage()
  page.on('console', (m) => {
    if (m.type() === 'error') browserErrors.push(m.text())
  })
})

after(async () => {
  await browser?.close()
  await good?.close()
  await bad?.close()
  if (attacker) await new Promise((resolve) => attacker.close(resolve))
  await server?.close()
})

const url = (path: string) => `${server.adminUrl}${path}`
const text = async (selector: string) => (await page.locator(selector).innerText()).trim()
/** Page text of an amount without its thousands separators, e.g. `1250.00 USD`. */
const plain = (s: string) => s.replaceAll(',', '').replace(/\s+/g, ' ').trim()
const expected = (value: string, scale: number, code: string) =>
  `${formatAmount(BigInt(value), scale)} ${code}`
async function all(path: string) {
  const res = await server.admin('GET', `${path}${path.includes('?') ? '&' : '?'}first=100`)
  assert.equal(res.status, 200)
  assert.equal(res.body.pagination.hasNextPage, false)
  return res.body.items as any[]
}
const sessionCookie = async () =>
  (await context.cookies(url('/console'))).find((c) => c.name === 'op_console')

describe('operator console', () => {
  test('an unsigned visitor is sent to sign in; a wrong key fails and opens no session', async () => {
    const res = await page.goto(url('/console/webhooks'))
    assert.equal(new URL(page.url()).pathname, '/console/sign-in')
    assert.equal(new URL(page.url()).searchParams.get('next'), '/console/webhooks')
    assert.equal(res!.status(), 200)
    await page.getByLabel('Admin API key').fill(`${server.adminKey}x`)
    const [answer] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST'),
      page.getByRole('button', { name: 'Sign in' }).click(),
    ])
    assert.equal(answer.status(), 401)
    await page.getByText('That key is not valid.').waitFor()
    mkdirSync('artifacts', { recursive: true })
    await page.screenshot({ path: join('artifacts', 'console-sign-in.png') })
    assert.equal(await sessionCookie(), undefined)
    const rows = await sql<{ n: string }>`SELECT count(*) AS n FROM console_sessions`.execute(
      server.database.db,
    )
    assert.equal(Number(rows.rows[0]!.n), 0)
  })

  test('the right key opens a session: an HttpOnly, SameSite=Strict cookie that is not the key', async () => {
    await page.getByLabel('Admin API key').fill(server.adminKey)
    await page.getByRole('button', { name: 'Sign in' }).click()
    await page.waitForURL(url('/console/webhooks'))
    const cookie = (await sessionCookie())!
    assert.ok(cookie, 'session cookie set')
    assert.equal(cookie.httpOnly, true)
    assert.equal(cookie.sameSite, 'Strict')
    assert.equal(cookie.path, '/console')
    assert.ok(!cookie.value.includes(server.adminKey) && cookie.value.length >= 43)
    // It expires with the session (8 h by default), not with the browser only.
    const hours = (cookie.expires * 1000 - Date.now()) / 3_600_000
    assert.ok(hours > 7.9 && hours <= 8, `expires in ${hours} h`)
    // Scripts cannot read it.
    assert.equal(await page.evaluate(() => (globalThis as any).document.cookie), '')
  })

  test('pages carry a script-free CSP, refuse framing and are not stored', async () => {
    const res = (await page.goto(url('/console')))!
    const h = res.headers()
    assert.match(h['content-security-policy']!, /default-src 'none'/)
    assert.match(h['content-security-policy']!, /frame-ancestors 'none'/)
    assert.match(h['content-security-policy']!, /style-src 'self'(;|$)/)
    assert.doesNotMatch(h['content-security-policy']!, /unsafe-inline|script-src/)
    assert.equal(h['x-frame-options'], 'DENY')
    assert.equal(h['cache-control'], 'no-store')
    assert.equal(h['x-content-type-options'], 'nosniff')
    // The stylesheet and the logo loaded under that policy: the page is styled and branded.
    assert.equal(
      await page
        .locator('.topbar')
        .evaluate((e) => (globalThis as any).getComputedStyle(e).borderTopColor),
      'rgb(11, 110, 79)',
    )
    assert.ok(await page.locator('.brandmark img').evaluate((i: any) => i.naturalWidth > 0))
    assert.equal(await page.title(), 'Overview · Riverside Bank console')
  })

  test('the overview shows what the admin API returns: counts, states, balances, dead letters', async () => {
    await page.goto(url('/console'))
    const stats = (await server.admin('GET', '/payment-stats?days=14')).body
    for (const [kind, states] of [
      ['incoming', ['open', 'completed', 'expired', 'cancelled']],
      ['outgoing', ['sending', 'completed', 'failed', 'cancelled']],
    ] as const) {
      const card = `#kpi-${kind}`
      let total = 0
      for (const state of states) {
        // The list endpoint, filtered by state, counted independently of the stats query.
        const listed = (await all(`/${kind}-payments?state=${state}`)).length
        assert.equal(stats[kind].states[state], listed, `${kind} ${state}`)
        const shown = await text(`${card} .state-count[data-state="${state}"]`)
        assert.equal(shown, `${state} ${listed}`)
        total += listed
      }
      assert.equal(await text(`${card} .value`), String(total))
      assert.equal(total, (await all(`/${kind}-payments`)).length)
    }
    assert.equal(await text('#kpi-incoming .value'), '9')
    assert.equal(await text('#kpi-outgoing .value'), '7')

    const dead = await all('/webhook-deliveries?status=dead')
    assert.equal(dead.length, 7) // 6 incoming_payment.completed + 1 outgoing_payment.failed
    assert.equal(await text('#kpi-dead .value'), String(dead.length))
    assert.equal(await text('#kpi-pending .value'), '0')
    const metrics = (await server.admin('GET', '/metrics')).body as string
    assert.match(metrics, new RegExp(`op_webhook_queue\\{state="dead"\\} ${dead.length}\\b`))

    // Wallet addresses and their balances.
    const wallets = await all('/wallet-addresses')
    const rows = page.locator('#wallet-addresses tbody tr')
    assert.equal(await rows.count(), wallets.length)
    for (const wa of wallets) {
      const b = (await server.admin('GET', `/wallet-addresses/${wa.id}/balance`)).body
      const row = page.locator(`#wallet-addresses tr[data-id="${wa.id}"]`)
      for (const col of ['balance', 'reserved', 'available'] as const) {
        assert.equal(
          plain(await row.locator(`td.${col}`).innerText()),
          expected(b[col], b.assetScale, b.assetCode),
          `${wa.url} ${col}`,
        )
      }
    }
    const alice = wallets.find((w) => w.path === '/alice')!
    const aliceBalance = (await server.admin('GET', `/wallet-addresses/${alice.id}/balance`)).body
    assert.equal(
      aliceBalance.balance,
      String(250_000 - 12_500 - 8_990 - 31_000 - 4_250 - 19_999 - 6_400),
    )

    // Recent payments: the newest first, as the API lists them, with their states and amounts.
    for (const kind of ['incoming', 'outgoing'] as const) {
      const listed = (await all(`/${kind}-payments`)).slice(0, 8)
      const shown = page.locator(`#recent-${kind} tbody tr`)
      assert.equal(await shown.count(), listed.length)
      for (const [i, p] of listed.entries()) {
        const row = shown.nth(i)
        assert.equal(await row.getAttribute('data-id'), p.id)
        assert.equal((await row.locator('td.state').innerText()).trim(), p.state)
        const amount = kind === 'incoming' ? p.receivedAmount : p.sentAmount
        assert.equal(
          plain(await row.locator(kind === 'incoming' ? 'td.received' : 'td.sent').innerText()),
          expected(amount, p.assetScale, p.assetCode),
        )
      }
    }

    // The chart's data, day by day, is the API's volume.
    for (const kind of ['incoming', 'outgoing'] as const) {
      for (const v of stats[kind].volume.filter((x: any) => x.assetCode === 'USD')) {
        const row = page.locator(`.volume-table tr[data-date="${v.date}"] td`)
        const [count, amount] = kind === 'incoming' ? [1, 2] : [3, 4]
        // The table sits in a closed <details>: its text is there, not rendered.
        assert.equal(await row.nth(count).textContent(), String(v.count), `${kind} ${v.date}`)
        assert.equal(
          plain((await row.nth(amount).textContent())!),
          formatAmount(BigInt(v.amount), 2),
        )
      }
    }
    assert.equal(await page.locator('.chart rect.bar-in').count(), 14)
    assert.ok((await page.locator('.chart rect.bar-in[height="0.0"]').count()) < 14)

    await page.screenshot({ path: join('artifacts', 'console.png'), fullPage: true })
  })

  test('a payment opens in a detail view with the API’s figures and its ledger transfers', async () => {
    await page.goto(url('/console'))
    const first = page.locator('#recent-outgoing tbody tr').first()
    const id = (await first.getAttribute('data-id'))!
    await first.locator('a').click()
    await page.waitForURL(url(`/console/outgoing-payments/${id}`))
    const api = (await server.admin('GET', `/outgoing-payments/${id}`)).body
    assert.equal(await text('[data-field="state"]'), api.state)
    for (const f of ['debitAmount', 'feeAmount', 'sentAmount'] as const)
      assert.equal(
        plain(await text(`[data-field="${f}"]`)),
        expected(api[f], api.assetScale, api.assetCode),
      )
    assert.equal(
      plain(await text('[data-field="receiveAmount"]')),
      expected(api.receiveAmount, api.receiveAssetScale, api.receiveAssetCode),
    )
    assert.equal(await page.locator('#transfers tbody tr').count(), api.transfers.length)
    await page.screenshot({ path: join('artifacts', 'console-payment.png'), fullPage: true })

    const failed = (await all('/outgoing-payments?state=failed'))[0]
    await page.goto(url(`/console/outgoing-payments/${failed.id}`))
    assert.equal(await text('[data-field="state"]'), 'failed')
    assert.equal(await text('[data-field="failure"]'), failed.failure)

    await page.goto(url('/console/incoming-payments?state=cancelled'))
    await page.locator('table.incoming tbody tr a').first().click()
    const ipId = idOf(page.url())
    const ip = (await server.admin('GET', `/incoming-payments/${ipId}`)).body
    assert.equal(await text('[data-field="state"]'), 'cancelled')
    assert.equal(
      plain(await text('[data-field="receivedAmount"]')),
      expected(ip.receivedAmount, 2, 'USD'),
    )
    await page.getByText('duplicate invoice').waitFor()
  })

  test('bad links are pages, not errors: malformed ids 400, unknown ones 404', async () => {
    for (const [path, status] of [
      ['/console/incoming-payments/not-a-uuid', 400],
      ['/console/outgoing-payments/00000000-0000-4000-8000-000000000000', 404],
      ['/console/webhook-deliveries/00000000-0000-4000-8000-000000000000', 404],
      ['/console/incoming-payments?state=nonsense', 400],
      ['/console/incoming-payments?cursor=00000000-0000-4000-8000-000000000000', 400],
      ['/console/no-such-page', 404],
    ] as const) {
      const res = (await page.goto(url(path)))!
      assert.equal(res.status(), status, path)
      assert.match(res.headers()['content-type']!, /^text\/html/)
      assert.equal(res.headers()['x-frame-options'], 'DENY', path)
    }
  })

  test('a cross-site POST is refused, with or without the session cookie', async () => {
    const deadBefore = (await all('/webhook-deliveries?status=dead')).length
    const target = url(`/console/webhook-endpoints/${badEndpointId}/replay-dead-letters`)

    // In the signed-in browser, another site's page posts to the console on load.
    const [answer] = await Promise.all([
      page.waitForResponse((r) => r.url() === target),
      page.goto(`${attackerUrl}?target=${encodeURIComponent(target)}`),
    ])
    assert.equal(answer.status(), 403)
    await page.getByText('This form was sent from another site.').waitFor()

    // A same-site attacker (a sibling subdomain) would get the cookie sent: Fetch Metadata still
    // says cross-site, and without the page's CSRF token the form is refused anyway.
    const cookie = `op_console=${(await sessionCookie())!.value}`
    await page.goto(url('/console/webhooks'))
    const csrf = await page.locator('form.signout input[name=csrf]').inputValue()
    const post = (headers: Record<string, string>, body: Record<string, string>) =>
      request(target, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded', cookie, ...headers },
        body: new URLSearchParams(body).toString(),
      })
    assert.equal((await post({ 'sec-fetch-site': 'cross-site' }, { csrf })).status, 403)
    assert.equal((await post({ 'sec-fetch-site': 'same-site' }, { csrf })).status, 403)
    assert.equal((await post({ 'sec-fetch-site': 'same-origin' }, {})).status, 403)
    assert.equal((await post({ 'sec-fetch-site': 'same-origin' }, { csrf: 'guessed' })).status, 403)
    assert.equal((await post({}, { csrf: `${csrf}x` })).status, 403)
    // The session cookie does not open the JSON API; the Bearer key still does.
    assert.equal((await request(url('/wallet-addresses'), { headers: { cookie } })).status, 401)
    assert.equal((await server.admin('GET', '/wallet-addresses')).status, 200)

    assert.equal((await all('/webhook-deliveries?status=dead')).length, deadBefore)
  })

  test('replay from the console: one delivery, then every dead letter of an endpoint', async () => {
    bad.answer = () => 204
    await page.goto(url('/console/webhooks?status=dead'))
    const deadRows = page.locator('#deliveries tbody tr')
    await page.screenshot({ path: join('artifacts', 'console-webhooks.png'), fullPage: true })
    const before = await deadRows.count()
    assert.equal(before, (await all('/webhook-deliveries?status=dead')).length)
    assert.equal(await text('#kpi-dead .value'), String(before))

    const row = deadRows.first()
    const deliveryId = (await row.getAttribute('data-id'))!
    await row.getByRole('button', { name: 'Replay' }).click()
    await page.getByText('Replayed 1 delivery: queued to be sent now.').waitFor()
    assert.equal(new URL(page.url()).searchParams.get('status'), 'dead')
    const delivered = await eventually(async () => {
      const d = (await server.admin('GET', `/webhook-deliveries/${deliveryId}`)).body
      return d.status === 'delivered' ? d : undefined
    })
    assert.ok(bad.accepted.some((r) => r.webhookId === delivered.eventId && r.payload))

    await page.reload()
    assert.equal(await text('#kpi-dead .value'), String(before - 1))
    await page
      .locator(`#endpoints tr[data-id="${badEndpointId}"]`)
      .getByRole('button', { name: 'Replay dead letters' })
      .click()
    await page.getByText(`Replayed ${before - 1} deliveries: queued to be sent now.`).waitFor()
    await eventually(
      async () =>
        (await all('/webhook-deliveries?status=dead')).length === 0 &&
        (await all('/webhook-deliveries?status=pending')).length === 0
          ? true
          : undefined,
      10_000,
    )
    await page.goto(url('/console'))
    assert.equal(await text('#kpi-dead .value'), '0')
    // Every event the bad endpoint had given up on arrived, signed.
    assert.equal(
      new Set(bad.accepted.filter((r) => r.payload).map((r) => r.webhookId)).size,
      before,
    )
  })

  test('the delivery page shows its attempts and payload', async () => {
    const d = (await all(`/webhook-deliveries?endpointId=${badEndpointId}&status=delivered`))[0]
    await page.goto(url(`/console/webhook-deliveries/${d.id}`))
    assert.equal(await text('[data-field="status"]'), 'delivered')
    assert.equal(await page.locator('#attempts tbody tr').count(), d.attempts.length)
    assert.ok(d.attempts.length >= 2)
    const payload = JSON.parse(await text('#payload pre'))
    assert.equal(payload.id, d.eventId)
  })

  test('sign-out ends the session on the server: the old cookie no longer works', async () => {
    const cookie = `op_console=${(await sessionCookie())!.value}`
    await page.goto(url('/console'))
    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.getByText('You are signed out.').waitFor()
    assert.equal(await sessionCookie(), undefined)
    const res = await request(url('/console'), { headers: { cookie }, redirect: 'manual' })
    assert.equal(res.status, 303)
    assert.equal(res.headers.get('location'), '/console/sign-in')
  })

  test('sessions expire, and end when the admin key changes', async () => {
    const signIn = async () => {
      const res = await request(url('/console/sign-in'), {
        method: 'POST',
        redirect: 'manual',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ key: server.adminKey }).toString(),
      })
      assert.equal(res.status, 303)
      return res.headers.get('set-cookie')!.split(';')[0]!
    }
    const open = async (cookie: string) =>
      (await request(url('/console'), { headers: { cookie }, redirect: 'manual' })).status

    const expiring = await signIn()
    assert.equal(await open(expiring), 200)
    await sql`UPDATE console_sessions SET last_seen_at = now() - interval '31 minutes'`.execute(
      server.database.db,
    )
    assert.equal(await open(expiring), 303) // idle for longer than CONSOLE_IDLE_SECONDS

    const cookie = await signIn()
    const rotated = createAdminApp(
      createDeps({
        config: { ...server.config, adminApiKey: `${server.adminKey}-rotated` },
        db: server.database.db,
        logger: pino({ level: 'silent' }),
      }),
    )
    const res = await rotated.inject({ url: '/console', headers: { cookie } })
    await rotated.close()
    assert.equal(res.statusCode, 303)
    assert.equal(await open(cookie), 200) // with the unchanged key it still works
  })

  test('GET /payment-stats: the window is calendar days (UTC); a bad window is 400', async (t) => {
    if (new Date().toISOString().slice(0, 10) !== setUpOn) return t.skip('midnight (UTC) passed')
    const today = (await server.admin('GET', '/payment-stats?days=1')).body
    assert.equal(today.from, `${new Date().toISOString().slice(0, 10)}T00:00:00.000Z`)
    // Created today: 64.00 paid, the refused, the open and the cancelled one; 2 outgoing.
    assert.deepEqual(today.incoming.states, { open: 2, completed: 1, expired: 0, cancelled: 1 })
    assert.deepEqual(today.outgoing.states, { sending: 0, completed: 1, failed: 1, cancelled: 0 })
    assert.deepEqual(today.outgoing.volume, [
      {
        date: today.from.slice(0, 10),
        assetCode: 'USD',
        assetScale: 2,
        count: 2,
        amount: '6400',
      },
    ])
    for (const days of ['0', '367', 'x'])
      assert.equal((await server.admin('GET', `/payment-stats?days=${days}`)).status, 400)
  })

  test('with CONSOLE_ENABLED=false the listener has no console', async () => {
    const off = createAdminApp(
      createDeps({
        config: { ...server.config, console: { ...server.config.console, enabled: false } },
        db: server.database.db,
        logger: pino({ level: 'silent' }),
      }),
    )
    const res = await off.inject({ url: '/console/sign-in' })
    await off.close()
    assert.equal(res.statusCode, 401) // no such route: the API's key check answers
    assert.equal(res.json().error.code, 'unauthorized')
  })

  test('no page broke its Content Security Policy', () => {
    assert.deepEqual(
      browserErrors.filter((e) => /Content Security Policy|Refused to/.test(e)),
      [],
    )
  })
})
