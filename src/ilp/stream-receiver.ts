import { createRequire } from 'node:module'
import { isatty } from 'node:tty'
import { StreamServer } from '@interledger/stream-receiver'
import type { IlpFulfill, IlpPrepare, IlpReject, IlpReply } from 'ilp-packet'
import { createLru } from '../lib/lru.ts'

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

export function createStreamReceiver(opts: {
  secret: Buffer
  ilpAddress: string
  /** How many connection tokens' details are kept (default 10,000). */
  maxTokens?: number
}): StreamReceiver {
  const server = new StreamServer({ serverSecret: opts.secret, serverAddress: opts.ilpAddress })
  rememberConnectionTokens(server, opts.maxTokens ?? MAX_TOKENS)
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

/** Connections being paid at once; a token and its details are a few hundred bytes. */
const MAX_TOKENS = 10_000

type DecryptToken = (token: Buffer) => object | undefined

/**
 * Every packet's address carries its connection's token, which the receiver decrypts (AES-GCM)
 * twice per packet: for `paymentId` and again in `createReply`. A token decrypts to the same
 * details for as long as the secret is the same (it is authenticated encryption), so the details of
 * authentic tokens are kept, per server, least recently used out; anything that fails to decrypt
 * is decrypted again each time and never kept. `decryptToken` is private to the pinned
 * `@interledger/stream-receiver`; the interop tests cover it.
 */
function rememberConnectionTokens(server: StreamServer, max: number): void {
  const target = server as unknown as { decryptToken: DecryptToken }
  const decrypt = target.decryptToken.bind(server)
  const known = createLru<string, object>(max)
  target.decryptToken = (token) => {
    const key = token.toString('latin1')
    const hit = known.get(key)
    if (hit) return hit
    const details = decrypt(token)
    if (details) known.set(key, details)
    return details
  }
}

// stream-receiver creates an ilp-logger (five `debug` instances) for every packet, and each one
// asks the OS whether stderr is a terminal: about 10 of the 33 µs that costs, measured here.
// Answering once, as DEBUG_COLORS would, changes no output; the loggers stay off unless DEBUG=ilp*.
const debug = createRequire(createRequire(import.meta.url).resolve('ilp-logger'))('debug')
if (!('colors' in debug.inspectOpts)) debug.inspectOpts.colors = isatty(process.stderr.fd)
