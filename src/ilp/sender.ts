import type { IlpReply } from 'ilp-packet'
import { type Ratio as ExactRatio, parseRate } from '../rates/ratio.ts'
import { Connection } from './stream/connection.ts'
import { MAX_UINT64 } from './stream/oer.ts'
import { type PaymentPlan, sendPayment } from './stream/payment.ts'
import { probePath } from './stream/probe.ts'
import { type Fraction, floorTimes, PathRate } from './stream/rate.ts'

/** Where a STREAM payment goes: the receiver's `ilp` payment method and asset. */
export interface IlpDestination {
  ilpAddress: string
  /** base64url, as incoming payments carry it. */
  sharedSecret: string
  asset: { code: string; scale: number }
}

/** A quote's terms, stored with the quote and handed back to `pay`. */
export interface IlpTerms {
  /**
   * `send`: all of `maxSourceAmount` leaves, delivering at least `minDeliveryAmount`; `deliver`:
   * exactly `minDeliveryAmount` arrives, for at most `maxSourceAmount`. Terms stored before this
   * field existed were fixed deliveries.
   */
  paymentType?: 'send' | 'deliver'
  maxSourceAmount: bigint
  minDeliveryAmount: bigint
  maxPacketAmount: bigint
  /** Destination units per source unit (smallest units): each packet's floor. */
  minExchangeRate: [bigint, bigint]
  /** Bounds of the path's rate as probed. */
  lowEstimatedExchangeRate: [bigint, bigint]
  highEstimatedExchangeRate: [bigint, bigint]
}

/** What a sender says about a fulfillable packet, for the record kept of it. */
export interface PacketMeta {
  /** What the sender expects to arrive (receiver's asset): at least the STREAM minimum. */
  expectedDelivery: bigint
  /** What the receiver says arrived, read from its authentic STREAM reply. */
  delivered(reply: IlpReply): bigint | undefined
}

/** Sends serialized ILP Prepares and resolves with the serialized reply (never rejects). */
export type SendData = (prepare: Buffer, meta?: PacketMeta) => Promise<Buffer>

export type IlpSendError = string

/**
 * STREAM sending: quotes probe the path with unfulfillable packets (no money moves); payments send
 * fulfillable ones. Behind an interface so that tests and benchmarks can compare implementations.
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
    /** The most the receiver may get, when it is less than the terms allow (an incoming payment's rest). */
    maxDelivery?: bigint | undefined
    /** No packet leaves after this (the receiver's expiry). */
    deadline?: Date | undefined
    /** Once aborted, no packet leaves; the payment ends with the error `Aborted`. */
    signal?: AbortSignal | undefined
  }): Promise<{ amountSent: bigint; amountDelivered: bigint; error?: IlpSendError }>
}

/** How long a quote may probe a path that keeps answering T or R rejects. */
const PROBE_TIMEOUT_MS = 10_000

const pair = (f: Fraction): [bigint, bigint] => [f.num, f.den]
const fraction = ([num, den]: [bigint, bigint]): Fraction => ({ num, den })
const below = (a: Fraction, b: Fraction) => a.num * b.den < b.num * a.den

/**
 * The least a payment may get per unit sent, in smallest units: the rate less slippage, scaled
 * from the source's to the destination's smallest unit. Exact: slippage is read as its decimal.
 */
export function minimumRate(
  rate: ExactRatio,
  slippage: number,
  sourceScale: number,
  destScale: number,
): Fraction {
  const slip = slippage > 0 ? parseRate(slippage) : undefined
  const keep = slip ? { num: slip.den - slip.num, den: slip.den } : { num: 1n, den: 1n }
  const shift = destScale - sourceScale
  return {
    num: rate.num * keep.num * 10n ** BigInt(Math.max(shift, 0)),
    den: rate.den * keep.den * 10n ** BigInt(Math.max(-shift, 0)),
  }
}

