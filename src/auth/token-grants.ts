import { createLru } from '../lib/lru.ts'
import type { TokenGrant } from './grants.ts'

/** Only tokens seen active are kept, and no more than this many (least recently used out). */
export const MAX_TOKEN_GRANTS = 10_000

/**
 * What never changes about an access token, by its hash: its grant's id, access and client (a
 * grant's access and client are fixed when it is created, and a token belongs to one grant for
 * life). A request whose write checks the token's state itself (`tokenActiveSql`) takes them from
 * here instead of reading the grant first. The token's state (revoked, expired, its grant revoked)
 * is never kept: the write refuses an inactive token, so a revoked token is refused on the very
 * next request all the same.
 */
export interface TokenGrants {
  get(hash: string): TokenGrant | undefined
  set(hash: string, grant: TokenGrant): void
  delete(hash: string): void
  readonly size: number
}

export function createTokenGrants(max = MAX_TOKEN_GRANTS): TokenGrants {
  return createLru<string, TokenGrant>(max)
}

/**
 * The process's: shared by its servers (token hashes are unique). The authorization server puts
 * in every token it issues, so that the resource server of the same process knows the token from
 * its first request; a resource server of another process reads it once.
 */
export const tokenGrants = createTokenGrants()
