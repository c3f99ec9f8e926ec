import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  type AccessItem,
  limitsError,
  matchAccess,
  needsInteraction,
  normaliseAccessItem,
} from './access.ts'

const usd = (value: string) => ({ value, assetCode: 'USD', assetScale: 2 })
const policy = { incomingPayment: false, quote: false, listAll: true }

test('matching: read-all covers read, list-all covers list, identifiers must agree when both are given', () => {
  const granted: AccessItem[] = [
    {
      type: 'incoming-payment',
      actions: ['create', 'read-all'],
      identifier: 'https://w.example/alice',
    },
    { type: 'quote', actions: ['create'] },
  ]
  const m = (type: AccessItem['type'], action: string, identifier?: string) =>
    matchAccess(granted, { type, actions: [action], ...(identifier && { identifier }) }).length
  assert.equal(m('incoming-payment', 'read', 'https://w.example/alice'), 1)
  assert.equal(m('incoming-payment', 'read-all', 'https://w.example/alice'), 1)
  assert.equal(m('incoming-payment', 'read', 'https://w.example/bob'), 0)
  assert.equal(m('incoming-payment', 'list', 'https://w.example/alice'), 0)
  assert.equal(m('incoming-payment', 'complete'), 0)
  assert.equal(m('incoming-payment', 'create'), 1)
  assert.equal(m('quote', 'create', 'https://w.example/anyone'), 1)
  assert.equal(m('quote', 'read'), 0)
  assert.equal(m('outgoing-payment', 'create'), 0)
})

test('limits: one amount, positive, valid interval', () => {
  assert.equal(limitsError(undefined), undefined)
  assert.equal(
    limitsError({ debitAmount: usd('100'), interval: 'R/2025-01-01T00:00:00Z/P1M' }),
    undefined,
  )
  assert.equal(
    limitsError({ debitAmount: usd('1'), receiveAmount: usd('1') }),
    'only one access amount allowed',
  )
  assert.match(limitsError({ debitAmount: usd('0') })!, /greater than zero/)
  assert.match(limitsError({ interval: 'monthly' })!, /invalid interval/)
})

test('interaction policy', () => {
  assert.ok(
    needsInteraction({ type: 'outgoing-payment', actions: ['read'], identifier: 'x' }, policy),
  )
  assert.ok(
    !needsInteraction({ type: 'incoming-payment', actions: ['create', 'read', 'list'] }, policy),
  )
  assert.ok(needsInteraction({ type: 'incoming-payment', actions: ['list-all'] }, policy))
  assert.ok(
    !needsInteraction(
      { type: 'incoming-payment', actions: ['list-all'] },
      { ...policy, listAll: false },
    ),
  )
  assert.ok(needsInteraction({ type: 'quote', actions: ['create'] }, { ...policy, quote: true }))
})

test('normalising drops unknown fields and a quote identifier', () => {
  const item = {
    type: 'quote',
    actions: ['create'],
    identifier: 'https://w.example/a',
    extra: 1,
  } as unknown as AccessItem
  assert.deepEqual(normaliseAccessItem(item), { type: 'quote', actions: ['create'] })
  const out = {
    type: 'outgoing-payment',
    actions: ['create'],
    identifier: 'i',
    limits: { debitAmount: { ...usd('5'), x: 1 }, y: 2 },
  } as unknown as AccessItem
  assert.deepEqual(normaliseAccessItem(out), {
    type: 'outgoing-payment',
    actions: ['create'],
    identifier: 'i',
    limits: { debitAmount: usd('5') },
  })
})
