import { randomUUID } from 'node:crypto'
import { sql } from 'kysely'
import type { Db } from '../db/database.ts'
import type { WebhookDeliveryStatus } from '../db/schema.ts'
import type { AttemptResult } from './sender.ts'

/** A delivery claimed for one attempt, with what sending it needs. */
export interface ClaimedDelivery {
  id: string
  endpointId: string
  /** This attempt's number: also the claim's fencing token. */
  attempt: number
  /** Failed attempts since the delivery was (re)started: the backoff's exponent. */
  failures: number
  url: string
  secrets: string[]
  event: { id: string; type: string; createdAt: Date; data: unknown }
}

/**
 * Claims up to `limit` due deliveries for one attempt each. A delivery is due when its time has
 * come, its endpoint is enabled, and no earlier event of the same resource is still pending for
 * that endpoint (events of one resource reach an endpoint in order). Candidates are locked with
 * `FOR UPDATE SKIP LOCKED`, so concurrent workers in any number of processes take different rows;
 * a claimed delivery's due time becomes the end of its lease, after which any worker may take it
 * again (the sender died). `busy` endpoints are skipped, and at most `perEndpoint(id)` are taken
 * for one endpoint, so a slow receiver cannot hold every sending slot.
 */
export async function claimDue(
  db: Db,
  opts: {
    limit: number
    leaseSeconds: number
    busy: string[]
    perEndpoint: (endpointId: string) => number
  },
): Promise<ClaimedDelivery[]> {
  return db.transaction().execute(async (trx) => {
    const candidates = await sql<{ id: string; endpoint_id: string }>`
      SELECT d.id, d.endpoint_id
        FROM webhook_deliveries d
        JOIN webhook_endpoints w ON w.id = d.endpoint_id
       WHERE d.status = 'pending' AND d.next_attempt_at <= now()
         AND w.enabled AND w.deleted_at IS NULL
         AND NOT (d.endpoint_id = ANY (${opts.busy}::uuid[]))
         AND NOT EXISTS (
           SELECT 1 FROM webhook_deliveries p
            WHERE p.endpoint_id = d.endpoint_id AND p.resource = d.resource
              AND p.status = 'pending' AND p.event_seq < d.event_seq)
       ORDER BY d.next_attempt_at
       LIMIT ${opts.limit * 4}
         FOR UPDATE OF d SKIP LOCKED`.execute(trx)
    const taken = new Map<string, number>()
    const chosen: string[] = []
    for (const c of candidates.rows) {
      const n = taken.get(c.endpoint_id) ?? 0
      if (chosen.length >= opts.limit || n >= opts.perEndpoint(c.endpoint_id)) continue
      taken.set(c.endpoint_id, n + 1)
      chosen.push(c.id)
    }
    if (chosen.length === 0) return []
    const claimed = await sql<{
      id: string
      endpoint_id: string
      attempts: number
      failures: number
      url: string
      secret: string
      previous_secret: string | null
      previous_valid: boolean
      event_id: string
      event_type: string
      event_created_at: Date
      data: unknown
    }>`
      UPDATE webhook_deliveries d
         SET attempts = d.attempts + 1,
             next_attempt_at = now() + make_interval(secs => ${opts.leaseSeconds}),
             last_attempt_at = now(),
             updated_at = now()
        FROM webhook_events e, webhook_endpoints w
       WHERE d.id = ANY (${chosen}::uuid[]) AND e.id = d.event_id AND w.id = d.endpoint_id
      RETURNING d.id, d.endpoint_id, d.attempts, d.failures, w.url, w.secret, w.previous_secret,
                coalesce(w.previous_secret_expires_at > now(), false) AS previous_valid,
                e.id AS event_id, e.type AS event_type, e.created_at AS event_created_at, e.data`.execute(
      trx,
    )
    return claimed.rows.map((r) => ({
      id: r.id,
      endpointId: r.endpoint_id,
      attempt: r.attempts,
      failures: r.failures,
      url: r.url,
      secrets: [r.secret, ...(r.previous_secret && r.previous_valid ? [r.previous_secret] : [])],
      event: { id: r.event_id, type: r.event_type, createdAt: r.event_created_at, data: r.data },
    }))
  })
}

export type AttemptOutcome = 'delivered' | 'retrying' | 'dead' | 'superseded'

