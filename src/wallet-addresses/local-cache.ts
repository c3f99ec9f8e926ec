import type { Db } from '../db/database.ts'
import { BoundedMap } from '../lib/oldest-out.ts'
import { type Jwk, toJwk } from './keys.ts'
import { getWalletAddress, type WalletAddress } from './service.ts'

/**
 * How long this process uses a wallet address or key set it read, unless it changed them itself.
 * A key revoked (or a wallet address deactivated) through another process is still accepted here
 * for at most this long; every signed request would otherwise read them again.
 */
export const LOCAL_CACHE_MAX_AGE_MS = 5_000
/** Paths come from requests: the caches must not grow without bound. */
const MAX_ENTRIES = 10_000

/**
 * Wallet addresses of this server and their active signing keys, read from the database and kept
 * for a bounded time. Only what exists is kept: a new wallet address or key is found at once, in
 * every process. The admin routes of this process call `invalidate` on every change.
 */
export interface LocalWalletAddresses {
  /** The wallet address at `path` (active or not). */
  byPath(path: string): Promise<WalletAddress | undefined>
  /** The wallet address with this id (active or not). */
  byId(id: string): Promise<WalletAddress | undefined>
  /** The active key `kid` of the active wallet address at `path`. */
  activeKey(path: string, kid: string): Promise<Jwk | undefined>
  /** Forgets everything (this process changed a wallet address or a key). */
  invalidate(): void
}

interface Entry<T> {
  at: number
  value: Promise<T>
}

export function createLocalWalletAddresses(
  db: Db,
  opts: { maxAgeMs?: number; now?: () => number } = {},
): LocalWalletAddresses {
  const maxAgeMs = opts.maxAgeMs ?? LOCAL_CACHE_MAX_AGE_MS
  const now = opts.now ?? Date.now
  const addresses = new BoundedMap<string, Entry<WalletAddress | undefined>>(MAX_ENTRIES)
  const addressesById = new BoundedMap<string, Entry<WalletAddress | undefined>>(MAX_ENTRIES)
  const keySets = new BoundedMap<string, Entry<Jwk[]>>(MAX_ENTRIES)

  /** Concurrent callers share one query; a result nobody should keep is dropped when it lands. */
  const cached = <T>(
    cache: BoundedMap<string, Entry<T>>,
    key: string,
    load: () => Promise<T>,
    keep: (v: T) => boolean,
    fresh = false,
  ): Promise<T> => {
    const hit = cache.get(key)
    if (!fresh && hit && now() - hit.at < maxAgeMs) return hit.value
    const entry: Entry<T> = { at: now(), value: load() }
    cache.delete(key)
    cache.set(key, entry)
    cache.trim()
    entry.value.then(
      (v) => {
        if (!keep(v) && cache.get(key) === entry) cache.delete(key)
      },
      () => {
        if (cache.get(key) === entry) cache.delete(key)
      },
    )
    return entry.value
  }

  const keysOf = (path: string, fresh?: boolean) =>
    cached(
      keySets,
      path,
      () => findActiveKeys(db, path),
      (keys) => keys.length > 0,
      fresh,
    )

  return {
    byPath: (path) =>
      cached(
        addresses,
        path,
        () => getWalletAddress(db, { path }),
        (wa) => wa !== undefined,
      ),
    byId: (id) =>
      cached(
        addressesById,
        id,
        () => getWalletAddress(db, { id }),
        (wa) => wa !== undefined,
      ),
    async activeKey(path, kid) {
      let key = (await keysOf(path)).find((k) => k.kid === kid)
      // The key may have been added (by another process) since the set was read.
      key ??= (await keysOf(path, true)).find((k) => k.kid === kid)
      return key
    },
    invalidate() {
      addresses.clear()
      addressesById.clear()
      keySets.clear()
    },
  }
}

/** The active keys of the active wallet address at `path`, in one query. */
async function findActiveKeys(db: Db, path: string): Promise<Jwk[]> {
  const rows = await db
    .selectFrom('wallet_address_keys as k')
    .innerJoin('wallet_addresses as w', 'w.id', 'k.wallet_address_id')
    .select(['k.kid', 'k.x'])
    .where('w.path', '=', path)
    .where('w.status', '=', 'active')
    .where('k.revoked_at', 'is', null)
    .execute()
  return rows.map((r) => toJwk(r.kid, r.x))
}
