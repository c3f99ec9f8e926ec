import { randomUUID } from 'node:crypto'
import { sql } from 'kysely'
import type { Db } from '../db/database.ts'
import { factsJson, type NewEvent, resourceOf } from './events.ts'

/**
 * Writes an event and one pending delivery for every enabled endpoint subscribed to its type, in
 * one statement inside the caller's transaction: the event exists if and only if the state change
 * that caused it commits. Nothing is sent here; the delivery worker picks the rows up.
 */
export async function recordEvent(trx: Db, event: NewEvent): Promise<string> {
  if (!trx.isTransaction) throw new Error('recordEvent must run in the state change’s transaction')
  const id = randomUUID()
  await sql`
    WITH e AS (
      INSERT INTO webhook_events (id, type, resource, data)
      VALUES (${id}, ${event.type}, ${resourceOf(event)}, ${factsJson(event)}::jsonb)
      RETURNING id, type, resource, seq
    )
    INSERT INTO webhook_deliveries (id, event_id, endpoint_id, event_type, resource, event_seq, next_attempt_at)
    SELECT gen_random_uuid(), e.id, w.id, e.type, e.resource, e.seq, now()
      FROM e JOIN webhook_endpoints w
        ON e.type = ANY (w.event_types) AND w.enabled AND w.deleted_at IS NULL`.execute(trx)
  return id
}
