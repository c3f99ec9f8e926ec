import { UINT64_MAX } from '../lib/amount.ts'
import { convertAmount, type Ratio } from '../rates/ratio.ts'

export interface FeeSchedule {
  fixed: bigint
  basisPoints: number
}

export interface Price {
  /** What the sender pays, fees included (sender's asset). */
  debit: bigint
  /** The sending fee (sender's asset), part of `debit`. */
  fee: bigint
  /** What the receiver gets (receiver's asset). */
  receive: bigint
}

export interface Conversion {
  /** Receiver units per sender unit, in major units. */
  rate: Ratio
  sourceScale: number
  destScale: number
}

/** The fee on a principal: fixed plus basis points, rounded up (in the ASE's favour). */
export function feeOn(principal: bigint, f: FeeSchedule): bigint {
  const bps = BigInt(f.basisPoints)
  return f.fixed + (principal * bps + 9_999n) / 10_000n
}

/** The largest principal whose principal + fee fits `debit` (0 when fees take it all). */
export function principalFor(debit: bigint, fees: FeeSchedule): bigint {
  let principal =
    debit <= fees.fixed
      ? 0n
      : ((debit - fees.fixed) * 10_000n) / (10_000n + BigInt(fees.basisPoints))
  while (principal > 0n && principal + feeOn(principal, fees) > debit) principal--
  return principal
}

/**
 * Prices a payment. Rounding always favours the ASE: what the receiver gets rounds down
 * (sender→receiver conversion floors), what the sender pays rounds up (receiver→sender ceils, fees
 * ceil). Fixed send: the principal is the largest amount whose principal + fee fits the debit
 * amount, and any unit left over goes to the fee. Returns `'non_positive'` when fees or the rate
 * leave nothing to deliver, and `'too_large'` beyond uint64.
 */
export function price(
  mode: { debit: bigint } | { receive: bigint },
  fx: Conversion,
  fees: FeeSchedule,
): Price | 'non_positive' | 'too_large' {
  if ('debit' in mode) {
    const debit = mode.debit
    const principal = principalFor(debit, fees)
    if (principal <= 0n) return 'non_positive'
    const receive = convertAmount(principal, fx.rate, fx.sourceScale, fx.destScale, 'floor')
    if (receive <= 0n) return 'non_positive'
    if (receive > UINT64_MAX) return 'too_large'
    return { debit, fee: debit - principal, receive }
  }
  const principal = convertAmount(
    mode.receive,
    { num: fx.rate.den, den: fx.rate.num },
    fx.destScale,
    fx.sourceScale,
    'ceil',
  )
  if (principal <= 0n) return 'non_positive'
  const fee = feeOn(principal, fees)
  const debit = principal + fee
  return debit > UINT64_MAX ? 'too_large' : { debit, fee, receive: mode.receive }
}

/**
 * The smallest debit that delivers at least one unit: the least principal that `unitsPerUnit`
 * (receiver's smallest units per sender's smallest unit, rounded down) turns into one unit, plus
 * its fee. Undefined when no amount delivers anything (a zero rate).
 */
export function minSendAmount(
  unitsPerUnit: { num: bigint; den: bigint },
  fees: FeeSchedule,
): bigint | undefined {
  if (unitsPerUnit.num <= 0n) return undefined
  // floor(p × num / den) ≥ 1  ⟺  p ≥ den / num
  const principal = (unitsPerUnit.den + unitsPerUnit.num - 1n) / unitsPerUnit.num
  return principal + feeOn(principal, fees)
}

/** A conversion's rate in smallest units: receiver units per sender unit. */
export const unitRate = (fx: Conversion) => {
  const shift = fx.destScale - fx.sourceScale
  return {
    num: fx.rate.num * 10n ** BigInt(Math.max(shift, 0)),
    den: fx.rate.den * 10n ** BigInt(Math.max(-shift, 0)),
  }
}
