import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { maxSourceFor, minDeliveryFor, minimumRate } from '../sender.ts'
import { floorTimes, PathRate } from './rate.ts'

test('a probe of 10^12 at 1.1 bounds the rate so that 909 is the most that fits 1000', () => {
  const rate = new PathRate()
  rate.observe(10n ** 12n, 11n * 10n ** 11n)
  assert.equal(rate.maxSourceFor(1000n), 909n)
  assert.equal(rate.maxArrival(909n), 999n)
  assert.equal(rate.maxSourceFor(1n), 1n)
  // A reply outside the bounds means the rate moved: they restart from it.
  rate.observe(100n, 90n)
  assert.deepEqual(
    [rate.low, rate.high],
    [
      { num: 90n, den: 100n },
      { num: 91n, den: 100n },
    ],
  )
})

test('on a path that rounds down, the largest amount that fits never overshoots', () => {
  fc.assert(
    fc.property(
      fc.bigInt({ min: 1n, max: 10n ** 6n }),
      fc.bigInt({ min: 1n, max: 10n ** 6n }),
      fc.bigInt({ min: 0n, max: 10n ** 9n }),
      (num, den, k) => {
        const rate = new PathRate()
        rate.observe(10n ** 12n, (10n ** 12n * num) / den)
        const s = rate.maxSourceFor(k)!
        assert.ok((s * num) / den <= k)
      },
    ),
  )
})

test('quotes: the minimum rate is exact, fixed sends round each packet down', () => {
  const min = minimumRate({ num: 11n, den: 10n }, 0.01, 2, 2)
  assert.equal(floorTimes(1000n, min), 1089n) // 1000 × 1.1 × 0.99
  assert.deepEqual(minimumRate({ num: 9n, den: 10n }, 0, 2, 0), { num: 9n, den: 1000n })
  assert.equal(minDeliveryFor(1000n, 10n ** 18n, min), 1089n)
  assert.equal(minDeliveryFor(1000n, 15n, min), 66n * 16n + 10n) // floor(15 × 1.089) = 16, then floor(10 × 1.089)
})

test('a fixed delivery quote covers landing exactly at the minimum rate', () => {
  fc.assert(
    fc.property(
      fc.bigInt({ min: 1n, max: 1000n }),
      fc.bigInt({ min: 1n, max: 1000n }),
      fc.bigInt({ min: 1n, max: 10n ** 7n }),
      fc.bigInt({ min: 1n, max: 10n ** 4n }),
      (num, den, amount, maxPacket) => {
        const minRate = { num, den }
        const budget = maxSourceFor(amount, maxPacket, minRate)
        if (floorTimes(maxPacket, minRate) === 0n) return assert.equal(budget, undefined)
        // Full packets, then the least amount whose delivery reaches the rest.
        const perPacket = floorTimes(maxPacket, minRate)
        const full = (amount - 1n) / perPacket
        const rest = amount - full * perPacket
        let last = (rest * den + num - 1n) / num
        while (floorTimes(last, minRate) < rest) last++
        assert.ok(budget! >= full * maxPacket + last)
      },
    ),
  )
})
