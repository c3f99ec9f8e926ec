import {
  Counter,
  closeConnection,
  Int,
  isPaymentError,
  type PaymentProgress,
  PaymentType,
  pay,
  type Quote,
  Ratio,
  type ResolvedPayment,
  startQuote,
} from '@interledger/pay'
import type { Ratio as ExactRatio } from '../rates/ratio.ts'

/** Where a STREAM payment goes: the receiver's `ilp` payment method and asset. */
export interface IlpDestination {
  ilpAddress: string
  /** base64url, as incoming payments carry it. */
  sharedSecret: string
  asset: { code: string; scale: number }
}

/** A quote's terms, stored with the quote and handed back to `pay`. */
export interface IlpTerms {
  maxSourceAmount: bigint
  minDeliveryAmount: bigint
  maxPacketAmount: bigint
  minExchangeRate: [bigint, bigint]
  lowEstimatedExchangeRate: [bigint, bigint]
  highEstimatedExchangeRate: [bigint, bigint]
}

/** Sends serialized ILP Prepares and resolves with the serialized reply (never rejects). */
export type SendData = (prepare: Buffer) => Promise<Buffer>

export type IlpSendError = string

/**
 * Our STREAM sender, behind an interface so that the alpha `@interledger/pay` can be replaced.
 * Quotes probe the path with unfulfillable packets (no money moves); payments send fulfillable ones.
 */
export interface IlpSender {
  quote(opts: {
    sendData: SendData
    destination: IlpDestination
    sourceAsset: { code: string; scale: number }
    amount: { send: bigint } | { deliver: bigint }
    /** Exact units of the destination asset per unit of the source asset (major units). */
    rate: ExactRatio
    slippage: number
  }): Promise<IlpTerms | { error: IlpSendError }>
  pay(opts: {
    sendData: SendData
    destination: IlpDestination
    terms: IlpTerms
  }): Promise<{ amountSent: bigint; amountDelivered: bigint; error?: IlpSendError }>
}

const resolved = (d: IlpDestination): ResolvedPayment => ({
  destinationAddress: d.ilpAddress as ResolvedPayment['destinationAddress'],
  sharedSecret: Buffer.from(d.sharedSecret, 'base64url'),
  destinationAsset: d.asset,
  // A fresh sequence for every connection: our receivers are stateless (ilp.md 3.1).
  requestCounter: Counter.from(0)!,
})

const pair = (r: {
  readonly a: { value: bigint }
  readonly b: { value: bigint }
}): [bigint, bigint] => [r.a.value, r.b.value]
const ratio = ([a, b]: [bigint, bigint]) => Ratio.of(Int.from(a)!, Int.from(b)! as never)

export function createPaySender(): IlpSender {
  return {
    async quote(opts) {
      const plugin = { sendData: opts.sendData }
      const destination = resolved(opts.destination)
      // pay takes prices in a common unit; an exact rate becomes source = 1, destination = 1/rate.
      // Only its slippage check uses them: every amount comes back as an integer from the probe.
      const prices = {
        [opts.sourceAsset.code]: 1,
        [opts.destination.asset.code]: Number(opts.rate.den) / Number(opts.rate.num),
      }
      try {
        const quote = await startQuote({
          plugin,
          destination,
          sourceAsset: opts.sourceAsset,
          ...('send' in opts.amount
            ? { amountToSend: opts.amount.send }
            : { amountToDeliver: opts.amount.deliver }),
          slippage: opts.slippage,
          prices,
        })
        await closeConnection(plugin, destination).catch(() => {})
        return {
          maxSourceAmount: quote.maxSourceAmount,
          minDeliveryAmount: quote.minDeliveryAmount,
          maxPacketAmount: quote.maxPacketAmount,
          minExchangeRate: pair(quote.minExchangeRate),
          lowEstimatedExchangeRate: pair(quote.lowEstimatedExchangeRate),
          highEstimatedExchangeRate: pair(quote.highEstimatedExchangeRate),
        }
      } catch (err) {
        return { error: isPaymentError(err) ? err : String(err) }
      }
    },

    async pay(opts) {
      const plugin = { sendData: opts.sendData }
      const destination = resolved(opts.destination)
      const t = opts.terms
      const quote: Quote = {
        paymentType: PaymentType.FixedDelivery,
        maxSourceAmount: t.maxSourceAmount,
        minDeliveryAmount: t.minDeliveryAmount,
        maxPacketAmount: t.maxPacketAmount,
        minExchangeRate: ratio(t.minExchangeRate),
        lowEstimatedExchangeRate: ratio(t.lowEstimatedExchangeRate),
        highEstimatedExchangeRate: ratio(t.highEstimatedExchangeRate) as never,
      }
      let progress: PaymentProgress
      try {
        progress = await pay({ plugin, destination, quote })
      } catch (err) {
        return { amountSent: 0n, amountDelivered: 0n, error: String(err) }
      }
      await closeConnection(plugin, destination).catch(() => {})
      return {
        amountSent: progress.amountSent,
        amountDelivered: progress.amountDelivered,
        ...(progress.error && { error: progress.error }),
      }
    },
  }
}
