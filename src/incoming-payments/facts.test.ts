import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createIncomingFactsCache } from './facts.ts'
import type { IncomingPayment } from './service.ts'

const payment = (id: string): IncomingPayment => ({
  id,
  walletAddressId: 'w',
  walletAddressPath: '/bob',
  assetCode: 'USD',
  assetScale: 2,
  client: 'https://client.example/app',
  incomingAmount: 500n,
  receivedAmount: 100n,
  completedAt: null,
  cancelledAt: null,
  cancelReason: null,
  expiresAt: new Date('2030-01-01T00:00:00Z'),
  metadata: null,
  createdAt: new Date(),
  updatedAt: new Date(),
})

test('the incoming payments’ facts: only what never changes, at most the bound, least recently used out', () => {
  const cache = createIncomingFactsCache(2)
  cache.remember(payment('a'))
  cache.remember(payment('b'))
  // Nothing that changes is kept: what it received, whether it is completed or cancelled.
  assert.deepEqual(cache.get('a'), {
    id: 'a',
    walletAddressId: 'w',
    assetCode: 'USD',
    assetScale: 2,
    incomingAmount: 500n,
    expiresAt: new Date('2030-01-01T00:00:00Z'),
  })
  cache.remember(payment('c')) // b is the least recently used
  assert.equal(cache.size, 2)
  assert.equal(cache.get('b'), undefined)
  assert.deepEqual([cache.get('a')?.id, cache.get('c')?.id], ['a', 'c'])
  cache.delete('a')
  assert.equal(cache.get('a'), undefined)
})
