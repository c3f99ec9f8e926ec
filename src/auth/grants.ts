import { randomUUID } from 'node:crypto'
import type { Selectable } from 'kysely'
import { type Db, prepared } from '../db/database.ts'
import type { AccessTokensTable, GrantsTable } from '../db/schema.ts'
import { hashToken, hmac, newToken, safeEqual } from '../lib/secrets.ts'
import { isUuid } from '../lib/uuid.ts'
import type { Jwk } from '../wallet-addresses/keys.ts'
import type { AccessItem } from './access.ts'

export type GrantClient = { walletAddress: string } | { jwk: Jwk }

export interface Interaction {
  id: string
  nonce: string
  expiresAt: Date
  finish: { method: 'redirect'; uri: string; clientNonce: string } | undefined
  sessionHash: string | null
  /** The wallet address URL the identity step said the signed-in account holder controls. */
  signedInAs: string | null
  /** The grant's wallet address, once its account holder signed in (null for anyone else). */
  subjectWalletAddressId: string | null
  refHash: string | null
}

export interface Grant {
  id: string
  state: 'pending' | 'approved' | 'finalized'
  finalization: 'issued' | 'revoked' | 'rejected' | null
  client: GrantClient
  access: AccessItem[]
  /** The wallet address URL the account holder is asked to prove control of (a subject grant). */
  subject: string | undefined
  walletAddressId: string | null
  continueId: string
  continueSalt: string
  lastContinuedAt: Date | null
  interaction: Interaction | undefined
  createdAt: Date
}

export interface AccessToken {
  id: string
  grantId: string
  valueHash: string
  manageId: string
  expiresAt: Date
  revokedAt: Date | null
  createdAt: Date
}

export interface NewGrant {
  client: GrantClient
  access: AccessItem[]
  subject?: string
  walletAddressId: string | undefined
  interaction?: { expiresAt: Date; finish: Interaction['finish'] }
}

export async function createGrant(trx: Db, input: NewGrant): Promise<Grant> {
  const i = input.interaction
  const [row] = await insertGrant(trx, [
    randomUUID(),
    i ? 'pending' : 'finalized',
    i ? null : 'issued',
    'walletAddress' in input.client ? input.client.walletAddress : null,
    'jwk' in input.client ? JSON.stringify(input.client.jwk) : null,
    JSON.stringify(input.access),
    input.subject ?? null,
    input.walletAddressId ?? null,
    randomUUID(),
    newToken(16),
    i ? randomUUID() : null,
    i ? newToken(16) : null,
    i?.expiresAt ?? null,
    i?.finish?.method ?? null,
    i?.finish?.uri ?? null,
    i?.finish?.clientNonce ?? null,
  ])
  return toGrant(row!)
}

// Every grant request writes one: prepared, as the statements of the interaction that follows.
const insertGrant = prepared<GrantRow>(
  `
  INSERT INTO grants (id, state, finalization, client_wallet_address, client_jwk, access,
                      subject_id, wallet_address_id, continue_id, continue_salt, interact_id,
                      interact_nonce, interact_expires_at, finish_method, finish_uri, client_nonce)
  VALUES ($1::uuid, $2, $3, $4, $5::jsonb, $6::jsonb, $7, $8::uuid, $9::uuid, $10, $11::uuid, $12,
          $13::timestamptz, $14, $15, $16)
  RETURNING *`,
  { shared: true },
)

/** A grant's row as `SELECT *` returns it. */
export type GrantRow = Selectable<GrantsTable>

// By each key a grant is found by, with and without its row's lock: prepared, as every step of an
// interaction and every continuation reads the grant first.
const grantBy = (column: string) =>
  [false, true].map((lock) =>
    prepared<GrantRow>(
      `SELECT * FROM grants WHERE ${column} = $1::uuid${lock ? ' FOR UPDATE' : ''}`,
      { shared: !lock },
    ),
  )
const GRANT_BY = {
  id: grantBy('id'),
  continueId: grantBy('continue_id'),
  interactId: grantBy('interact_id'),
}

