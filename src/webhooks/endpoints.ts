import { randomUUID } from 'node:crypto'
import { type Selectable, sql } from 'kysely'
import type { Db } from '../db/database.ts'
import type { WebhookEndpointsTable } from '../db/schema.ts'
import type { EventType } from './events.ts'
import { newSecret } from './signing.ts'

export interface Endpoint {
  id: string
  url: string
  description: string | null
  eventTypes: EventType[]
  enabled: boolean
  /** Until then the secret before the last rotation signs too. */
  previousSecretExpiresAt: Date | null
  createdAt: Date
  updatedAt: Date
}

/**
 * Webhook URLs are the operator's own systems: any http(s) URL with a host, written as the
 * database keeps it (`http://` or `https://` in lower case, as its CHECK requires). Credentials in
 * the URL are refused (fetch cannot send them, so every attempt would fail).
 */
export function isHttpUrl(value: string): boolean {
  if (!/^https?:\/\//.test(value) || !URL.canParse(value)) return false
  const u = new URL(value)
  return (
    (u.protocol === 'http:' || u.protocol === 'https:') &&
    u.hostname !== '' &&
    u.username === '' &&
    u.password === ''
  )
}

export interface NewEndpoint {
  url: string
  eventTypes: EventType[]
  description?: string
  enabled?: boolean
}

/** Creates an endpoint with a new secret, which is returned this once (and on rotation). */
export async function createEndpoint(
  db: Db,
  input: NewEndpoint,
): Promise<{ endpoint: Endpoint; secret: string }> {
  const secret = newSecret()
  const row = await db
    .insertInto('webhook_endpoints')
    .values({
      id: randomUUID(),
      url: input.url,
      description: input.description ?? null,
      event_types: input.eventTypes,
      secret,
      enabled: input.enabled ?? true,
    })
    .returningAll()
    .executeTakeFirstOrThrow()
  return { endpoint: toEndpoint(row), secret }
}

export async function getEndpoint(db: Db, id: string): Promise<Endpoint | undefined> {
  const row = await live(db).where('id', '=', id).executeTakeFirst()
  return row && toEndpoint(row)
}

/**
 * Whether an endpoint has ever had this id. A deleted endpoint's id still marks its place in the
 * list, so a page that ended on it can be followed.
 */
export async function endpointIdUsed(db: Db, id: string): Promise<boolean> {
  const row = await db
    .selectFrom('webhook_endpoints')
    .select('id')
    .where('id', '=', id)
    .executeTakeFirst()
  return row !== undefined
}

/** Endpoints, oldest first, after the cursor's. */
export async function listEndpoints(
  db: Db,
  page: { first: number; after?: string },
): Promise<{ items: Endpoint[]; hasNextPage: boolean }> {
  let q = live(db)
    .orderBy('created_at')
    .orderBy('id')
    .limit(page.first + 1)
  if (page.after) {
    const after = page.after
    q = q.where((eb) =>
      eb(
        eb.refTuple('created_at', 'id'),
        '>',
        eb
          .selectFrom('webhook_endpoints')
          .select(['created_at', 'id'])
          .where('id', '=', after)
          .$asTuple('created_at', 'id'),
      ),
    )
  }
  const rows = await q.execute()
  return { items: rows.slice(0, page.first).map(toEndpoint), hasNextPage: rows.length > page.first }
}

/**
 * Changes an endpoint; fields left out stay. New events reach it under its new subscription;
 * deliveries already queued keep going (a disabled endpoint's wait until it is enabled again).
 */
export async function updateEndpoint(
  db: Db,
  id: string,
  patch: Partial<Omit<NewEndpoint, 'description'>> & { description?: string | null },
): Promise<Endpoint | undefined> {
  const row = await db
    .updateTable('webhook_endpoints')
    .set({
      ...(patch.url !== undefined && { url: patch.url }),
      ...(patch.eventTypes !== undefined && { event_types: patch.eventTypes }),
      ...(patch.description !== undefined && { description: patch.description }),
      ...(patch.enabled !== undefined && { enabled: patch.enabled }),
      updated_at: sql<Date>`now()`,
    })
    .where('id', '=', id)
    .where('deleted_at', 'is', null)
    .returningAll()
    .executeTakeFirst()
  return row && toEndpoint(row)
}

/**
 * Deletes an endpoint: nothing more is sent to it (its queued deliveries become dead letters), its
 * delivery history stays readable. Deleting it again is not an error. False when no such endpoint
 * ever existed.
 */
export async function deleteEndpoint(db: Db, id: string): Promise<boolean> {
  return db.transaction().execute(async (trx) => {
    const row = await trx
      .updateTable('webhook_endpoints')
      .set({ deleted_at: sql<Date>`coalesce(deleted_at, now())`, enabled: false })
      .where('id', '=', id)
      .returning('id')
      .executeTakeFirst()
    await deadLetterForDeleted(trx, id)
    return row !== undefined
  })
}

/**
 * What is still queued for deleted endpoints (the one `endpointId`, or all) will never be sent: it
 * ends as a dead letter. Deleting an endpoint does this in its transaction; an event written at
 * the same moment, whose statement saw the endpoint before the delete committed, can still queue
 * one after it, which the delivery worker's hourly clean-up then ends here (a pending delivery
 * would also keep its event from ever being deleted). Returns how many.
 */
export async function deadLetterForDeleted(db: Db, endpointId?: string): Promise<number> {
  let deleted = db.selectFrom('webhook_endpoints').select('id').where('deleted_at', 'is not', null)
  if (endpointId !== undefined) deleted = deleted.where('id', '=', endpointId)
  const { numUpdatedRows } = await db
    .updateTable('webhook_deliveries')
    .set({
      status: 'dead',
      next_attempt_at: null,
      last_error: 'endpoint deleted',
      updated_at: sql<Date>`now()`,
    })
    .where('status', '=', 'pending')
    .where('endpoint_id', 'in', deleted)
    .executeTakeFirst()
  return Number(numUpdatedRows)
}

/**
 * Gives an endpoint a new secret, returned this once. The old one keeps signing alongside it
 * (a second signature in `webhook-signature`) for `previousValidSeconds`, so the receiver can
 * switch without losing events.
 */
export async function rotateSecret(
  db: Db,
  id: string,
  previousValidSeconds: number,
): Promise<{ endpoint: Endpoint; secret: string } | undefined> {
  const secret = newSecret()
  const row = await db
    .updateTable('webhook_endpoints')
    .set((eb) => ({
      previous_secret: eb.ref('secret'),
      previous_secret_expires_at: sql<Date>`now() + make_interval(secs => ${previousValidSeconds})`,
      secret,
      updated_at: sql<Date>`now()`,
    }))
    .where('id', '=', id)
    .where('deleted_at', 'is', null)
    .returningAll()
    .executeTakeFirst()
  return row && { endpoint: toEndpoint(row), secret }
}

const live = (db: Db) =>
  db.selectFrom('webhook_endpoints').selectAll().where('deleted_at', 'is', null)

function toEndpoint(r: Selectable<WebhookEndpointsTable>): Endpoint {
  return {
    id: r.id,
    url: r.url,
    description: r.description,
    eventTypes: r.event_types as EventType[],
    enabled: r.enabled,
    previousSecretExpiresAt:
      r.previous_secret_expires_at && r.previous_secret_expires_at > new Date()
        ? r.previous_secret_expires_at
        : null,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  }
}
