import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { isUint64String, parseUint64, UINT64_MAX } from './amount.ts'

test('uint64 strings are canonical decimal digits within range', () => {
  for (const ok of ['0', '1', '42', '18446744073709551615']) assert.ok(isUint64String(ok), ok)
  for (const bad of [
    '',
    '-1',
    '01',
    '1.5',
    '0x10',
    ' 12',
    '12 ',
    '1e3',
    '18446744073709551616',
    '99999999999999999999',
    '+1',
  ]) {
    assert.ok(!isUint64String(bad), bad)
  }
  assert.throws(() => parseUint64('-1'), RangeError)
})

test('every uint64 round-trips through its decimal string', () => {
  fc.assert(
    fc.property(fc.bigInt({ min: 0n, max: UINT64_MAX }), (n) => {
      assert.ok(isUint64String(n.toString()))
      assert.equal(parseUint64(n.toString()), n)
    }),
  )
})
