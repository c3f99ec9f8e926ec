import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { ConfigError, loadConfig } from '../config.ts'
import { html, raw } from '../lib/html.ts'
import { logoSource, parseColor, parseLogoUrl, textOn } from './brand.ts'

const PNG =
  'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=='

test('colours: hex only, normalised; anything that could carry CSS is refused', () => {
  assert.equal(parseColor('#0B6E4F'), '#0b6e4f')
  assert.equal(parseColor('#abc'), '#aabbcc')
  for (const bad of ['red', 'rgb(0,0,0)', '#abcd', '#12345g', '#000; background:url(x)', ''])
    assert.equal(parseColor(bad), undefined, bad)
})

test('logos: an https image URL or a base64 data:image URI, nothing that runs or redirects', () => {
  const ok = (v: string, allowHttp = false) => parseLogoUrl(v, { allowHttp })
  assert.deepEqual(ok('https://cdn.bank.example/logo.svg'), {
    ok: true,
    value: 'https://cdn.bank.example/logo.svg',
  })
  assert.equal(ok(PNG).ok, true)
  assert.equal(ok('http://localhost:8080/logo.png', true).ok, true)
  for (const bad of [
    'javascript:alert(1)',
    'JAVASCRIPT:alert(1)',
    ' javascript:alert(1)',
    'data:text/html;base64,PHNjcmlwdD4=',
    'data:image/svg+xml,<svg onload=alert(1)>',
    'data:image/png;base64,"><script>',
    'http://bank.example/logo.png',
    'https://user:pass@bank.example/logo.png',
    '//bank.example/logo.png',
    '/logo.png',
    'ftp://bank.example/logo.png',
    `data:image/png;base64,${'A'.repeat(200_001)}`,
  ])
    assert.equal(ok(bad).ok, false, bad)
})

test('the CSP source of a logo: its origin, or data:', () => {
  const brand = { name: 'B', primaryColor: '#000000', accentColor: '#000000' }
  assert.equal(
    logoSource({ ...brand, logoUrl: 'https://cdn.bank.example/a/logo.svg' }),
    'https://cdn.bank.example',
  )
  assert.equal(logoSource({ ...brand, logoUrl: PNG }), 'data:')
  assert.equal(logoSource({ ...brand, logoUrl: undefined }), undefined)
})

test('text on the brand colour stays readable', () => {
  assert.equal(textOn('#0b6e4f'), '#ffffff')
  assert.equal(textOn('#1d4ed8'), '#ffffff')
  assert.equal(textOn('#fde047'), '#111827')
  assert.equal(textOn('#ffffff'), '#111827')
})

test('BRAND_* in the configuration: defaults, and one clear line per bad value', () => {
  const DATA_DIR = mkdtempSync(join(tmpdir(), 'op-brand-'))
  const plain = loadConfig({ DATA_DIR, SERVER_NAME: 'Bank of Here' })
  assert.deepEqual(plain.brand, {
    name: 'Bank of Here',
    logoUrl: undefined,
    primaryColor: '#2b6cb0',
    accentColor: '#d97706',
  })
  assert.equal(plain.console.enabled, true)
  const branded = loadConfig({
    DATA_DIR,
    BRAND_NAME: ' Riverside Bank ',
    BRAND_LOGO_URL: PNG,
    BRAND_PRIMARY_COLOR: '#0B6E4F',
    BRAND_ACCENT_COLOR: '#f4a259',
  })
  assert.equal(branded.brand.name, 'Riverside Bank')
  assert.equal(branded.brand.primaryColor, '#0b6e4f')
  for (const [name, value, message] of [
    [
      'BRAND_LOGO_URL',
      'javascript:alert(1)',
      /BRAND_LOGO_URL must be an http\(s\) URL or a data:image/,
    ],
    ['BRAND_PRIMARY_COLOR', 'red', /BRAND_PRIMARY_COLOR must be a hex colour/],
    ['BRAND_ACCENT_COLOR', '#12', /BRAND_ACCENT_COLOR must be a hex colour/],
    ['BRAND_NAME', '  ', /BRAND_NAME must not be empty/],
    ['CONSOLE_ENABLED', 'yes', /CONSOLE_ENABLED must be true or false/],
  ] as const)
    assert.throws(
      () => loadConfig({ DATA_DIR, [name]: value }),
      (e: Error) => e instanceof ConfigError && message.test(e.message),
    )
  // Production serves pages over https: an http logo would be mixed content.
  assert.throws(
    () =>
      loadConfig({
        DATA_DIR,
        NODE_ENV: 'production',
        BRAND_LOGO_URL: 'http://bank.example/logo.png',
        ADMIN_API_KEY: 'a'.repeat(32),
        AUTH_SECRET: 'a'.repeat(32),
        STREAM_SECRET: Buffer.alloc(32).toString('base64'),
        SERVER_PRIVATE_KEY: Buffer.alloc(32).toString('base64'),
        IDP_URL: 'https://idp.example',
        IDP_SECRET: 's'.repeat(32),
      }),
    /BRAND_LOGO_URL must be an https URL/,
  )
})

test('html`…` escapes every value unless it is markup made by html or raw', () => {
  const name = `Acme <Bank> & "Co" 'x'`
  assert.equal(
    html`<p title="${name}">${name}</p>`.value,
    '<p title="Acme &lt;Bank&gt; &amp; &quot;Co&quot; &#39;x&#39;">Acme &lt;Bank&gt; &amp; &quot;Co&quot; &#39;x&#39;</p>',
  )
  assert.equal(
    html`<ul>${['<a>', html`<li>${'<b>'}</li>`]}</ul>`.value,
    '<ul>&lt;a&gt;<li>&lt;b&gt;</li></ul>',
  )
  assert.equal(html`${null}${undefined}${false}${0}${1n}${raw('<br>')}`.value, '01<br>')
})
