import { sql } from 'kysely'
import type { Logger } from 'pino'
import type { Db } from './database.ts'
import { sqlState } from './errors.ts'

/** How long clients are asked to wait before retrying while the database is unreachable. */
export const RETRY_AFTER_SECONDS = 5

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
])

/** Messages of node-postgres for a connection that broke or never came (they carry no code). */
const LOST = [
  /Connection terminated/i,
  /timeout exceeded when trying to connect/i,
  /Client has encountered a connection error/i,
  /Client was closed and is not queryable/i,
  /connection is closed/i,
]

/**
 * Whether an error says the database could not be reached, rather than that a query was wrong:
 * a network failure, a connection lost mid-query, or the server refusing connections (SQLSTATE
 * class 08, shutting down or starting up, too many connections).
 */
export function isDatabaseUnreachable(err: unknown): boolean {
  if (!(err instanceof Error)) return false
  const state = sqlState(err)
  if (state) return state.startsWith('08') || ['57P01', '57P02', '57P03', '53300'].includes(state)
  const code = (err as NodeJS.ErrnoException).code
  if (code && NETWORK_CODES.has(code)) return true
  if (err instanceof AggregateError && err.errors.some(isDatabaseUnreachable)) return true
  return LOST.some((re) => re.test(err.message))
}

export interface OutageMonitor {
  /**
   * Whether `err` means the database is unreachable. The first such error of an outage logs one
   * warning and starts probing; the probe's first success logs one more. Nothing per request.
   */
  noted(err: unknown): boolean
  readonly down: boolean
  stop(): void
}

/** One per process: requests and workers report to it, so an outage is logged once, not per call. */
export function createOutageMonitor(
  db: Db,
  logger: Logger,
  opts: { probeMs?: number } = {},
): OutageMonitor {
  let since: number | undefined
  let probe: NodeJS.Timeout | undefined
  const log = logger.child({ component: 'database' })

  const recovered = () => {
    clearInterval(probe)
    probe = undefined
    log.warn(
      { outageSeconds: Math.round((Date.now() - since!) / 1000) },
      'database reachable again',
    )
    since = undefined
  }

  return {
    noted(err) {
      if (!isDatabaseUnreachable(err)) return false
      if (since === undefined) {
        since = Date.now()
        // The message says why (refused, reset, timed out); a stack trace would add nothing.
        log.warn(
          { reason: (err as Error).message },
          'database unreachable; answering 503 until it is back',
        )
        let probing = false
        probe = setInterval(async () => {
          if (probing) return
          probing = true
          try {
            await sql`select 1`.execute(db)
            if (since !== undefined) recovered()
          } catch {
            // Still down: the next tick tries again.
          } finally {
            probing = false
          }
        }, opts.probeMs ?? 1000)
        probe.unref()
      }
      return true
    },
    get down() {
      return since !== undefined
    },
    stop() {
      clearInterval(probe)
      probe = undefined
    },
  }
}
