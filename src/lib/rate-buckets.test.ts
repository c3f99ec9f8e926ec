import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createRateBuckets } from './rate-buckets.ts'

test('a key spends its capacity at once, then earns tokens back evenly', () => {
  let now = 0
  const buckets = createRateBuckets({ capacity: 3, windowMs: 60_000, now: () => now })
  assert.deepEqual(
    [1, 2, 3].map(() => buckets.take('a')),
    [0, 0, 0],
  )
  assert.equal(buckets.take('a'), 20) // one token per 20 s
  assert.equal(buckets.take('b'), 0) // keys are apart
  now += 19_000
  assert.equal(buckets.take('a'), 1)
  now += 1000
  assert.equal(buckets.take('a'), 0)
  assert.equal(buckets.waitSeconds('a'), 20)
  now += 600_000
  assert.equal(buckets.tokens('a'), 3) // never more than the capacity
})

test('reads do not add keys, and the number of keys is bounded', () => {
  const buckets = createRateBuckets({ capacity: 1, windowMs: 1000, maxKeys: 2, now: () => 0 })
  assert.equal(buckets.tokens('never'), 1)
  assert.equal(buckets.waitSeconds('never'), 0)
  buckets.take('a')
  buckets.take('b')
  assert.equal(buckets.take('a'), 1) // a is the most recently used now
  buckets.take('c') // evicts b, the least recently used
  assert.equal(buckets.take('c'), 1)
  assert.equal(buckets.take('b'), 0) // forgotten, so full again; this evicts a
  assert.equal(buckets.take('c'), 1) // c stayed
  assert.equal(buckets.take('a'), 0)
})