/**
 * Records an attempt and what follows from it, in one transaction: delivered; or retried after
 * `retryDelayMs` (never later than the end of the retry period); or, once the retry period since
 * the delivery was (re)started has passed, dead-lettered. `superseded`: the claim's lease ran out
 * and another worker took the delivery over, so only the attempt is recorded.
 */
export async function recordAttempt(
  db: Db,
  claim: ClaimedDelivery,
  startedAt: Date,
  result: AttemptResult,
  retry: { delayMs: number; periodSeconds: number },
): Promise<AttemptOutcome> {
  return db.transaction().execute(async (trx) => {
    await trx
      .insertInto('webhook_attempts')
      .values({
        id: randomUUID(),
        delivery_id: claim.id,
        attempt: claim.attempt,
        started_at: startedAt,
        duration_ms: result.durationMs,
        status_code: result.statusCode ?? null,
        error: result.error ?? null,
        response_excerpt: result.excerpt ?? null,
        delivered: result.delivered,
      })
      .execute()
    const period = sql`make_interval(secs => ${retry.periodSeconds})`
    const giveUp = sql<boolean>`now() >= retry_from + ${period}`
    const updated = await trx
      .updateTable('webhook_deliveries')
      .set(
        result.delivered
          ? {
              status: 'delivered',
              next_attempt_at: null,
              delivered_at: sql<Date>`now()`,
              last_status_code: result.statusCode ?? null,
              last_error: null,
              updated_at: sql<Date>`now()`,
            }
          : {
              status: sql<WebhookDeliveryStatus>`CASE WHEN ${giveUp} THEN 'dead' ELSE 'pending' END`,
              next_attempt_at: sql<Date | null>`CASE WHEN ${giveUp} THEN NULL
                ELSE least(now() + make_interval(secs => ${retry.delayMs / 1000}), retry_from + ${period}) END`,
              failures: sql<number>`failures + 1`,
              last_status_code: result.statusCode ?? null,
              last_error: result.error ?? null,
              updated_at: sql<Date>`now()`,
            },
      )
      .where('id', '=', claim.id)
      .where('attempts', '=', claim.attempt)
      .where('status', '=', 'pending')
      .returning('status')
      .executeTakeFirst()
    if (!updated) return 'superseded'
    return updated.status === 'delivered'
      ? 'delivered'
      : updated.status === 'dead'
        ? 'dead'
        : 'retrying'
  })
}

/** Queue depth for monitoring: deliveries waiting to be sent, and dead letters, of live endpoints. */
export async function queueDepth(db: Db): Promise<{ pending: number; dead: number }> {
  const rows = await db
    .selectFrom('webhook_deliveries as d')
    .innerJoin('webhook_endpoints as w', 'w.id', 'd.endpoint_id')
    .select(['d.status', (eb) => eb.fn.countAll<string>().as('n')])
    .where('w.deleted_at', 'is', null)
    .where('d.status', 'in', ['pending', 'dead'])
    .groupBy('d.status')
    .execute()
  const count = (s: string) => Number(rows.find((r) => r.status === s)?.n ?? 0)
  return { pending: count('pending'), dead: count('dead') }
}

/**
 * Deletes up to `limit` events older than `days` whose deliveries are all finished (delivered or
 * dead), with their deliveries and attempts; returns how many events. Concurrent callers skip each
 * other's rows.
 */
export async function deleteOldEvents(db: Db, days: number, limit = 1000): Promise<number> {
  return db.transaction().execute(async (trx) => {
    const old = await trx
      .selectFrom('webhook_events as e')
      .select('e.id')
      .where('e.created_at', '<', sql<Date>`now() - make_interval(days => ${days})`)
      .where(({ not, exists, selectFrom }) =>
        not(
          exists(
            selectFrom('webhook_deliveries as d')
              .select('d.id')
              .whereRef('d.event_id', '=', 'e.id')
              .where('d.status', '=', 'pending'),
          ),
        ),
      )
      .orderBy('e.created_at')
      .limit(limit)
      .forUpdate()
      .skipLocked()
      .execute()
    if (old.length === 0) return 0
    const ids = old.map((r) => r.id)
    const deliveries = trx
      .selectFrom('webhook_deliveries')
      .select('id')
      .where('event_id', 'in', ids)
    await trx.deleteFrom('webhook_attempts').where('delivery_id', 'in', deliveries).execute()
    await trx.deleteFrom('webhook_deliveries').where('event_id', 'in', ids).execute()
    await trx.deleteFrom('webhook_events').where('id', 'in', ids).execute()
    return ids.length
  })
}
