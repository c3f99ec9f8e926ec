import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createTokenGrants } from './token-grants.ts'

const grant = (id: string) => ({
  id,
  access: [],
  client: { walletAddress: `https://w.example/${id}` },
})

test('the token grant cache keeps at most its bound, least recently used out', () => {
  const cache = createTokenGrants(3)
  for (const h of ['a', 'b', 'c']) cache.set(h, grant(h))
  assert.equal(cache.get('a')?.id, 'a') // a is now the most recently used
  cache.set('d', grant('d'))
  assert.equal(cache.size, 3)
  assert.equal(cache.get('b'), undefined)
  assert.deepEqual(
    ['a', 'c', 'd'].map((h) => cache.get(h)?.id),
    ['a', 'c', 'd'],
  )
  for (let i = 0; i < 100; i++) cache.set(`x${i}`, grant(`x${i}`))
  assert.equal(cache.size, 3)
  cache.delete('x99')
  assert.equal(cache.get('x99'), undefined)
})
