import {
  IlpError,
  type IlpFulfill,
  type IlpPrepare,
  type IlpReject,
  type IlpReply,
  isValidIlpAddress,
} from 'ilp-packet'
import { createLru } from '../lib/lru.ts'
import {
  decrypt,
  encrypt,
  encryptionKey,
  fulfillmentKey,
  fulfillmentOf,
  hmac,
  sha256,
} from './stream/crypto.ts'
import { ErrorCode, type Frame, FrameType } from './stream/frames.ts'
import { Reader, Writer } from './stream/oer.ts'
import { IlpPacketType, type IlpPacketTypeValue, openPacket, sealPacket } from './stream/packet.ts'

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
 * Our side of STREAM receiving (RFC 29). Credentials are stateless: a connection token that
 * encrypts the incoming payment id (and the asset) under a key derived from STREAM_SECRET, decodable
 * by us alone, freshly encrypted on every call; the shared secret is derived from the token.
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
  /** How many connection tokens were decrypted (the others were known): for tests and profiles. */
  readonly tokensDecrypted: number
}

/** What a connection token says, and the keys its shared secret gives. */
interface Connection {
  paymentTag: string | undefined
  asset: { code: string; scale: number } | undefined
  encryptionKey: Buffer
  fulfillmentKey: Buffer
}

// The token's layout and key derivation are those of `@interledger/stream-receiver` (which Rafiki
// uses, and which this server used before), so that addresses issued by either keep working.
const TOKEN_KEY = 'ilp_stream_connection_token'
const SHARED_SECRET_KEY = 'ilp_stream_shared_secret'
const FLAGS = { paymentTag: 1, receipts: 2, asset: 4 } as const

/** Connections being paid at once; a token and its details are a few hundred bytes. */
const MAX_TOKENS = 10_000

/**
 * The receiver for `ilpAddress`, whose tokens are keyed by `secret` (32 bytes). Written here rather
 * than taken from the alpha `@interledger/stream-receiver`, which built an `ilp-logger` (five
 * `debug` instances) and hashed the destination for every packet, and derived the connection's three
 * keys anew each time: together about a tenth of the server's CPU per packet
 * (docs/performance-history.md, twelfth pass).
 * The details and keys of authentic tokens are kept, least recently used out, up to `maxTokens`
 * (a token decrypts to the same details for as long as the secret is the same: it is authenticated
 * encryption); a token that fails to decrypt is decrypted again each time and never kept.
 */
export function createStreamReceiver(opts: {
  secret: Buffer
  ilpAddress: string
  maxTokens?: number
}): StreamReceiver {
  if (opts.secret.length !== 32) throw new Error('STREAM secret must be 32 bytes')
  if (!isValidIlpAddress(opts.ilpAddress)) throw new Error('invalid ILP address')
  const serverAddress = opts.ilpAddress
  const prefix = `${serverAddress}.`
  const tokenKey = hmac(opts.secret, TOKEN_KEY)
  const sharedSecretKey = hmac(opts.secret, SHARED_SECRET_KEY)
  const known = createLru<string, Connection>(opts.maxTokens ?? MAX_TOKENS)
  let tokensDecrypted = 0

  /** The token's part of one of our addresses (undefined: not one of ours). */
  const segmentOf = (destination: string): string | undefined => {
    if (!destination.startsWith(prefix)) return undefined
    const end = destination.indexOf('.', prefix.length)
    return destination.slice(prefix.length, end === -1 ? undefined : end) || undefined
  }

  /** The connection of a token, if it is ours. */
  const connectionOf = (segment: string): Connection | undefined => {
    const hit = known.get(segment)
    if (hit) return hit
    tokensDecrypted++
    const token = Buffer.from(segment, 'base64url')
    const connection = openToken(tokenKey, token)
    if (!connection) return undefined
    const sharedSecret = hmac(sharedSecretKey, token)
    const found = {
      ...connection,
      encryptionKey: encryptionKey(sharedSecret),
      fulfillmentKey: fulfillmentKey(sharedSecret),
    }
    known.set(segment, found)
    return found
  }

  return {
    credentials(paymentId, asset) {
      const token = encrypt(
        tokenKey,
        new Writer()
          .u8(FLAGS.paymentTag | FLAGS.asset)
          .varOctets(Buffer.from(paymentId, 'ascii'))
          .utf8(asset.code)
          .u8(asset.scale)
          .toBuffer(),
      )
      const ilpAddress = `${prefix}${token.toString('base64url')}`
      if (!isValidIlpAddress(ilpAddress)) throw new Error('ILP address too long for a token')
      return {
        type: 'ilp',
        ilpAddress,
        sharedSecret: hmac(sharedSecretKey, token).toString('base64url'),
      }
    },
    paymentId(destination) {
      const segment = segmentOf(destination)
      return (segment !== undefined && connectionOf(segment)?.paymentTag) || undefined
    },
    createReply(prepare) {
      const segment = segmentOf(prepare.destination)
      if (segment === undefined) return rejectFrom(serverAddress, IlpError.F02_UNREACHABLE)
      const connection = connectionOf(segment)
      if (!connection) return rejectFrom(serverAddress, IlpError.F06_UNEXPECTED_PAYMENT)
      return createReply(serverAddress, connection, prepare)
    },
    get tokensDecrypted() {
      return tokensDecrypted
    },
  }
}

