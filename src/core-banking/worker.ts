import { setTimeout as sleep } from 'node:timers/promises'
import { sql } from 'kysely'
import type { Deps } from '../deps.ts'
import { retryDelayMs } from '../webhooks/worker.ts'
import { type CalloutResult, sendCallout } from './callout.ts'

/** Posts and releases one process sends at once. */
const BATCH = 8

interface Claimed {
  id: string
  paymentId: string
  assetId: string
  kind: 'post' | 'release'
  data: Record<string, unknown>
  attempts: number
  createdAt: Date
}

/**
 * Sends the post and release callouts (workers role) from the `core_banking_callouts` outbox. Due
 * rows are claimed with `FOR UPDATE SKIP LOCKED` under a lease, so processes share the work and a
 * dead sender's rows are taken over; each is sent outside any transaction with the same
 * `webhook-id` and `Idempotency-Key` on every attempt, and retried with exponential backoff (at
 * most an hour apart) until core banking answers 2xx: its books must learn of every payment's end.
 */
export function startCoreBankingWorker(deps: Deps): { kick(): void; stop(): Promise<void> } {
  const { db, logger, metrics, config } = deps
  const settings = config.coreBanking
  let stopped = false
  let wake = new AbortController()

  const claim = () =>
    db.transaction().execute(async (trx) => {
      const due = await trx
        .selectFrom('core_banking_callouts')
        .select('id')
        .where('status', '=', 'pending')
        .where('next_attempt_at', '<=', sql<Date>`now()`)
        .orderBy('next_attempt_at')
        .limit(BATCH)
        .forUpdate()
        .skipLocked()
        .execute()
      if (due.length === 0) return []
      const rows = await trx
        .updateTable('core_banking_callouts')
        .set({
          attempts: sql<number>`attempts + 1`,
          next_attempt_at: sql<Date>`now() + make_interval(secs => ${settings.leaseSeconds})`,
        })
        .where(
          'id',
          'in',
          due.map((d) => d.id),
        )
        .returning(['id', 'payment_id', 'asset_id', 'kind', 'data', 'attempts', 'created_at'])
        .execute()
      return rows.map(
        (r): Claimed => ({
          id: r.id,
          paymentId: r.payment_id,
          assetId: r.asset_id,
          kind: r.kind,
          data: r.data as Record<string, unknown>,
          attempts: r.attempts,
          createdAt: r.created_at,
        }),
      )
    })

  const send = async (c: Claimed) => {
    const started = performance.now()
    const hook = await deps.coreBanking.hooks.hookFor(c.assetId)
    const result: CalloutResult = hook
      ? await sendCallout(deps, hook, {
          id: c.id,
          type: `outgoing_payment.${c.kind}`,
          timestamp: c.createdAt,
          data: c.data,
        })
      : { ok: false, error: 'no core-banking hook for the asset' }
    metrics.coreBankingDuration.observe({ kind: c.kind }, (performance.now() - started) / 1000)
    metrics.coreBankingCallouts.inc({ kind: c.kind, outcome: result.ok ? 'delivered' : 'retrying' })
    const delayMs = retryDelayMs(settings.retryBaseMs, c.attempts - 1)
    // Fenced by the attempt number: a sender whose lease ran out records nothing.
    await db
      .updateTable('core_banking_callouts')
      .set(
        result.ok
          ? {
              status: 'delivered',
              next_attempt_at: null,
              delivered_at: sql<Date>`now()`,
              last_status_code: result.status,
              last_error: null,
            }
          : {
              next_attempt_at: sql<Date>`now() + make_interval(secs => ${delayMs / 1000})`,
              last_status_code: result.status ?? null,
              last_error: result.error,
            },
      )
      .where('id', '=', c.id)
      .where('attempts', '=', c.attempts)
      .where('status', '=', 'pending')
      .execute()
    const facts = { callout: c.id, payment: c.paymentId, kind: c.kind, attempt: c.attempts }
    if (result.ok) logger.info(facts, 'core banking accepted the callout')
    else
      logger.warn(
        { ...facts, error: result.error, retryInMs: delayMs },
        'core-banking callout failed; retrying',
      )
  }

  const loop = (async () => {
    while (!stopped) {
      let claimed = 0
      try {
        const batch = await claim()
        claimed = batch.length
        await Promise.all(
          batch.map((c) =>
            send(c).catch((err) => {
              // The lease runs out and the callout is sent again, with the same id.
              if (!deps.outage.noted(err))
                logger.error({ err, callout: c.id }, 'could not record a core-banking callout')
            }),
          ),
        )
      } catch (err) {
        if (!deps.outage.noted(err))
          logger.error({ err }, 'core-banking worker failed to claim; retrying')
      }
      if (claimed === BATCH) continue
      await sleep(settings.pollMs, undefined, { signal: wake.signal }).catch(() => {})
      wake = new AbortController()
    }
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