export async function findGrant(
  db: Db,
  by: { id: string } | { continueId: string } | { interactId: string },
  opts: { forUpdate?: boolean } = {},
): Promise<Grant | undefined> {
  const [key, value] = Object.entries(by)[0] as [keyof typeof GRANT_BY, string]
  // Ids come from URLs: one that is not a uuid names no grant, and must not reach a uuid column.
  if (!isUuid(value)) return undefined
  const [row] = await GRANT_BY[key][opts.forUpdate ? 1 : 0]!(db, [value])
  return row && toGrant(row)
}

/** What an access token carries: its issued grant's id, access and client. */
export interface TokenGrant {
  id: string
  access: AccessItem[]
  client: GrantClient
}

/**
 * The rows of an active token, as SQL text: its row (`t`) and its grant's (`g`) when the token is
 * unrevoked, unexpired at `now` and its grant issued. `hash` and `now` are SQL (placeholders). The
 * one definition of an active token for the statements that check one themselves.
 */
const activeToken = (
  hash: string,
  now: string,
) => `access_tokens t JOIN grants g ON g.id = t.grant_id
   WHERE t.value_hash = ${hash} AND t.revoked_at IS NULL AND t.expires_at > ${now}
     AND g.finalization = 'issued'`

/**
 * SQL of a scalar subquery: the issued grant of an unrevoked, unexpired token, as JSON, or NULL.
 * `hash` and `now` name the parameters that hold `tokenParams`. A resource read embeds it so
 * that the introspection costs no statement of its own.
 */
export const tokenGrantSql = (hash: string, now: string) => `(
  SELECT json_build_object('id', g.id, 'access', g.access,
           'walletAddress', g.client_wallet_address, 'jwk', g.client_jwk)
    FROM ${activeToken(hash, now)})`

/**
 * A condition, as SQL text: the token whose hash is `hash` is active at `now` (`activeToken`);
 * `hash` and `now` name parameters. A write that must only happen for an active token embeds it,
 * so that the token's state costs no statement of its own (`authorize`'s `tokenUnchecked`).
 */
export const tokenActiveSql = (hash: string, now: string) =>
  `EXISTS (SELECT 1 FROM ${activeToken(hash, now)})`

/** The parameters of `tokenGrantSql`; no token (a malformed header) matches nothing. */
export const tokenParams = (value: string | undefined, now: Date) => [
  value === undefined ? null : hashToken(value),
  now,
]

/** The grant a `tokenGrantSql` column returned. */
export function tokenGrantOf(json: unknown): TokenGrant | undefined {
  if (json === null || json === undefined) return undefined
  const g = json as { id: string; access: AccessItem[]; walletAddress: string | null; jwk: Jwk }
  return {
    id: g.id,
    access: g.access,
    client: g.walletAddress ? { walletAddress: g.walletAddress } : { jwk: g.jwk },
  }
}

const tokenGrant = prepared<{ token_grant: unknown }>(
  `SELECT ${tokenGrantSql('$1', '$2')} AS token_grant`,
  { shared: true },
)

/** The grant of an active token, in one statement (every API call asks). */
export async function findTokenGrant(
  db: Db,
  value: string,
  now: Date,
): Promise<TokenGrant | undefined> {
  const [row] = await tokenGrant(db, tokenParams(value, now))
  return tokenGrantOf(row?.token_grant)
}

const tokenActiveByHash = prepared<{ active: boolean }>(
  `SELECT ${tokenActiveSql('$1', '$2')} AS active`,
  { shared: true },
)

/** Whether the token whose hash is `hash` is active at `now` (`tokenActiveSql`), in one statement. */
export async function isTokenActive(db: Db, hash: string, now: Date): Promise<boolean> {
  const [row] = await tokenActiveByHash(db, [hash, now])
  return row?.active === true
}

export async function listGrants(db: Db, walletAddressId: string): Promise<Grant[]> {
  const rows = await db
    .selectFrom('grants')
    .selectAll()
    .where('wallet_address_id', '=', walletAddressId)
    .orderBy('created_at', 'desc')
    .limit(100)
    .execute()
  return rows.map(toGrant)
}

export interface GrantFilter {
  walletAddressId?: string
  /** The client's wallet address URL. */
  client?: string
  state?: Grant['state']
  finalization?: NonNullable<Grant['finalization']>
}

