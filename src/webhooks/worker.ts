import { setTimeout as sleep } from 'node:timers/promises'
import type { Deps } from '../deps.ts'
import { deadLetterForDeleted } from './endpoints.ts'
import { renderPayload } from './payload.ts'
import {
  type AttemptOutcome,
  type ClaimedDelivery,
  claimDue,
  deleteOldEvents,
  recordAttempt,
} from './queue.ts'
import { type AttemptResult, postWebhook } from './sender.ts'
import { signedHeaders } from './signing.ts'

/** One attempt's outcome, for metrics. */
export interface DeliveryOutcome {
  deliveryId: string
  endpointId: string
  eventType: string
  attempt: number
  outcome: AttemptOutcome
  statusCode?: number
  durationMs: number
}

export interface WebhookWorkerOptions {
  /** Called after every attempt is recorded (metrics hook); must not throw. */
  onOutcome?: (o: DeliveryOutcome) => void
}

export interface WebhookWorker {
  /** Look for due deliveries now instead of at the next poll. */
  kick(): void
  /** Stops claiming, lets the attempts in flight finish and be recorded. */
  stop(): Promise<void>
}

/** Retries wait at most this long between two attempts. */
const MAX_DELAY_MS = 3_600_000
/** How long attempts in flight may still finish when the worker stops. */
const STOP_GRACE_MS = 1000
/** How often a process deletes old events and dead-letters deliveries to deleted endpoints. */
const CLEANUP_EVERY_MS = 3_600_000

/** Exponential backoff with jitter: base × 2^failures, between half and all of it, capped. */
export function retryDelayMs(baseMs: number, failures: number): number {
  const full = Math.min(baseMs * 2 ** failures, MAX_DELAY_MS)
  return Math.round(full / 2 + (Math.random() * full) / 2)
}

/**
 * Sends webhook deliveries (workers role). Due deliveries are claimed under a lease (see
 * `claimDue`), sent outside any transaction with the configured bounds, and each attempt is
 * recorded. Up to `WEBHOOK_CONCURRENCY` attempts run at once, at most half of them to one
 * endpoint, so a receiver that hangs holds some slots until the timeout but never all of them.
 */
export function startWebhookWorker(deps: Deps, opts: WebhookWorkerOptions = {}): WebhookWorker {
  const { db, logger, config } = deps
  const settings = config.webhooks
  const perEndpoint = Math.max(1, Math.ceil(settings.concurrency / 2))
  const inFlight = new Map<Promise<void>, string>()
  let stopped = false
  let wake = new AbortController()
  // Aborts attempts still in flight at shutdown; they are recorded as failed and retried.
  const interrupt = new AbortController()
  let cleanedAt = 0

  const cleanUp = async () => {
    cleanedAt = Date.now()
    try {
      let deleted = 0
      for (;;) {
        const n = await deleteOldEvents(db, settings.retentionDays)
        deleted += n
        if (n === 0 || stopped) break
      }
      if (deleted > 0) logger.info({ deleted }, 'deleted webhook events past their retention')
      const stranded = await deadLetterForDeleted(db)
      if (stranded > 0) logger.info({ stranded }, 'deliveries to deleted endpoints dead-lettered')
    } catch (err) {
      if (!deps.outage.noted(err))
        logger.error({ err }, 'deleting old webhook events failed; trying again later')
    }
  }

  const perEndpointCount = (endpointId: string) => {
    let n = 0
    for (const id of inFlight.values()) if (id === endpointId) n++
    return n
  }

  const attempt = async (claim: ClaimedDelivery): Promise<void> => {
    const startedAt = new Date()
    let result: AttemptResult
    try {
      const body = JSON.stringify(renderPayload(config, claim.event))
      const headers = signedHeaders(claim.secrets, {
        id: claim.event.id,
        timestamp: startedAt,
        body,
      })
      result = await postWebhook(claim.url, headers, body, {
        timeoutMs: settings.timeoutMs,
        interrupt: interrupt.signal,
      })
    } catch (err) {
      logger.error({ err, delivery: claim.id }, 'could not build a webhook')
      result = { delivered: false, error: 'could not build the request', durationMs: 0 }
    }
    try {
      const outcome = await recordAttempt(db, claim, startedAt, result, {
        delayMs: retryDelayMs(settings.retryBaseMs, claim.failures),
        periodSeconds: settings.retryPeriodSeconds,
      })
      if (outcome === 'dead')
        logger.warn(
          { delivery: claim.id, endpoint: claim.endpointId, event: claim.event.id },
          'webhook dead-lettered',
        )
      opts.onOutcome?.({
        deliveryId: claim.id,
        endpointId: claim.endpointId,
        eventType: claim.event.type,
        attempt: claim.attempt,
        outcome,
        ...(result.statusCode !== undefined && { statusCode: result.statusCode }),
        durationMs: result.durationMs,
      })
    } catch (err) {
      // The lease runs out and the delivery is attempted again, with the same webhook-id.
      if (!deps.outage.noted(err))
        logger.error({ err, delivery: claim.id }, 'could not record a webhook attempt')
    }
  }

  const loop = (async () => {
    while (!stopped) {
      const free = settings.concurrency - inFlight.size
      let claimed = 0
      if (free > 0) {
        try {
          const busy = [...new Set(inFlight.values())].filter(
            (id) => perEndpointCount(id) >= perEndpoint,
          )
          const batch = await claimDue(db, {
            limit: free,
            leaseSeconds: settings.leaseSeconds,
            busy,
            perEndpoint: (id) => perEndpoint - perEndpointCount(id),
          })
          for (const claim of batch) {
            const p: Promise<void> = attempt(claim).finally(() => {
              inFlight.delete(p)
              // A finished attempt may make the next event of its resource due.
              wake.abort()
            })
            inFlight.set(p, claim.endpointId)
          }
          claimed = batch.length
        } catch (err) {
          if (!deps.outage.noted(err))
            logger.error({ err }, 'webhook worker failed to claim; retrying')
        }
      }
      if (claimed > 0 && claimed === free) continue
      if (Date.now() - cleanedAt > CLEANUP_EVERY_MS) await cleanUp()
      await sleep(settings.pollMs, undefined, { signal: wake.signal }).catch(() => {})
      wake = new AbortController()
    }
    // Attempts in flight get a moment to finish, then are cut short so that stopping stays quick
    // (a hanging receiver would otherwise hold shutdown for the whole timeout).
    const finished = Promise.all(inFlight.keys())
    await Promise.race([finished, sleep(STOP_GRACE_MS, undefined, { ref: false })])
    interrupt.abort()
    await finished
  })()

  return {
    kick: () => wake.abort(),
    stop: async () => {
      stopped = true
      wake.abort()
      await loop
    },
  }
}