/** The details a token encrypts, or undefined if it is not one of ours. */
function openToken(
  key: Buffer,
  token: Buffer,
): Omit<Connection, 'encryptionKey' | 'fulfillmentKey'> | undefined {
  const plaintext = decrypt(key, token)
  if (!plaintext) return undefined
  try {
    const r = new Reader(plaintext)
    const flags = r.u8()
    const paymentTag = flags & FLAGS.paymentTag ? r.varOctets().toString('ascii') : undefined
    // Receipts' nonce and secret: never issued here, skipped in tokens that carry them.
    if (flags & FLAGS.receipts) r.take(16 + 32)
    const asset = flags & FLAGS.asset ? { code: r.utf8(), scale: r.u8() } : undefined
    return { paymentTag, asset }
  } catch {
    return undefined
  }
}

/**
 * RFC 29's receiving side for one Prepare to an authentic connection, answered as
 * `@interledger/stream-receiver` answers it: data we cannot open is F06; a close is answered with a
 * close; a new address gets the asset; less than the sender's minimum, or a condition our
 * fulfillment does not meet (a rate probe), is F99 with the amount that arrived; a zero amount is
 * fulfilled at once; money is left to the caller.
 */
function createReply(
  serverAddress: string,
  connection: Connection,
  prepare: IlpPrepare,
): IlpReply | IncomingMoney {
  const reject = (code: string, data?: Buffer) => rejectFrom(serverAddress, code, data)
  const request = openPacket(connection.encryptionKey, prepare.data)
  if (!request) return reject(IlpError.F06_UNEXPECTED_PAYMENT)
  if (request.ilpPacketType !== IlpPacketType.Prepare) return reject(IlpError.F00_BAD_REQUEST)

  const received = BigInt(prepare.amount)
  const frames: Frame[] = []
  const data = (type: IlpPacketTypeValue) =>
    sealPacket(connection.encryptionKey, {
      sequence: request.sequence,
      ilpPacketType: type,
      prepareAmount: received,
      frames,
    })
  const rejectWithData = (code: string) => reject(code, data(IlpPacketType.Reject))
  const closeFrame = {
    type: FrameType.ConnectionClose,
    errorCode: ErrorCode.NoError,
    errorMessage: '',
  } as const

  if (request.frames.some((f) => f.type === FrameType.ConnectionClose)) {
    frames.push(closeFrame)
    return rejectWithData(IlpError.F99_APPLICATION_ERROR)
  }
  if (connection.asset && request.frames.some((f) => f.type === FrameType.ConnectionNewAddress)) {
    frames.push({
      type: FrameType.ConnectionAssetDetails,
      sourceAssetCode: connection.asset.code,
      sourceAssetScale: connection.asset.scale,
    })
  }
  if (received < request.prepareAmount) return rejectWithData(IlpError.F99_APPLICATION_ERROR)
  const fulfillment = fulfillmentOf(connection.fulfillmentKey, prepare.data)
  if (!sha256(fulfillment).equals(prepare.executionCondition)) {
    return rejectWithData(IlpError.F99_APPLICATION_ERROR)
  }
  const fulfill = (): IlpFulfill => ({ fulfillment, data: data(IlpPacketType.Fulfill) })
  if (received === 0n) return fulfill()
  return {
    accept: fulfill,
    finalDecline: () => {
      frames.push(closeFrame)
      return rejectWithData(IlpError.F99_APPLICATION_ERROR)
    },
  }
}

const rejectFrom = (
  triggeredBy: string,
  code: string,
  data: Buffer = Buffer.alloc(0),
): IlpReject => ({
  code,
  message: '',
  triggeredBy,
  data,
})
