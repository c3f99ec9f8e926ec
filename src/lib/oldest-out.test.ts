import assert from 'node:assert/strict'
import { test } from 'node:test'
import { BoundedMap, oldestOut } from './oldest-out.ts'

test('deletes the oldest live entry each time, as a fresh iterator would', () => {
  const kept = new Map<number, number>()
  const fresh = new Map<number, number>()
  const evict = oldestOut(kept)
  // Inserts, moves to the end (delete and set), deletes from the middle and evictions, mixed.
  for (let i = 0; i < 50_000; i++) {
    for (const m of [kept, fresh]) m.set(i, i)
    if (i % 3 === 0) {
      for (const m of [kept, fresh]) {
        const v = m.get(i - 7)
        if (v !== undefined) {
          m.delete(i - 7)
          m.set(i - 7, v)
        }
      }
    }
    if (i % 5 === 0) for (const m of [kept, fresh]) m.delete(i - 11)
    if (kept.size > 1000) {
      evict()
      fresh.delete(fresh.keys().next().value!)
    }
    assert.equal(kept.size, fresh.size)
  }
  assert.deepEqual([...kept.keys()], [...fresh.keys()])
})

test('goes on after the map was emptied', () => {
  const map = new Map<string, number>([['a', 1]])
  const evict = oldestOut(map)
  evict()
  evict()
  assert.equal(map.size, 0)
  map.set('b', 2).set('c', 3)
  evict()
  assert.deepEqual([...map.keys()], ['c'])
  map.clear()
  map.set('d', 4).set('e', 5)
  evict()
  assert.deepEqual([...map.keys()], ['e'])
})

test('a bounded map keeps its newest entries, at most its max', () => {
  const map = new BoundedMap<string, number>(2)
  for (const k of ['a', 'b', 'c']) {
    map.set(k, 1)
    map.trim()
  }
  assert.deepEqual([...map.keys()], ['b', 'c'])
  map.delete('b')
  map.set('b', 2)
  map.set('d', 3)
  map.trim()
  assert.deepEqual([...map.keys()], ['b', 'd'])
})
