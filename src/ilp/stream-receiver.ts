import { createRequire } from 'node:module'
import { isatty } from 'node:tty'
import { StreamServer } from '@interledger/stream-receiver'
import type { IlpFulfill, IlpPrepare, IlpReject, IlpReply } from 'ilp-packet'

export interface IlpPaymentMethod {
  type: 'ilp'
  ilpAddress: string
  /** base64url without padding, as the spec's pattern requires. */
  sharedSecret: string
}

/** An authentic, fulfillable Prepare with money: the caller books it, then accepts or declines. */
export interface IncomingMoney {
  /** The Fulfill; only once the money is booked. */
  accept(): IlpFulfill
  /** F99 with a STREAM close: the sender stops paying this connection. */
  finalDecline(): IlpReject
}

/**
 * Our side of STREAM receiving, behind an interface so that the alpha `@interledger/stream-receiver`
 * can be replaced. Credentials are stateless: derived from STREAM_SECRET and the incoming payment
 * id, freshly encrypted on every call, decodable by us alone.
 */
export interface StreamReceiver {
  credentials(paymentId: string, asset: { code: string; scale: number }): IlpPaymentMethod
  /** The incoming payment id in one of our STREAM addresses; undefined if it is not authentic. */
  paymentId(destination: string): string | undefined
  /**
   * STREAM's answer to a Prepare for one of our addresses, whose amount is already in the receiving
   * asset: an ILP reply to return as it is (rate probes, zero amounts, unauthentic data, closes) or
   * money to book.
   */
  createReply(prepare: IlpPrepare): IlpReply | IncomingMoney
}

export function createStreamReceiver(opts: { secret: Buffer; ilpAddress: string }): StreamReceiver {
  const server = new StreamServer({ serverSecret: opts.secret, serverAddress: opts.ilpAddress })
  return {
    credentials(paymentId, asset) {
      const { ilpAddress, sharedSecret } = server.generateCredentials({
        paymentTag: paymentId,
        asset,
      })
      return { type: 'ilp', ilpAddress, sharedSecret: sharedSecret.toString('base64url') }
    },
    paymentId: (destination) => server.decodePaymentTag(destination) || undefined,
    createReply: (prepare) => server.createReply(prepare),
  }
}

// stream-receiver creates an ilp-logger (five `debug` instances) for every packet, and each one
// asks the OS whether stderr is a terminal: about 10 of the 33 µs that costs, measured here.
// Answering once, as DEBUG_COLORS would, changes no output; the loggers stay off unless DEBUG=ilp*.
const debug = createRequire(createRequire(import.meta.url).resolve('ilp-logger'))('debug')
if (!('colors' in debug.inspectOpts)) debug.inspectOpts.colors = isatty(process.stderr.fd)
