import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { UINT64_MAX } from '../lib/amount.ts'
import { convertAmount, invert, multiply, parseRate, type Ratio, ratio } from './ratio.ts'

const pow10 = (n: number) => 10n ** BigInt(n)

test('ratios are reduced and strictly positive', () => {
  assert.deepEqual(ratio(6n, 4n), { num: 3n, den: 2n })
  assert.deepEqual(ratio(7n, 7n), { num: 1n, den: 1n })
  assert.deepEqual(ratio(1n, 3n), { num: 1n, den: 3n })
  for (const [num, den] of [
    [0n, 1n],
    [1n, 0n],
    [-1n, 2n],
    [2n, -1n],
  ] as const) {
    assert.throws(() => ratio(num, den), RangeError, `${num}/${den}`)
  }
})

test('parses decimal strings exactly', () => {
  const cases: [string, bigint, bigint][] = [
    ['0.29', 29n, 100n],
    ['1', 1n, 1n],
    ['0.9', 9n, 10n],
    ['0.10', 1n, 10n],
    ['150.25', 601n, 4n],
    ['1.5e-3', 3n, 2000n],
    ['2E+2', 200n, 1n],
    ['2e2', 200n, 1n],
    ['00.50', 1n, 2n],
    ['0.000001', 1n, 1_000_000n],
    ['12345678901234567890.123456789', 12345678901234567890123456789n, pow10(9)],
    [`1${'0'.repeat(100)}`, pow10(100), 1n],
    ['1'.repeat(60), BigInt('1'.repeat(60)), 1n],
    [`0.${'0'.repeat(50)}${'1'.repeat(60)}`, BigInt('1'.repeat(60)), pow10(110)],
  ]
  for (const [text, num, den] of cases) assert.deepEqual(parseRate(text), { num, den }, text)
})

test('parses JS numbers through their shortest round-trip text', () => {
  const cases: [number, bigint, bigint][] = [
    [0.1, 1n, 10n],
    [0.29, 29n, 100n],
    [0.57, 57n, 100n],
    [1e-7, 1n, pow10(7)],
    [123456.789, 123456789n, 1000n],
    [1e21, pow10(21), 1n],
    [150, 150n, 1n],
    // Every positive finite double is accepted.
    [Number.MIN_VALUE, 1n, 2n * pow10(323)],
    [Number.MAX_VALUE, 17976931348623157n * pow10(292), 1n],
  ]
  for (const [value, num, den] of cases) {
    assert.deepEqual(parseRate(value), { num, den }, String(value))
  }
})

test('rejects what is not a positive decimal', () => {
  for (const bad of [
    '',
    ' ',
    ' 1',
    '1 ',
    '0',
    '0.000',
    '0e5',
    '-1',
    '-0.5',
    '+1',
    '.5',
    '1.',
    '1e',
    'e5',
    '1.2.3',
    '1,5',
    '1_000',
    '0x10',
    'abc',
    'NaN',
    'Infinity',
    '1'.repeat(61),
    `1.${'0'.repeat(59)}1`,
    '1e401',
    '1e-401',
    `1e${'9'.repeat(400)}`,
    0,
    -0,
    -1,
    -0.5,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
  ]) {
    assert.equal(parseRate(bad), undefined, String(bad))
  }
})

test('a decimal written as digits and an exponent parses to exactly that value', () => {
  fc.assert(
    fc.property(
      fc.bigInt({ min: 1n, max: pow10(60) - 1n }),
      fc.integer({ min: -300, max: 300 }),
      (digits, exp) => {
        const expected = exp >= 0 ? ratio(digits * pow10(exp), 1n) : ratio(digits, pow10(-exp))
        assert.deepEqual(parseRate(`${digits}e${exp}`), expected)
      },
    ),
  )
})

test('invert and multiply are exact', () => {
  const r = parseRate('0.9')!
  assert.deepEqual(invert(r), { num: 10n, den: 9n })
  assert.deepEqual(multiply(r, invert(r)), { num: 1n, den: 1n })
  assert.deepEqual(multiply(parseRate('0.5')!, parseRate('0.4')!), { num: 1n, den: 5n })
  fc.assert(
    fc.property(arbRatio, arbRatio, (a, b) => {
      assert.deepEqual(invert(invert(a)), a)
      const p = multiply(a, b)
      assert.equal(p.num * a.den * b.den, a.num * b.num * p.den)
      assert.deepEqual(p, ratio(p.num, p.den))
    }),
  )
})

test('the float-breaking cases from the money notes are exact', () => {
  const cases: [bigint, string, bigint][] = [
    [100n, '0.29', 29n],
    [700n, '0.57', 399n],
    [9007199254740993n, '1', 9007199254740993n],
    [UINT64_MAX, '1', UINT64_MAX],
  ]
  for (const [amount, rate, expected] of cases) {
    for (const rounding of ['floor', 'ceil'] as const) {
      assert.equal(convertAmount(amount, parseRate(rate)!, 2, 2, rounding), expected)
    }
  }
  // The same rates given as numbers, as a JSON rates feed sends them.
  assert.equal(convertAmount(100n, parseRate(0.29)!, 2, 2, 'floor'), 29n)
  assert.equal(convertAmount(700n, parseRate(0.57)!, 2, 2, 'floor'), 399n)
})

