import type { Db } from '../db/database.ts'
import { type AccessItem, matchAccess, type RequestedAccess } from './access.ts'
import { findTokenGrant, type GrantClient, type TokenGrant } from './grants.ts'

export interface IntrospectionRequest {
  access_token: string
  access?: RequestedAccess[]
}

export type IntrospectionResult =
  | { active: false }
  | { active: true; grant: string; access: AccessItem[]; client: GrantClient }

/**
 * Token introspection (the Rafiki contract): inactive when the token is unknown, revoked or expired,
 * or its grant is not issued (pending, rejected or revoked). When `access` is given, only the granted
 * items that cover it are returned; the resource server decides what an empty list means.
 */
export async function introspect(
  db: Db,
  req: IntrospectionRequest,
  now = new Date(),
): Promise<IntrospectionResult> {
  return introspectGrant(await findTokenGrant(db, req.access_token, now), req.access)
}

/** The introspection of a token whose grant was read already (undefined: no active token). */
export function introspectGrant(
  grant: TokenGrant | undefined,
  requested: RequestedAccess[] | undefined,
): IntrospectionResult {
  if (!grant) return { active: false }
  const access = requested
    ? grant.access.filter((g) => requested.some((r) => matchAccess([g], r).length > 0))
    : grant.access
  return { active: true, grant: grant.id, access, client: grant.client }
}
