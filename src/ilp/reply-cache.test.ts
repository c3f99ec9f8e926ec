import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { IlpPrepare, IlpReply } from 'ilp-packet'
import { createReplyCache } from './reply-cache.ts'

const prepare = (n: number, expiresInMs = 30_000): IlpPrepare => ({
  amount: String(n),
  expiresAt: new Date(Date.now() + expiresInMs),
  executionCondition: Buffer.alloc(32, 1),
  destination: 'test.x.y',
  data: Buffer.alloc(0),
})
const fulfill: IlpReply = { fulfillment: Buffer.alloc(32), data: Buffer.alloc(0) }

test('a packet seen before gets the first reply, per peer, until it expires', async () => {
  const cached = createReplyCache()
  let calls = 0
  const handle = async () => {
    calls++
    return fulfill
  }
  const p = prepare(1)
  await cached('peer-a', p, handle)
  await cached('peer-a', { ...p }, handle)
  assert.equal(calls, 1)
  await cached('peer-b', p, handle)
  assert.equal(calls, 2)
  const soon = prepare(2, 20)
  await cached('peer-a', soon, handle)
  await new Promise((r) => setTimeout(r, 30))
  await cached('peer-a', soon, handle)
  assert.equal(calls, 4)
})

test('concurrent copies share the reply in flight', async () => {
  const cached = createReplyCache()
  let calls = 0
  const slow = () => {
    calls++
    return new Promise<IlpReply>((r) => setTimeout(() => r(fulfill), 10))
  }
  const p = prepare(1)
  const [a, b] = await Promise.all([cached('peer', p, slow), cached('peer', p, slow)])
  assert.equal(calls, 1)
  assert.equal(a, b)
})

test('the cache is bounded: the oldest packet is forgotten first', async () => {
  const cached = createReplyCache()
  let calls = 0
  const handle = async () => {
    calls++
    return fulfill
  }
  const packets = Array.from({ length: 10_001 }, (_, i) => prepare(i))
  for (const p of packets) await cached('peer', p, handle)
  assert.equal(calls, 10_001)
  await cached('peer', packets[10_000]!, handle)
  assert.equal(calls, 10_001)
  await cached('peer', packets[0]!, handle)
  assert.equal(calls, 10_002)
})
