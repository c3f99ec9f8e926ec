import type { FastifyRequest } from 'fastify'
import type { AccessType } from '../auth/access.ts'
import type { Deps } from '../deps.ts'
import { badRequest } from '../lib/errors.ts'
import { findActiveByUrl, type WalletAddress } from '../wallet-addresses/service.ts'
import type { AccessNeed } from './authorize.ts'

export { isUuid } from '../lib/uuid.ts'

/**
 * Remembers the resource a route's `access` function loaded (to learn its owner), so the handler
 * does not load it again.
 */
export function loadedResource<T>() {
  const loaded = new WeakMap<FastifyRequest, T>()
  return {
    set: (req: FastifyRequest, value: T) => {
      loaded.set(req, value)
      return value
    },
    get: (req: FastifyRequest): T => {
      const value = loaded.get(req)
      if (value === undefined) throw new Error('resource was not loaded by the access check')
      return value
    },
    /** What the access check loaded, if it loaded anything (it may read only some requests). */
    find: (req: FastifyRequest): T | undefined => loaded.get(req),
  }
}

/** The access of a create: `action` on the wallet address named in the body. */
export const onBodyWalletAddress =
  (type: AccessType, action: string) =>
  async (req: FastifyRequest): Promise<AccessNeed> => ({
    type,
    action,
    identifier: (req.body as { walletAddress: string }).walletAddress,
  })

/** The access of a list: `list` on the wallet address named in the query. */
export const onQueryWalletAddress =
  (type: AccessType) =>
  async (req: FastifyRequest): Promise<AccessNeed> => ({
    type,
    action: 'list',
    identifier: (req.query as { 'wallet-address': string })['wallet-address'],
  })

/** The active wallet address of this server a request names, or 400 `unknown wallet address`. */
export async function requireWalletAddress(deps: Deps, url: string): Promise<WalletAddress> {
  const wa = await findActiveByUrl(deps.walletAddresses, deps.config, url)
  if (!wa) throw badRequest('unknown wallet address')
  return wa
}
