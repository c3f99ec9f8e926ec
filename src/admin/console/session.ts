import { sql } from 'kysely'
import type { Db } from '../../db/database.ts'
import { hashToken, hmac, newToken, safeEqual } from '../../lib/secrets.ts'

/**
 * Console sessions, stored server-side: the cookie holds a random token, the database its hash.
 * Stored rather than signed so that signing out really ends a session (a copied cookie stops
 * working too), and so that every process behind a load balancer sees the same sessions.
 */
export interface SessionPolicy {
  adminApiKey: string
  /** Ends this long after sign-in, however active. */
  sessionSeconds: number
  /** Ends after this long without a request. */
  idleSeconds: number
}

/** A session is touched at most this often, so page views are not each a write. */
const TOUCH_SECONDS = 30

/**
 * Ties sessions to the admin key they were opened with: when the operator changes ADMIN_API_KEY
 * (because it leaked), the sessions opened with the old key end too.
 */
const keyFingerprint = (adminApiKey: string) => hmac(adminApiKey, 'console-session')

/** The CSRF token of a session: an HMAC of its token, so it is neither stored nor guessable. */
export const csrfToken = (sessionToken: string) => hmac(sessionToken, 'console-csrf')

export const csrfValid = (sessionToken: string, given: unknown) =>
  typeof given === 'string' && safeEqual(given, csrfToken(sessionToken))

/** Opens a session and returns its token (for the cookie); sweeps out sessions that have ended. */
export async function openSession(
  db: Db,
  policy: SessionPolicy,
): Promise<{ token: string; maxAgeSeconds: number }> {
  const token = newToken()
  await db.transaction().execute(async (trx) => {
    await trx
      .deleteFrom('console_sessions')
      .where((eb) =>
        eb.or([
          eb('expires_at', '<=', sql<Date>`now()`),
          eb('last_seen_at', '<=', sql<Date>`now() - make_interval(secs => ${policy.idleSeconds})`),
        ]),
      )
      .execute()
    await trx
      .insertInto('console_sessions')
      .values({
        token_hash: hashToken(token),
        key_fingerprint: keyFingerprint(policy.adminApiKey),
        expires_at: sql<Date>`now() + make_interval(secs => ${policy.sessionSeconds})`,
      })
      .execute()
  })
  return { token, maxAgeSeconds: policy.sessionSeconds }
}

/** Whether `token` names a live session opened with the current admin key; keeps it alive. */
export async function sessionValid(db: Db, token: string, policy: SessionPolicy): Promise<boolean> {
  const tokenHash = hashToken(token)
  const row = await db
    .selectFrom('console_sessions')
    .select([
      'key_fingerprint',
      sql<boolean>`last_seen_at < now() - make_interval(secs => ${TOUCH_SECONDS})`.as('stale'),
    ])
    .where('token_hash', '=', tokenHash)
    .where('expires_at', '>', sql<Date>`now()`)
    .where('last_seen_at', '>', sql<Date>`now() - make_interval(secs => ${policy.idleSeconds})`)
    .executeTakeFirst()
  if (!row || !safeEqual(row.key_fingerprint, keyFingerprint(policy.adminApiKey))) return false
  if (row.stale) {
    await db
      .updateTable('console_sessions')
      .set({ last_seen_at: sql<Date>`now()` })
      .where('token_hash', '=', tokenHash)
      .execute()
  }
  return true
}

export async function closeSession(db: Db, token: string): Promise<void> {
  await db.deleteFrom('console_sessions').where('token_hash', '=', hashToken(token)).execute()
}
