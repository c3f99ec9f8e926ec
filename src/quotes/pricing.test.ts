import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { convertAmount, parseRate } from '../rates/ratio.ts'
import { feeOn, price } from './pricing.ts'

const same = { rate: { num: 1n, den: 1n }, sourceScale: 2, destScale: 2 }
const noFee = { fixed: 0n, basisPoints: 0 }

test('same asset without fees: what is sent arrives', () => {
  assert.deepEqual(price({ debit: 1000n }, same, noFee), { debit: 1000n, fee: 0n, receive: 1000n })
  assert.deepEqual(price({ receive: 1000n }, same, noFee), {
    debit: 1000n,
    fee: 0n,
    receive: 1000n,
  })
})

test('fees: fixed plus basis points of the principal, rounded up', () => {
  const fees = { fixed: 50n, basisPoints: 150 } // 0.50 + 1.5 %
  // fixed receive 10000: principal 10000, fee 50 + 150 = 200.
  assert.deepEqual(price({ receive: 10_000n }, same, fees), {
    debit: 10_200n,
    fee: 200n,
    receive: 10_000n,
  })
  // fixed send 10200: the same payment the other way round.
  assert.deepEqual(price({ debit: 10_200n }, same, fees), {
    debit: 10_200n,
    fee: 200n,
    receive: 10_000n,
  })
  // 1 unit of principal still pays 1 unit of percentage fee (rounded up).
  assert.equal(feeOn(1n, { fixed: 0n, basisPoints: 1 }), 1n)
  // Fees eat everything.
  assert.equal(price({ debit: 50n }, same, fees), 'non_positive')
  assert.equal(price({ debit: 51n }, same, fees), 'non_positive')
})

test('cross currency: receiver gets the floor, sender pays the ceiling', () => {
  const usdToEur = { rate: parseRate('0.9')!, sourceScale: 2, destScale: 2 }
  assert.deepEqual(price({ debit: 1000n }, usdToEur, noFee), {
    debit: 1000n,
    fee: 0n,
    receive: 900n,
  })
  assert.deepEqual(price({ debit: 1001n }, usdToEur, noFee), {
    debit: 1001n,
    fee: 0n,
    receive: 900n,
  })
  // 10000 EUR cents need 11111.1… USD cents: 11112.
  assert.deepEqual(price({ receive: 10_000n }, usdToEur, noFee), {
    debit: 11_112n,
    fee: 0n,
    receive: 10_000n,
  })
  const toJpy = { rate: parseRate('150')!, sourceScale: 2, destScale: 0 }
  assert.deepEqual(price({ debit: 1n }, toJpy, noFee), { debit: 1n, fee: 0n, receive: 1n })
  assert.equal(
    price({ debit: 1n }, { rate: parseRate('0.001')!, sourceScale: 2, destScale: 2 }, noFee),
    'non_positive',
  )
})

test('properties: never delivers more than the debit buys, never charges less than needed', () => {
  fc.assert(
    fc.property(
      fc.bigInt({ min: 1n, max: 10n ** 15n }),
      fc.constantFrom('1', '0.9', '1.1', '150', '0.0067', '3.14159'),
      fc.integer({ min: 0, max: 8 }),
      fc.integer({ min: 0, max: 8 }),
      fc.record({
        fixed: fc.bigInt({ min: 0n, max: 1000n }),
        basisPoints: fc.integer({ min: 0, max: 10_000 }),
      }),
      (amount, r, sourceScale, destScale, fees) => {
        const fx = { rate: parseRate(r)!, sourceScale, destScale }
        const send = price({ debit: amount }, fx, fees)
        if (typeof send !== 'string') {
          const principal = send.debit - send.fee
          assert.ok(send.fee >= feeOn(principal, fees))
          assert.ok(
            send.receive <= convertAmount(principal, fx.rate, sourceScale, destScale, 'floor'),
          )
          assert.equal(send.debit, amount)
          // …and the principal is the largest that fits.
          assert.ok(principal + 1n + feeOn(principal + 1n, fees) > amount)
        }
        const receive = price({ receive: amount }, fx, fees)
        if (typeof receive !== 'string') {
          const principal = receive.debit - receive.fee
          // The principal buys at least what is promised.
          assert.ok(convertAmount(principal, fx.rate, sourceScale, destScale, 'floor') >= amount)
          assert.equal(receive.fee, feeOn(principal, fees))
        }
      },
    ),
  )
})
