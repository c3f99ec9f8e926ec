import { badRequest } from '../lib/errors.ts'

export interface Amount {
  value: string
  assetCode: string
  assetScale: number
}

export interface Asset {
  code: string
  scale: number
}

export const toAmount = (value: bigint, asset: Asset): Amount => ({
  value: value.toString(),
  assetCode: asset.code,
  assetScale: asset.scale,
})

/**
 * A request amount's value, after checking it is above zero and in the expected asset. Its string
 * form was checked by the request schema (uint64).
 */
export function amountIn(amount: Amount, asset: Asset, description = 'invalid amount'): bigint {
  const value = BigInt(amount.value)
  if (value <= 0n || amount.assetCode !== asset.code || amount.assetScale !== asset.scale) {
    throw badRequest(description)
  }
  return value
}
