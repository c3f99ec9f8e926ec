/** Largest value an Open Payments `amount.value` (uint64) may carry. */
export const UINT64_MAX = 18446744073709551615n

const UINT64_PATTERN = /^(0|[1-9][0-9]{0,19})$/

/** Strict uint64 check: canonical decimal digits only, no sign, no leading zeros, ≤ 2^64-1. */
export function isUint64String(value: string): boolean {
  return UINT64_PATTERN.test(value) && BigInt(value) <= UINT64_MAX
}

/** Parses a wire amount; callers validate first, so a bad value here is a programming error. */
export function parseUint64(value: string): bigint {
  if (!isUint64String(value)) throw new RangeError(`not a uint64 decimal string: ${value}`)
  return BigInt(value)
}

/** `1050n` at scale 2 → `"10.50"`: exact decimal text for people, never a float. */
export function formatAmount(value: bigint, scale: number): string {
  if (scale === 0) return value.toString()
  const digits = value.toString().padStart(scale + 1, '0')
  return `${digits.slice(0, -scale)}.${digits.slice(-scale)}`
}
