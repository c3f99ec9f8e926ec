import type { Db } from '../db/database.ts'
import { BoundedMap } from '../lib/oldest-out.ts'
import { type Peer, peerByIncomingToken } from './service.ts'

/**
 * How long a peer found by its incoming token is used without asking the database again: a peer
 * removed (or changed) through another process's admin API is still recognised by this process
 * for at most this long. This process's own admin changes clear the cache at once. Money does not
 * depend on it: the booking of a packet checks, in its transaction, that the peer still exists.
 */
export const PEER_TOKEN_TTL_MS = 5000
/** Peers have a handful of tokens each; more entries than this means something is off. */
const MAX_ENTRIES = 1000

export interface PeerTokenCache {
  /** The peer presenting this bearer token; unknown tokens are asked every time, never kept. */
  peer(token: string): Promise<Peer | undefined>
  clear(): void
}

export function createPeerTokenCache(
  db: Db,
  opts: { ttlMs: number; maxEntries?: number } = { ttlMs: PEER_TOKEN_TTL_MS },
): PeerTokenCache {
  const max = opts.maxEntries ?? MAX_ENTRIES
  // The lookup in flight is shared: a burst of packets with a new token asks once.
  const entries = new BoundedMap<string, { peer: Promise<Peer | undefined>; until: number }>(max)
  return {
    peer(token) {
      // Keyed by the token itself: hashing it would cost more than the rest of the lookup.
      const now = Date.now()
      const hit = entries.get(token)
      if (hit && hit.until > now) return hit.peer
      entries.delete(token)
      const peer = peerByIncomingToken(db, token)
      const entry = { peer, until: now + opts.ttlMs }
      entries.set(token, entry)
      entries.trim()
      // A guess, or a failed read, is not kept: only known peers are.
      const drop = () => {
        if (entries.get(token) === entry) entries.delete(token)
      }
      peer.then((p) => p === undefined && drop(), drop)
      return peer
    },
    clear: () => entries.clear(),
  }
}

const perDatabase = new WeakMap<Db, PeerTokenCache>()

/** The process's cache for this database (one per database, so test servers do not share one). */
export function peerTokenCache(db: Db): PeerTokenCache {
  let cache = perDatabase.get(db)
  if (!cache) {
    cache = createPeerTokenCache(db)
    perDatabase.set(db, cache)
  }
  return cache
}
