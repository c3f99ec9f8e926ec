import { type Selectable, sql } from 'kysely'
import type { Db } from '../db/database.ts'
import type {
  WebhookAttemptsTable,
  WebhookDeliveriesTable,
  WebhookDeliveryStatus,
} from '../db/schema.ts'
import type { StoredEvent } from './payload.ts'

export interface Attempt {
  attempt: number
  startedAt: Date
  durationMs: number
  statusCode: number | null
  error: string | null
  responseExcerpt: string | null
  delivered: boolean
}

export interface Delivery {
  id: string
  eventId: string
  eventType: string
  endpointId: string
  status: WebhookDeliveryStatus
  /** Due time while pending (while an attempt is out, the end of its lease). */
  nextAttemptAt: Date | null
  lastAttemptAt: Date | null
  lastStatusCode: number | null
  lastError: string | null
  deliveredAt: Date | null
  createdAt: Date
  attempts: Attempt[]
}

export interface DeliveryFilter {
  endpointId?: string
  status?: WebhookDeliveryStatus
  eventType?: string
}

/** Deliveries, newest first, after the cursor's, each with its attempts. */
export async function listDeliveries(
  db: Db,
  filter: DeliveryFilter,
  page: { first: number; after?: string },
): Promise<{ items: Delivery[]; hasNextPage: boolean }> {
  let q = db
    .selectFrom('webhook_deliveries')
    .selectAll()
    .orderBy('created_at', 'desc')
    .orderBy('id', 'desc')
    .limit(page.first + 1)
  if (filter.endpointId) q = q.where('endpoint_id', '=', filter.endpointId)
  if (filter.status) q = q.where('status', '=', filter.status)
  if (filter.eventType) q = q.where('event_type', '=', filter.eventType)
  if (page.after) {
    const after = page.after
    q = q.where((eb) =>
      eb(
        eb.refTuple('created_at', 'id'),
        '<',
        eb
          .selectFrom('webhook_deliveries')
          .select(['created_at', 'id'])
          .where('id', '=', after)
          .$asTuple('created_at', 'id'),
      ),
    )
  }
  const rows = await q.execute()
  const items = await withAttempts(db, rows.slice(0, page.first))
  return { items, hasNextPage: rows.length > page.first }
}

export async function getDelivery(db: Db, id: string): Promise<Delivery | undefined> {
  const row = await db
    .selectFrom('webhook_deliveries')
    .selectAll()
    .where('id', '=', id)
    .executeTakeFirst()
  return row && (await withAttempts(db, [row]))[0]
}

export async function getEvent(db: Db, id: string): Promise<StoredEvent | undefined> {
  const row = await db
    .selectFrom('webhook_events')
    .select(['id', 'type', 'created_at', 'data'])
    .where('id', '=', id)
    .executeTakeFirst()
  return row && { id: row.id, type: row.type, createdAt: row.created_at, data: row.data }
}

export async function deliveriesOfEvent(db: Db, eventId: string): Promise<Delivery[]> {
  const rows = await db
    .selectFrom('webhook_deliveries')
    .selectAll()
    .where('event_id', '=', eventId)
    .orderBy('created_at')
    .orderBy('id')
    .execute()
  return withAttempts(db, rows)
}

export type ReplayError = 'unknown_event' | 'unknown_endpoint'

/**
 * Sends an event again: to one endpoint (any live one, subscribed or not: the operator asks for
 * it), or to every enabled endpoint now subscribed to its type. A delivery that is not pending
 * starts over (due now, a full retry period, same webhook-id); one still pending is left as it is;
 * an endpoint that never had the event gets a new delivery. The event keeps its place in its
 * resource's order: later events of the resource still pending wait for it.
 */
export async function replayEvent(
  db: Db,
  eventId: string,
  endpointId?: string,
): Promise<Delivery[] | ReplayError> {
  return db.transaction().execute(async (trx) => {
    const event = await trx
      .selectFrom('webhook_events')
      .select(['id', 'type'])
      .where('id', '=', eventId)
      .executeTakeFirst()
    if (!event) return 'unknown_event' as const
    let endpoints = trx.selectFrom('webhook_endpoints').select('id').where('deleted_at', 'is', null)
    endpoints = endpointId
      ? endpoints.where('id', '=', endpointId)
      : endpoints.where('enabled', '=', true).where(sql<boolean>`${event.type} = ANY (event_types)`)
    const targets = (await endpoints.execute()).map((r) => r.id)
    if (endpointId && targets.length === 0) return 'unknown_endpoint' as const
    if (targets.length === 0) return []
    await sql`
        INSERT INTO webhook_deliveries
               (id, event_id, endpoint_id, event_type, resource, event_seq, next_attempt_at)
        SELECT gen_random_uuid(), e.id, t.endpoint_id, e.type, e.resource, e.seq, now()
          FROM webhook_events e, unnest(${targets}::uuid[]) AS t (endpoint_id)
         WHERE e.id = ${eventId}
        ON CONFLICT (event_id, endpoint_id) DO UPDATE
           SET ${restart}
         WHERE webhook_deliveries.status <> 'pending'`.execute(trx)
    const rows = await trx
      .selectFrom('webhook_deliveries')
      .selectAll()
      .where('event_id', '=', eventId)
      .where('endpoint_id', 'in', targets)
      .orderBy('created_at')
      .execute()
    return withAttempts(trx, rows)
  })
}

/** Starts every dead-lettered delivery of an endpoint over; returns how many. */
export async function replayDeadLetters(db: Db, endpointId: string): Promise<number> {
  const result = await sql`
    UPDATE webhook_deliveries SET ${restart}
     WHERE endpoint_id = ${endpointId} AND status = 'dead'`.execute(db)
  return Number(result.numAffectedRows ?? 0n)
}

const restart = sql`status = 'pending', next_attempt_at = now(), failures = 0,
  retry_from = now(), updated_at = now()`

async function withAttempts(
  db: Db,
  rows: Selectable<WebhookDeliveriesTable>[],
): Promise<Delivery[]> {
  if (rows.length === 0) return []
  const attempts = await db
    .selectFrom('webhook_attempts')
    .selectAll()
    .where(
      'delivery_id',
      'in',
      rows.map((r) => r.id),
    )
    .orderBy('delivery_id')
    .orderBy('attempt')
    .orderBy('started_at')
    .execute()
  const byDelivery = new Map<string, Attempt[]>()
  for (const a of attempts) {
    const list = byDelivery.get(a.delivery_id) ?? []
    list.push(toAttempt(a))
    byDelivery.set(a.delivery_id, list)
  }
  return rows.map((r) => ({
    id: r.id,
    eventId: r.event_id,
    eventType: r.event_type,
    endpointId: r.endpoint_id,
    status: r.status,
    nextAttemptAt: r.next_attempt_at,
    lastAttemptAt: r.last_attempt_at,
    lastStatusCode: r.last_status_code,
    lastError: r.last_error,
    deliveredAt: r.delivered_at,
    createdAt: r.created_at,
    attempts: byDelivery.get(r.id) ?? [],
  }))
}

const toAttempt = (a: Selectable<WebhookAttemptsTable>): Attempt => ({
  attempt: a.attempt,
  startedAt: a.started_at,
  durationMs: a.duration_ms,
  statusCode: a.status_code,
  error: a.error,
  responseExcerpt: a.response_excerpt,
  delivered: a.delivered,
})