/** Grants newest first, after the grant `afterId`, filtered. */
export async function listGrantsPage(
  db: Db,
  filter: GrantFilter & { afterId?: string; limit: number },
): Promise<Grant[]> {
  let q = db
    .selectFrom('grants as g')
    .selectAll()
    .orderBy('g.created_at', 'desc')
    .orderBy('g.id', 'desc')
    .limit(filter.limit)
  if (filter.walletAddressId !== undefined)
    q = q.where('g.wallet_address_id', '=', filter.walletAddressId)
  if (filter.client !== undefined) q = q.where('g.client_wallet_address', '=', filter.client)
  if (filter.state !== undefined) q = q.where('g.state', '=', filter.state)
  if (filter.finalization !== undefined) q = q.where('g.finalization', '=', filter.finalization)
  if (filter.afterId !== undefined) {
    const after = filter.afterId
    q = q.where((eb) =>
      eb(
        eb.refTuple('g.created_at', 'g.id'),
        '<',
        eb
          .selectFrom('grants')
          .select(['created_at', 'id'])
          .where('id', '=', after)
          .$asTuple('created_at', 'id'),
      ),
    )
  }
  return (await q.execute()).map(toGrant)
}

type GrantPatch = Partial<{
  state: Grant['state']
  finalization: NonNullable<Grant['finalization']>
  lastContinuedAt: Date
  sessionHash: string
  signedInAs: string | null
  subjectWalletAddressId: string | null
  refHash: string | null
}>

/**
 * Changes a grant; with `whileState`, only while it is still in that state (one statement: the
 * row's lock is taken by the update itself). True when the grant was changed.
 */
export async function updateGrant(
  trx: Db,
  id: string,
  p: GrantPatch,
  opts: { whileState?: Grant['state'] } = {},
): Promise<boolean> {
  let q = trx.updateTable('grants').set(grantValues(p)).where('id', '=', id)
  if (opts.whileState) q = q.where('state', '=', opts.whileState)
  const { numUpdatedRows } = await q.executeTakeFirst()
  return numUpdatedRows > 0n
}

const grantValues = (p: GrantPatch) => ({
  ...(p.state && { state: p.state }),
  ...(p.finalization && { finalization: p.finalization }),
  ...(p.lastContinuedAt && { last_continued_at: p.lastContinuedAt }),
  ...(p.sessionHash && { interact_session_hash: p.sessionHash }),
  ...(p.signedInAs !== undefined && { interact_signed_in_as: p.signedInAs }),
  ...(p.subjectWalletAddressId !== undefined && {
    subject_wallet_address_id: p.subjectWalletAddressId,
  }),
  ...(p.refHash !== undefined && { interact_ref_hash: p.refHash }),
  updated_at: new Date(),
})

/**
 * The continuation with an `interact_ref` of an approved grant that asked for access only (no
 * subject), in one statement: the grant is finalized as issued, its `interact_ref` cleared (it is
 * single use), and its access token written. Undefined when the grant is not (or no longer) in that
 * state or the reference does not match: nothing was written, and the caller decides why under the
 * grant's lock.
 */
export async function issueOnInteractRef(
  db: Db,
  grantId: string,
  ref: string,
  lifetimeSeconds: number,
): Promise<{ value: string; token: AccessToken } | undefined> {
  const { value, row } = newAccessToken(grantId, lifetimeSeconds)
  const [inserted] = await issueOnRef(db, [
    grantId,
    hashToken(ref),
    new Date(),
    row.id,
    row.value_hash,
    row.manage_id,
    row.expires_at,
  ])
  return inserted && { value, token: toToken(inserted) }
}

const issueOnRef = prepared<Selectable<AccessTokensTable>>(`
  WITH g AS (
    UPDATE grants SET state = 'finalized', finalization = 'issued', interact_ref_hash = NULL,
                      last_continued_at = $3, updated_at = $3
     WHERE id = $1::uuid AND state = 'approved' AND interact_ref_hash = $2 AND subject_id IS NULL
    RETURNING id)
  INSERT INTO access_tokens (id, grant_id, value_hash, manage_id, expires_at, revoked_at)
  SELECT $4::uuid, g.id, $5, $6::uuid, $7::timestamptz, NULL FROM g
  RETURNING *`)

