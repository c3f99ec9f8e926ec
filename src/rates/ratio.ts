/**
 * Exact positive rationals for exchange rates. A rate is read from its decimal text, never through a
 * float, so 0.29 is 29/100 and a conversion stays exact up to the one rounding its caller chooses.
 */

/** A positive fraction in lowest terms: num > 0n, den > 0n, gcd(num, den) = 1n. */
export interface Ratio {
  num: bigint
  den: bigint
}

/** Real rates carry a handful of digits; the cap keeps a bad rates feed from handing us huge numbers. */
const MAX_SIGNIFICANT_DIGITS = 60
/** Bounds the size of num and den; still admits every positive finite double (5e-324 to 1.8e308). */
const MAX_EXPONENT = 400
/** Open Payments asset scales are uint8. */
const MAX_SCALE = 255

const DECIMAL = /^(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b]
  return a
}

export function ratio(num: bigint, den: bigint): Ratio {
  if (num <= 0n || den <= 0n) throw new RangeError(`not a positive ratio: ${num}/${den}`)
  const g = gcd(num, den)
  return { num: num / g, den: den / g }
}

/**
 * '0.29' → 29/100, '1.5e-3' → 3/2000. A number is read through its shortest round-trip text, which is
 * the decimal its author wrote (String(0.1) === '0.1'), so 0.1 is exactly 1/10. NaN and Infinity fail
 * the pattern; zero, negatives and signs are refused.
 */
export function parseRate(rate: string | number): Ratio | undefined {
  const m = DECIMAL.exec(typeof rate === 'number' ? String(rate) : rate)
  if (!m) return undefined
  const [, int = '', frac = '', exp = '0'] = m
  const digits = int + frac
  // Index loops rather than /0+$/, which backtracks quadratically on long runs of zeros.
  let start = 0
  while (digits[start] === '0') start++
  let end = digits.length
  while (end > start && digits[end - 1] === '0') end--
  if (end === start || end - start > MAX_SIGNIFICANT_DIGITS) return undefined
  const power = Number(exp) - frac.length + (digits.length - end)
  if (Math.abs(power) > MAX_EXPONENT) return undefined
  const n = BigInt(digits.slice(start, end))
  return power >= 0 ? ratio(n * 10n ** BigInt(power), 1n) : ratio(n, 10n ** BigInt(-power))
}

export function invert(r: Ratio): Ratio {
  return { num: r.den, den: r.num }
}

export function multiply(a: Ratio, b: Ratio): Ratio {
  return ratio(a.num * b.num, a.den * b.den)
}

/**
 * amount (smallest units at sourceScale) × rate × 10^(destScale − sourceScale), rounded as asked.
 * Round against the party being quoted: 'floor' for what the receiver gets (source → destination),
 * 'ceil' for what the sender must send (destination → source), so the ASE never delivers more than it
 * debits. The result may exceed uint64; the caller checks its own range.
 */
export function convertAmount(
  amount: bigint,
  rate: Ratio,
  sourceScale: number,
  destScale: number,
  rounding: 'floor' | 'ceil',
): bigint {
  if (amount < 0n) throw new RangeError(`negative amount: ${amount}`)
  for (const scale of [sourceScale, destScale]) {
    if (!Number.isInteger(scale) || scale < 0 || scale > MAX_SCALE) {
      throw new RangeError(`not an asset scale: ${scale}`)
    }
  }
  const shift = destScale - sourceScale
  const num = amount * rate.num * 10n ** BigInt(Math.max(shift, 0))
  const den = rate.den * 10n ** BigInt(Math.max(-shift, 0))
  // Both are non-negative, so bigint division (which truncates) is the floor.
  const floor = num / den
  return rounding === 'ceil' && floor * den !== num ? floor + 1n : floor
}
