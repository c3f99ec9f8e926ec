import { BoundedMap } from './oldest-out.ts'

/**
 * Token buckets by key (an IP address, a client, a peer): each key may spend `capacity` tokens at
 * once and earns them back evenly, `capacity` per `windowMs`. State lives in this process only.
 */
export interface RateBuckets {
  /** Takes one token: 0 when there was one, else the whole seconds until there will be one. */
  take(key: string): number
  /** Tokens `key` has now, without taking one. */
  tokens(key: string): number
  /** Whole seconds until `key` has a token; 0 when it has one now. */
  waitSeconds(key: string): number
}

interface Bucket {
  tokens: number
  at: number
}

/**
 * At most `maxKeys` keys are remembered, least recently used first out. A forgotten key starts
 * full, so under a flood of distinct keys the bound errs towards letting a request through, never
 * towards refusing one, and memory stays bounded.
 */
export function createRateBuckets(opts: {
  capacity: number
  windowMs: number
  maxKeys?: number
  now?: () => number
}): RateBuckets {
  const { capacity } = opts
  const perMs = capacity / opts.windowMs
  const maxKeys = opts.maxKeys ?? 50_000
  const now = opts.now ?? Date.now
  const buckets = new BoundedMap<string, Bucket>(maxKeys)

  /** The key's bucket, refilled up to now and moved to the most recently used end. */
  const current = (key: string): Bucket => {
    const t = now()
    const b = buckets.get(key) ?? { tokens: capacity, at: t }
    b.tokens = Math.min(capacity, b.tokens + (t - b.at) * perMs)
    b.at = t
    buckets.delete(key)
    buckets.set(key, b)
    buckets.trim()
    return b
  }
  const wait = (b: Bucket) =>
    b.tokens >= 1 ? 0 : Math.max(1, Math.ceil((1 - b.tokens) / perMs / 1000))

  return {
    take(key) {
      const b = current(key)
      if (b.tokens < 1) return wait(b)
      b.tokens -= 1
      return 0
    },
    // Reads do not add a key: a key never charged is full.
    tokens: (key) => (buckets.has(key) ? current(key).tokens : capacity),
    waitSeconds: (key) => (buckets.has(key) ? wait(current(key)) : 0),
  }
}
