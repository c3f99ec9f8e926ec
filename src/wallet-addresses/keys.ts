import { createPublicKey, randomUUID } from 'node:crypto'
import type { Selectable } from 'kysely'
import type { Db } from '../db/database.ts'
import { isUniqueViolation } from '../db/errors.ts'
import type { WalletAddressKeysTable } from '../db/schema.ts'

/** The Open Payments JWK of an Ed25519 public key. */
export interface Jwk {
  kid: string
  alg: 'EdDSA'
  kty: 'OKP'
  crv: 'Ed25519'
  x: string
}

export interface WalletAddressKey {
  id: string
  walletAddressId: string
  jwk: Jwk
  createdAt: Date
  revokedAt: Date | null
}

export type KeyError = 'invalid_key' | 'duplicate_kid'

export const toJwk = (kid: string, x: string): Jwk => ({
  kid,
  alg: 'EdDSA',
  kty: 'OKP',
  crv: 'Ed25519',
  x,
})

/** True when `x` is a usable Ed25519 public key: 32 bytes that node:crypto accepts. */
export function isEd25519PublicKey(x: string): boolean {
  if (!/^[A-Za-z0-9_-]{43}$/.test(x)) return false
  try {
    createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' })
    return true
  } catch {
    return false
  }
}

export async function addKey(
  db: Db,
  walletAddressId: string,
  jwk: { kid: string; x: string },
): Promise<WalletAddressKey | KeyError> {
  if (!isEd25519PublicKey(jwk.x)) return 'invalid_key'
  try {
    const row = await db
      .insertInto('wallet_address_keys')
      .values({
        id: randomUUID(),
        wallet_address_id: walletAddressId,
        kid: jwk.kid,
        x: jwk.x,
        revoked_at: null,
      })
      .returningAll()
      .executeTakeFirstOrThrow()
    return toKey(row)
  } catch (err) {
    if (isUniqueViolation(err)) return 'duplicate_kid'
    throw err
  }
}

/** Revokes a key; revoking an already revoked key returns it unchanged. */
export async function revokeKey(
  db: Db,
  walletAddressId: string,
  keyId: string,
): Promise<WalletAddressKey | undefined> {
  await db
    .updateTable('wallet_address_keys')
    .set({ revoked_at: new Date() })
    .where('id', '=', keyId)
    .where('wallet_address_id', '=', walletAddressId)
    .where('revoked_at', 'is', null)
    .execute()
  const row = await db
    .selectFrom('wallet_address_keys')
    .selectAll()
    .where('id', '=', keyId)
    .where('wallet_address_id', '=', walletAddressId)
    .executeTakeFirst()
  return row && toKey(row)
}

export async function listKeys(
  db: Db,
  walletAddressId: string,
  opts: { includeRevoked: boolean },
): Promise<WalletAddressKey[]> {
  let q = db
    .selectFrom('wallet_address_keys')
    .selectAll()
    .where('wallet_address_id', '=', walletAddressId)
    .orderBy('created_at')
    .orderBy('id')
  if (!opts.includeRevoked) q = q.where('revoked_at', 'is', null)
  return (await q.execute()).map(toKey)
}

function toKey(row: Selectable<WalletAddressKeysTable>): WalletAddressKey {
  return {
    id: row.id,
    walletAddressId: row.wallet_address_id,
    jwk: toJwk(row.kid, row.x),
    createdAt: row.created_at,
    revokedAt: row.revoked_at,
  }
}
