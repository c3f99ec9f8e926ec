import { type Db, prepared } from '../db/database.ts'
import { isUuid } from '../lib/uuid.ts'
import { type Grant, type GrantRow, toGrant } from './grants.ts'

/**
 * The steps of an interaction that read the grant and then write it, each as one UPDATE whose
 * conditions are the checks the read was for: the interaction the URL names (its id and nonce),
 * still pending and unexpired, and from the second step on the browser that started it (its
 * cookie's hash). The usual path of each step then costs one statement instead of two. When one
 * matches no row, nothing was written: the route reads the grant and says why (which page).
 *
 * Secrets are compared as digests, never as themselves: the nonce (stored as it is, since the
 * finish hash needs it) by SHA-256 here, the cookie by the hash that is all the row keeps. How
 * long a comparison takes then tells nothing about the secret, as `safeEqual` in the routes.
 */
const OPEN = `interact_id = $1::uuid
  AND sha256(convert_to(interact_nonce, 'UTF8')) = sha256(convert_to($2::text, 'UTF8'))
  AND state = 'pending' AND interact_expires_at > $3::timestamptz`
const SAME_BROWSER = `interact_session_hash = $4`

const TOKEN_TEXT = /^[A-Za-z0-9_-]{1,128}$/

/** Where a step's URL points: `/interact/:id/:nonce`. */
export type InteractionParams = { id: string; nonce: string }

const updated = async (
  statement: (db: Db, params: unknown[]) => Promise<GrantRow[]>,
  db: Db,
  at: InteractionParams,
  rest: unknown[],
): Promise<Grant | undefined> => {
  // What no interaction has (an id that is not a uuid, a nonce that is not a token's base64url)
  // must not reach a uuid column or a text one (a NUL byte is an error there): the route's read
  // answers it.
  if (!isUuid(at.id) || !TOKEN_TEXT.test(at.nonce)) return undefined
  const [row] = await statement(db, [at.id, at.nonce, new Date(), ...rest])
  return row && toGrant(row)
}

// Whoever signed in did so in the browser bound before: a browser that opens the link anew (the
// client itself, which has the link) starts unsigned, or it could answer the holder's consent.
const bind = prepared<GrantRow>(`
  UPDATE grants SET interact_session_hash = $4, interact_signed_in_as = NULL,
                    subject_wallet_address_id = NULL, updated_at = $3
   WHERE ${OPEN} RETURNING *`)

/**
 * The first step: binds the browser that opened the link (by its cookie's hash), signed in as
 * nobody.
 */
export const bindBrowser = (db: Db, at: InteractionParams, sessionHash: string) =>
  updated(bind, db, at, [sessionHash])

const signIn = prepared<GrantRow>(`
  UPDATE grants SET interact_signed_in_as = $5, subject_wallet_address_id = wallet_address_id,
                    updated_at = $3
   WHERE ${OPEN} AND ${SAME_BROWSER} AND wallet_address_id = $6::uuid
  RETURNING *`)

/**
 * The identity step's usual outcome: the account holder of the grant's own wallet address
 * (`walletAddressId`, whose URL is `subject`) signed in.
 */
export const signedInOwner = (
  db: Db,
  at: InteractionParams,
  sessionHash: string,
  owner: { subject: string; walletAddressId: string },
) => updated(signIn, db, at, [sessionHash, owner.subject, owner.walletAddressId])

const accept = prepared<GrantRow>(`
  UPDATE grants SET state = 'approved', interact_ref_hash = $5, updated_at = $3
   WHERE ${OPEN} AND ${SAME_BROWSER} AND interact_signed_in_as IS NOT NULL
  RETURNING *`)
const deny = prepared<GrantRow>(`
  UPDATE grants SET state = 'finalized', finalization = 'rejected', updated_at = $3
   WHERE ${OPEN} AND ${SAME_BROWSER} AND interact_signed_in_as IS NOT NULL
  RETURNING *`)

/**
 * The consent form's answer from the signed-in browser: approved with the hash of the
 * `interact_ref` handed to the client, or rejected. Only the first answer counts, as the grant must
 * still be pending.
 */
export const answerConsent = (
  db: Db,
  at: InteractionParams,
  sessionHash: string,
  answer: { decision: 'accept'; refHash: string } | { decision: 'deny' },
) =>
  answer.decision === 'accept'
    ? updated(accept, db, at, [sessionHash, answer.refHash])
    : updated(deny, db, at, [sessionHash])
