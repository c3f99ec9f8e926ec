import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Config } from '../config.ts'
import { localIncomingPaymentId } from '../quotes/receiver.ts'
import { WELL_KNOWN_PAY, walletAddressPath, walletAddressUrl } from './urls.ts'

const origin = 'https://wallet.example:8443'
const config = { openPaymentsUrl: origin } as Config
const id = '0b8f7a3c-9d2e-4f1a-8b6c-5e4d3c2b1a09'

// What the URL parser makes of a URL, as both functions decided before their shortcut for the
// spelling this server hands out: the shortcut must agree with it on every input.
const parsedPath = (url: string) => {
  if (!URL.canParse(url)) return undefined
  const { origin: o, pathname } = new URL(url)
  if (o !== origin) return undefined
  const path = pathname === WELL_KNOWN_PAY ? '' : pathname
  return walletAddressUrl(config, path) === url ? path : undefined
}
const parsedIncomingPaymentId = (url: string) => {
  if (!URL.canParse(url)) return undefined
  const u = new URL(url)
  if (u.origin !== origin || u.search || u.hash) return undefined
  return /^\/incoming-payments\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/.exec(
    u.pathname,
  )?.[1]
}

const suffixes = [
  '',
  '/',
  '/alice',
  '/alice/',
  '//alice',
  '/a.b/c~d_e-f',
  '/.well-known/pay',
  '/./alice',
  '/../alice',
  '/alice/..',
  '/alice/.',
  '/.alice',
  '/..alice',
  '/%61lice',
  '/alice%2F',
  '/ali ce',
  '/alice?x=1',
  '/alice#f',
  '/ALICE',
  '/alice\\bob',
  '/alicé',
  `/incoming-payments/${id}`,
  `/incoming-payments/${id.toUpperCase()}`,
  `/incoming-payments/${id}/`,
  `/incoming-payments/${id}?`,
  `/incoming-payments/${id}#`,
  `/incoming-payments/./${id}`,
  `//incoming-payments/${id}`,
  `/incoming-payments/${id}x`,
]
const prefixes = [
  origin,
  'https://wallet.example',
  'https://WALLET.example:8443',
  'https://wallet.example:8443.evil.example',
  'https://wallet.example:8443@evil.example',
  'http://wallet.example:8443',
  `${origin}1`,
]

test('the shortcuts for our own spelling of URLs agree with the URL parser on every input', () => {
  let ours = 0
  for (const prefix of prefixes) {
    for (const suffix of suffixes) {
      const url = prefix + suffix
      assert.equal(walletAddressPath(config, url), parsedPath(url), url)
      assert.equal(localIncomingPaymentId(origin, url), parsedIncomingPaymentId(url), url)
      if (walletAddressPath(config, url) !== undefined) ours++
    }
  }
  // Not vacuous: some of them name a wallet address of this server.
  assert.ok(ours >= 6)
  assert.equal(walletAddressPath(config, `${origin}/.well-known/pay`), '')
  assert.equal(localIncomingPaymentId(origin, `${origin}/incoming-payments/${id}`), id)
})
