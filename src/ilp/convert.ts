import { Errors } from 'ilp-packet'
import { UINT64_MAX } from '../lib/amount.ts'
import { convertAmount } from '../rates/ratio.ts'
import type { RatesService } from '../rates/service.ts'

interface Asset {
  assetCode: string
  assetScale: number
}

/**
 * A packet amount in `from`'s asset expressed in `to`'s, rounded down: what arrives never exceeds
 * what was sent. A missing rate or an amount ILP cannot carry is F07 (Rafiki answers the same).
 */
export async function convertPacketAmount(
  rates: RatesService,
  amount: bigint,
  from: Asset,
  to: Asset,
): Promise<bigint> {
  const rate = await rates.rate(from.assetCode, to.assetCode)
  if (!rate) {
    throw new Errors.CannotReceiveError(
      `no exchange rate from ${from.assetCode} to ${to.assetCode}`,
    )
  }
  const converted = convertAmount(amount, rate, from.assetScale, to.assetScale, 'floor')
  if (converted > UINT64_MAX) throw new Errors.CannotReceiveError('converted amount exceeds uint64')
  return converted
}
