import type { Config } from '../config.ts'

export const WELL_KNOWN_PAY = '/.well-known/pay'

/** The public URL (and Open Payments `id`) of the wallet address at `path`. */
export function walletAddressUrl(config: Config, path: string): string {
  return `${config.openPaymentsUrl}${path === '' ? WELL_KNOWN_PAY : path}`
}