/**
 * True when the account holder who signed in during the interaction holds the wallet address the
 * grant is for: only then may a subject grant tell the client that they control it.
 */
export const subjectProven = (g: Grant) =>
  g.subject !== undefined &&
  g.walletAddressId !== null &&
  g.interaction?.subjectWalletAddressId === g.walletAddressId

/** Ends a grant for good and revokes every token it issued. */
export async function revokeGrant(trx: Db, grantId: string): Promise<void> {
  await updateGrant(trx, grantId, { state: 'finalized', finalization: 'revoked', refHash: null })
  await trx
    .updateTable('access_tokens')
    .set({ revoked_at: new Date() })
    .where('grant_id', '=', grantId)
    .where('revoked_at', 'is', null)
    .execute()
}

/**
 * The continuation token, derived rather than stored: the same value is handed out on every
 * response (clients keep the first one to cancel later) and nothing in the database reveals it.
 */
export const continueToken = (secret: string, g: Grant) =>
  hmac(secret, `continue:${g.id}:${g.continueSalt}`)

export async function issueToken(
  trx: Db,
  grantId: string,
  lifetimeSeconds: number,
): Promise<{ value: string; token: AccessToken }> {
  const { value, row } = newAccessToken(grantId, lifetimeSeconds)
  const stored = await trx
    .insertInto('access_tokens')
    .values(row)
    .returningAll()
    .executeTakeFirstOrThrow()
  return { value, token: toToken(stored) }
}

/** A new access token's value (handed out once) and its row (which holds only its hash). */
function newAccessToken(grantId: string, lifetimeSeconds: number) {
  const value = newToken()
  return {
    value,
    row: {
      id: randomUUID(),
      grant_id: grantId,
      value_hash: hashToken(value),
      manage_id: randomUUID(),
      expires_at: new Date(Date.now() + lifetimeSeconds * 1000),
      revoked_at: null,
    },
  }
}

export async function findToken(
  db: Db,
  by: { value: string } | { manageId: string },
  opts: { forUpdate?: boolean } = {},
): Promise<AccessToken | undefined> {
  let q = db.selectFrom('access_tokens').selectAll()
  q =
    'value' in by
      ? q.where('value_hash', '=', hashToken(by.value))
      : q.where('manage_id', '=', by.manageId)
  if (opts.forUpdate) q = q.forUpdate()
  const row = await q.executeTakeFirst()
  return row && toToken(row)
}

export async function revokeToken(trx: Db, tokenId: string): Promise<void> {
  await trx
    .updateTable('access_tokens')
    .set({ revoked_at: new Date() })
    .where('id', '=', tokenId)
    .where('revoked_at', 'is', null)
    .execute()
}

/** True when `value` is this token's value (compared through the stored hash). */
export const tokenMatches = (token: AccessToken, value: string) =>
  safeEqual(token.valueHash, hashToken(value))

export function toGrant(r: GrantRow): Grant {
  return {
    id: r.id,
    state: r.state,
    finalization: r.finalization,
    client: r.client_wallet_address
      ? { walletAddress: r.client_wallet_address }
      : { jwk: r.client_jwk as Jwk },
    access: r.access as AccessItem[],
    subject: r.subject_id ?? undefined,
    walletAddressId: r.wallet_address_id,
    continueId: r.continue_id,
    continueSalt: r.continue_salt,
    lastContinuedAt: r.last_continued_at,
    interaction: r.interact_id
      ? {
          id: r.interact_id,
          nonce: r.interact_nonce!,
          expiresAt: r.interact_expires_at!,
          finish: r.finish_uri
            ? { method: 'redirect', uri: r.finish_uri, clientNonce: r.client_nonce! }
            : undefined,
          sessionHash: r.interact_session_hash,
          signedInAs: r.interact_signed_in_as,
          subjectWalletAddressId: r.subject_wallet_address_id,
          refHash: r.interact_ref_hash,
        }
      : undefined,
    createdAt: r.created_at,
  }
}

function toToken(r: Selectable<AccessTokensTable>): AccessToken {
  return {
    id: r.id,
    grantId: r.grant_id,
    valueHash: r.value_hash,
    manageId: r.manage_id,
    expiresAt: r.expires_at,
    revokedAt: r.revoked_at,
    createdAt: r.created_at,
  }
}
