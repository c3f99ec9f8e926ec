import type { Config } from '../config.ts'

export const WELL_KNOWN_PAY = '/.well-known/pay'

/** The public URL (and Open Payments `id`) of the wallet address at `path`. */
export function walletAddressUrl(config: Config, path: string): string {
  return `${config.openPaymentsUrl}${path === '' ? WELL_KNOWN_PAY : path}`
}

/**
 * A path that URL parsing leaves as it is: segments of unreserved characters, none empty, `.` or
 * `..` (which parsing would resolve).
 */
const PLAIN_PATH = /^(?:\/(?!\.\.?(?:\/|$))[A-Za-z0-9._~-]+)+$/

/**
 * The wallet address path a URL names on this server: only the canonical URL (the document's `id`)
 * counts, so no other spelling can alias a wallet address.
 */
export function walletAddressPath(config: Config, url: string): string | undefined {
  // The spelling every id we hand out has is its own canonical form: no parse needed.
  if (url.startsWith(config.openPaymentsUrl)) {
    const rest = url.slice(config.openPaymentsUrl.length)
    if (PLAIN_PATH.test(rest)) return rest === WELL_KNOWN_PAY ? '' : rest
  }
  if (!URL.canParse(url)) return undefined
  const { origin, pathname } = new URL(url)
  if (origin !== config.openPaymentsUrl) return undefined
  const path = pathname === WELL_KNOWN_PAY ? '' : pathname
  return walletAddressUrl(config, path) === url ? path : undefined
}