test('scale differences are applied as exact powers of ten', () => {
  // 12.34 USD at 150.25 JPY/USD is 1854.085 JPY.
  const usdJpy = parseRate('150.25')!
  assert.equal(convertAmount(1234n, usdJpy, 2, 0, 'floor'), 1854n)
  assert.equal(convertAmount(1234n, usdJpy, 2, 0, 'ceil'), 1855n)
  // 1.23456789 BTC at 65432.1 USD/BTC is 80780.369635269 USD.
  const btcUsd = parseRate('65432.1')!
  assert.equal(convertAmount(123456789n, btcUsd, 8, 2, 'floor'), 8078036n)
  assert.equal(convertAmount(123456789n, btcUsd, 8, 2, 'ceil'), 8078037n)
  // One satoshi is worth less than a cent: nothing is delivered, a cent must be paid.
  assert.equal(convertAmount(1n, btcUsd, 8, 2, 'floor'), 0n)
  assert.equal(convertAmount(1n, btcUsd, 8, 2, 'ceil'), 1n)
  // Scaling up: 5 JPY at 0.0067 USD/JPY is 0.0335 USD, 3350000 at scale 8.
  assert.equal(convertAmount(5n, parseRate('0.0067')!, 0, 8, 'floor'), 3350000n)
  assert.equal(convertAmount(0n, usdJpy, 2, 0, 'ceil'), 0n)
})

test('bad amounts and scales are programming errors', () => {
  const one = ratio(1n, 1n)
  assert.throws(() => convertAmount(-1n, one, 2, 2, 'floor'), RangeError)
  for (const scale of [-1, 1.5, 256, Number.NaN]) {
    assert.throws(() => convertAmount(1n, one, scale, 2, 'floor'), RangeError, String(scale))
    assert.throws(() => convertAmount(1n, one, 2, scale, 'floor'), RangeError, String(scale))
  }
})

const arbRatio: fc.Arbitrary<Ratio> = fc
  .tuple(fc.bigInt({ min: 1n, max: pow10(12) }), fc.bigInt({ min: 1n, max: pow10(12) }))
  .map(([num, den]) => ratio(num, den))
const arbAmount = fc.bigInt({ min: 0n, max: UINT64_MAX })
// Common pairs (USD 2 → JPY 0, BTC 8 → USD 2 and back) plus any scales up to 18, up and down.
const arbScales = fc.oneof(
  fc.constantFrom<[number, number]>([2, 0], [0, 2], [8, 2], [2, 8], [2, 2]),
  fc.tuple(fc.integer({ min: 0, max: 18 }), fc.integer({ min: 0, max: 18 })),
)

/** The exact result as a fraction n/d, for checking roundings by cross-multiplication. */
function exact(amount: bigint, rate: Ratio, [source, dest]: [number, number]) {
  const shift = dest - source
  return {
    n: amount * rate.num * pow10(Math.max(shift, 0)),
    d: rate.den * pow10(Math.max(-shift, 0)),
  }
}

test('floor and ceil bracket the exact result', () => {
  fc.assert(
    fc.property(arbAmount, arbRatio, arbScales, (amount, rate, scales) => {
      const floor = convertAmount(amount, rate, ...scales, 'floor')
      const ceil = convertAmount(amount, rate, ...scales, 'ceil')
      const { n, d } = exact(amount, rate, scales)
      // floor ≤ exact < floor + 1 and ceil − 1 < exact ≤ ceil, all times d.
      assert.ok(floor * d <= n && n < (floor + 1n) * d)
      assert.ok((ceil - 1n) * d < n && n <= ceil * d)
      assert.ok(floor <= ceil && ceil <= floor + 1n)
      assert.equal(ceil === floor, floor * d === n)
    }),
  )
})

test('conversion is monotone in the amount', () => {
  fc.assert(
    fc.property(arbAmount, arbAmount, arbRatio, arbScales, (a, b, rate, scales) => {
      const [lo, hi] = a <= b ? [a, b] : [b, a]
      for (const rounding of ['floor', 'ceil'] as const) {
        assert.ok(
          convertAmount(lo, rate, ...scales, rounding) <=
            convertAmount(hi, rate, ...scales, rounding),
        )
      }
    }),
  )
})

test('converting there and back never creates money', () => {
  fc.assert(
    fc.property(arbAmount, arbRatio, arbScales, (amount, rate, [source, dest]) => {
      // Delivering with floor and converting the delivery back with floor gives at most the original.
      const delivered = convertAmount(amount, rate, source, dest, 'floor')
      assert.ok(convertAmount(delivered, invert(rate), dest, source, 'floor') <= amount)
      // Charging with ceil for a target delivery always covers that delivery.
      const debit = convertAmount(amount, invert(rate), dest, source, 'ceil')
      assert.ok(convertAmount(debit, rate, source, dest, 'floor') >= amount)
    }),
  )
})
