import { StreamServer } from '@interledger/stream-receiver'

export interface IlpPaymentMethod {
  type: 'ilp'
  ilpAddress: string
  /** base64url without padding, as the spec's pattern requires. */
  sharedSecret: string
}

/**
 * Our side of STREAM receiving, behind an interface so that the alpha `@interledger/stream-receiver`
 * can be replaced. Credentials are stateless: derived from STREAM_SECRET and the incoming payment
 * id, freshly encrypted on every call, decodable by us alone.
 */
export interface StreamReceiver {
  credentials(paymentId: string, asset: { code: string; scale: number }): IlpPaymentMethod
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
  }
}
