import { setTimeout as sleep } from 'node:timers/promises'
import type { Deps } from '../deps.ts'
import { recordExpiries } from './service.ts'

/**
 * Records incoming payments that expired unpaid (`incoming_payment.expired`), once each, in the
 * workers role. Any number of processes may run it (see `recordExpiries`).
 */
export function startIncomingPaymentExpiry(
  deps: Deps,
  opts: { intervalMs: number },
): { stop(): Promise<void> } {
  const stopping = new AbortController()
  const loop = (async () => {
    while (!stopping.signal.aborted) {
      try {
        while ((await recordExpiries(deps.db)) > 0 && !stopping.signal.aborted) {}
      } catch (err) {
        if (!deps.outage.noted(err))
          deps.logger.error({ err }, 'recording incoming payment expiries failed; retrying')
      }
      await sleep(opts.intervalMs, undefined, { signal: stopping.signal }).catch(() => {})
    }
  })()
  return {
    stop: async () => {
      stopping.abort()
      await loop
    },
  }
}
