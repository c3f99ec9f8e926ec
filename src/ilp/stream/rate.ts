/**
 * What a path does to amounts, learnt from STREAM replies: every authentic reply says how much of
 * a packet's `sent` arrived. With rounding down along the path, the realized rate lies in
 * [arrived / sent, (arrived + 1) / sent); the tightest bounds seen so far bracket it. A reply that
 * contradicts them means the rate moved, and the bounds restart from it.
 */

/** A non-negative fraction; unlike an exchange rate it may be 0 (nothing arrives). */
export interface Fraction {
  num: bigint
  den: bigint
}

const lt = (a: Fraction, b: Fraction) => a.num * b.den < b.num * a.den
export const floorTimes = (n: bigint, f: Fraction) => (n * f.num) / f.den
export const ceilTimes = (n: bigint, f: Fraction) => (n * f.num + f.den - 1n) / f.den

export class PathRate {
  constructor(
    /** Lower bound of the rate (inclusive). */
    public low?: Fraction,
    /** Upper bound of the rate (exclusive). */
    public high?: Fraction,
  ) {}

  observe(sent: bigint, arrived: bigint): void {
    if (sent <= 0n) return
    const low = { num: arrived, den: sent }
    const high = { num: arrived + 1n, den: sent }
    if (!this.low || !this.high || !lt(low, this.high) || !lt(this.low, high)) {
      this.low = low
      this.high = high
      return
    }
    if (lt(this.low, low)) this.low = low
    if (lt(high, this.high)) this.high = high
  }

  /** The least `sent` delivers at the lower bound. */
  minArrival(sent: bigint): bigint | undefined {
    return this.low && floorTimes(sent, this.low)
  }

  /** The most `sent` can deliver under the upper bound. */
  maxArrival(sent: bigint): bigint | undefined {
    return this.high && ceilTimes(sent, this.high) - 1n
  }

  /** The largest amount whose most possible delivery is at most `k` (0 when none is). */
  maxSourceFor(k: bigint): bigint | undefined {
    // ceil(s × high) − 1 ≤ k  ⟺  s × high ≤ k + 1
    return this.high && ((k + 1n) * this.high.den) / this.high.num
  }
}
