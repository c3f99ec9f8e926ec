import { type Expression, sql } from 'kysely'
import type { Db } from '../db/database.ts'

/** A request's hold on a key. `lockedUntil` tells it apart from a later takeover of the same key. */
export interface Claim {
  scope: string
  key: string
  lockedUntil: Date
}

export interface StoredResponse {
  status: number
  contentType: string | null
  body: string | null
}

export type ClaimResult =
  | { kind: 'claimed'; claim: Claim }
  | { kind: 'replay'; response: StoredResponse }
  | { kind: 'mismatch' }
  | { kind: 'in_progress' }

export interface ClaimInput {
  scope: string
  key: string
  fingerprint: string
  ttlSeconds: number
  lockSeconds: number
}

/**
 * A key may be taken over when no live request holds it and either it expired or this is the same
 * request retried after the first one crashed. Times are the database's, so processes agree.
 */
const takeable = (fingerprint: Expression<string> | string) => sql<boolean>`(
  (idempotency_keys.state = 'done' AND idempotency_keys.expires_at <= now())
  OR (idempotency_keys.state = 'in_progress' AND idempotency_keys.locked_until <= now()
    AND (idempotency_keys.expires_at <= now() OR idempotency_keys.fingerprint = ${fingerprint})))`

// Between the two statements below the row may be deleted (a 5xx, the cleanup job) or become
// takeable (its lock or expiry lapsed); a few rounds settle that, and a key still contested is
// reported in progress.
const ATTEMPTS = 3

/**
 * Claims the key for this request, or says why not. Concurrent requests race in one statement:
 * the insert (or the takeover of a takeable row) succeeds for exactly one of them.
 */
export async function claimKey(db: Db, input: ClaimInput): Promise<ClaimResult> {
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const claimed = await db
      .insertInto('idempotency_keys')
      .values({
        scope: input.scope,
        key: input.key,
        fingerprint: input.fingerprint,
        state: 'in_progress',
        // Whole milliseconds, so that the value read back into a Date matches the row exactly.
        locked_until: sql<Date>`date_trunc('milliseconds', now() + make_interval(secs => ${input.lockSeconds}))`,
        expires_at: sql<Date>`now() + make_interval(secs => ${input.ttlSeconds})`,
      })
      .onConflict((oc) =>
        oc
          .columns(['scope', 'key'])
          .doUpdateSet((eb) => ({
            fingerprint: eb.ref('excluded.fingerprint'),
            state: 'in_progress',
            status: null,
            content_type: null,
            body: null,
            locked_until: eb.ref('excluded.locked_until'),
            expires_at: eb.ref('excluded.expires_at'),
          }))
          .where(takeable(sql.ref('excluded.fingerprint'))),
      )
      .returning('locked_until')
      .executeTakeFirst()
    if (claimed) {
      const claim = { scope: input.scope, key: input.key, lockedUntil: claimed.locked_until }
      return { kind: 'claimed', claim }
    }

    const row = await db
      .selectFrom('idempotency_keys')
      .select(['fingerprint', 'state', 'status', 'content_type', 'body'])
      .select(takeable(input.fingerprint).as('takeable'))
      .where('scope', '=', input.scope)
      .where('key', '=', input.key)
      .executeTakeFirst()
    if (!row || row.takeable) continue
    if (row.fingerprint !== input.fingerprint) return { kind: 'mismatch' }
    if (row.state === 'done') {
      return {
        kind: 'replay',
        response: { status: row.status!, contentType: row.content_type, body: row.body },
      }
    }
    return { kind: 'in_progress' }
  }
  return { kind: 'in_progress' }
}

/** Stores the response of a claimed request. False when the claim was lost to a takeover. */
export async function completeKey(
  db: Db,
  claim: Claim,
  response: StoredResponse,
): Promise<boolean> {
  const result = await db
    .updateTable('idempotency_keys')
    .set({
      state: 'done',
      status: response.status,
      content_type: response.contentType,
      body: response.body,
    })
    .where('scope', '=', claim.scope)
    .where('key', '=', claim.key)
    .where('state', '=', 'in_progress')
    .where('locked_until', '=', claim.lockedUntil)
    .executeTakeFirst()
  return result.numUpdatedRows > 0n
}

/** Forgets a claimed key, so that the client may retry. False when the claim was lost. */
export async function releaseKey(db: Db, claim: Claim): Promise<boolean> {
  const result = await db
    .deleteFrom('idempotency_keys')
    .where('scope', '=', claim.scope)
    .where('key', '=', claim.key)
    .where('state', '=', 'in_progress')
    .where('locked_until', '=', claim.lockedUntil)
    .executeTakeFirst()
  return result.numDeletedRows > 0n
}

/** Deletes keys expired at `now` that no request holds; returns how many. */
export async function deleteExpiredKeys(db: Db, now: Date): Promise<number> {
  const result = await db
    .deleteFrom('idempotency_keys')
    .where('expires_at', '<=', now)
    .where((eb) => eb.or([eb('state', '=', 'done'), eb('locked_until', '<=', now)]))
    .executeTakeFirst()
  return Number(result.numDeletedRows)
}
