import { setTimeout as sleep } from 'node:timers/promises'
import type { Deps } from '../deps.ts'
import { foldDeltas } from './limit-free.ts'
import { expireOverdueTransfers } from './transfers.ts'

/**
 * Releases pending transfers nobody resolved in time (a process died between reserving and posting
 * or voiding), so that reserved funds and peer credit come back; and first folds the limit-free
 * accounts' appended deltas into their totals (limit-free.ts).
 */
export function startLedgerExpiry(
  deps: Deps,
  opts: { intervalMs?: number } = {},
): { stop(): Promise<void> } {
  const stopping = new AbortController()
  const loop = (async () => {
    while (!stopping.signal.aborted) {
      try {
        await foldDeltas(deps.db)
        const expired = await expireOverdueTransfers(deps.db, new Date())
        if (expired > 0) deps.logger.warn({ expired }, 'released overdue pending transfers')
      } catch (err) {
        if (!deps.outage.noted(err)) deps.logger.error({ err }, 'ledger expiry failed; retrying')
      }
      await sleep(opts.intervalMs ?? 10_000, undefined, { signal: stopping.signal }).catch(() => {})
    }
  })()
  return {
    stop: async () => {
      stopping.abort()
      await loop
    },
  }
}
