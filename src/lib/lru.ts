import { BoundedMap } from './oldest-out.ts'

/**
 * A map that keeps at most `max` entries, the least recently used (read or written) going first.
 * Map keeps insertion order, so moving an entry to the end on each use is all the bookkeeping.
 */
export interface Lru<K, V> {
  get(key: K): V | undefined
  set(key: K, value: V): void
  delete(key: K): void
  readonly size: number
}

export function createLru<K, V>(max: number): Lru<K, V> {
  const entries = new BoundedMap<K, V>(max)
  return {
    get(key) {
      const value = entries.get(key)
      if (value !== undefined) {
        entries.delete(key)
        entries.set(key, value)
      }
      return value
    },
    set(key, value) {
      entries.delete(key)
      entries.set(key, value)
      entries.trim()
    },
    delete: (key) => void entries.delete(key),
    get size() {
      return entries.size
    },
  }
}
