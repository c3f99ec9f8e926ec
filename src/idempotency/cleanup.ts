import { setTimeout as sleep } from 'node:timers/promises'
import type { Deps } from '../deps.ts'
import { deleteExpiredKeys } from './store.ts'

/**
 * Deletes expired Idempotency-Keys (resource server and admin API) now and then, so the table
 * holds about one key lifetime (IDEMPOTENCY_KEY_TTL_SECONDS) of requests. Expired keys are
 * harmless meanwhile: a new request takes an expired key over.
 */
export function startIdempotencyCleanup(
  deps: Deps,
  opts: { intervalMs?: number } = {},
): { stop(): Promise<void> } {
  const stopping = new AbortController()
  const loop = (async () => {
    while (!stopping.signal.aborted) {
      try {
        const deleted = await deleteExpiredKeys(deps.db, new Date())
        if (deleted > 0) deps.logger.debug({ deleted }, 'deleted expired idempotency keys')
      } catch (err) {
        if (!deps.outage.noted(err))
          deps.logger.error({ err }, 'idempotency key cleanup failed; retrying')
      }
      await sleep(opts.intervalMs ?? 600_000, undefined, { signal: stopping.signal }).catch(
        () => {},
      )
    }
  })()
  return {
    stop: async () => {
      stopping.abort()
      await loop
    },
  }
}