/** The least a fixed send of `amount` delivers in packets of at most `maxPacket`, each rounded down. */
export function minDeliveryFor(amount: bigint, maxPacket: bigint, minRate: Fraction): bigint {
  const full = amount / maxPacket
  return full * floorTimes(maxPacket, minRate) + floorTimes(amount % maxPacket, minRate)
}

/**
 * The most a fixed delivery of `amount` may cost at the minimum rate, in packets of at most
 * `maxPacket`: full packets while more than one packet's worth is wanted, then the rest `k`. At a
 * rate of at most one unit per unit, the least amount delivering `k` lands on it exactly; above
 * that, the payment may need a couple more small packets to land exactly (it measures each first),
 * each of which may lose a unit to rounding.
 */
export function maxSourceFor(
  amount: bigint,
  maxPacket: bigint,
  minRate: Fraction,
): bigint | undefined {
  const perPacket = floorTimes(maxPacket, minRate)
  if (perPacket <= 0n || amount <= 0n) return undefined
  const full = (amount - 1n) / perPacket
  const rest = amount - full * perPacket
  const extra = minRate.num <= minRate.den ? 0n : 2n
  return full * maxPacket + ceilDiv((rest + extra) * minRate.den, minRate.num)
}

const ceilDiv = (a: bigint, b: bigint) => (a + b - 1n) / b

/** Our STREAM sender (RFC 29), packets lasting `packetExpirySeconds`. */
export function createStreamSender(opts: { packetExpirySeconds: number }): IlpSender {
  const expiryMs = opts.packetExpirySeconds * 1000
  const connect = (sendData: SendData, d: IlpDestination) =>
    new Connection(sendData, d.ilpAddress, Buffer.from(d.sharedSecret, 'base64url'), expiryMs)

  return {
    async quote(o) {
      const conn = connect(o.sendData, o.destination)
      const probe = await probePath(conn, Date.now() + PROBE_TIMEOUT_MS)
      await conn.close()
      if ('error' in probe) return probe
      const { low, high } = probe.rate as Required<PathRate>
      const minRate = minimumRate(
        o.rate,
        o.slippage,
        o.sourceAsset.scale,
        o.destination.asset.scale,
      )
      if (below(low, minRate)) return { error: 'InsufficientExchangeRate' }
      const max = probe.maxPacketAmount
      const rates = {
        maxPacketAmount: max,
        minExchangeRate: pair(minRate),
        lowEstimatedExchangeRate: pair(low),
        highEstimatedExchangeRate: pair(high),
      }
      if ('send' in o.amount) {
        return {
          paymentType: 'send',
          maxSourceAmount: o.amount.send,
          minDeliveryAmount: minDeliveryFor(o.amount.send, max, minRate),
          ...rates,
        }
      }
      const maxSource = maxSourceFor(o.amount.deliver, max, minRate)
      if (maxSource === undefined) return { error: 'InsufficientExchangeRate' }
      if (maxSource > MAX_UINT64) return { error: 'AmountTooLarge' }
      return {
        paymentType: 'deliver',
        maxSourceAmount: maxSource,
        minDeliveryAmount: o.amount.deliver,
        ...rates,
      }
    },

    async pay(o) {
      const t = o.terms
      const type = t.paymentType ?? 'deliver'
      const cap = o.maxDelivery
      const target =
        type === 'deliver'
          ? cap !== undefined && cap < t.minDeliveryAmount
            ? cap
            : t.minDeliveryAmount
          : cap
      const plan: PaymentPlan = {
        type,
        maxSource: t.maxSourceAmount,
        target,
        minRate: fraction(t.minExchangeRate),
        rate: new PathRate(
          fraction(t.lowEstimatedExchangeRate),
          fraction(t.highEstimatedExchangeRate),
        ),
        maxPacketAmount: t.maxPacketAmount,
        deadline: o.deadline?.getTime(),
        signal: o.signal,
      }
      const conn = connect(o.sendData, o.destination)
      const result = await sendPayment(conn, plan)
      await conn.close()
      return {
        amountSent: result.sent,
        amountDelivered: result.delivered,
        ...(result.error && { error: result.error }),
      }
    },
  }
}
