import {
  deserializeIlpPrepare,
  errorToIlpReject,
  IlpError,
  isFulfill,
  isIlpError,
  serializeIlpReject,
  serializeIlpReply,
} from 'ilp-packet'
import type { Deps } from '../deps.ts'
import { forward } from './forward.ts'
import type { SendData } from './pay-sender.ts'

/**
 * How our own STREAM sender's packets leave: routed to a peer like forwarded packets, from the
 * sending wallet's asset. `onFulfill` learns each packet that delivered money (its amount in the
 * source asset) before pay does.
 */
export function peerSendData(
  deps: Deps,
  source: { assetCode: string; assetScale: number },
  onFulfill?: (sourceAmount: bigint) => Promise<void>,
): SendData {
  const own = deps.config.openPayments.ilpAddress
  return async (data) => {
    try {
      const prepare = deserializeIlpPrepare(data)
      const reply = await forward(deps, prepare, { id: 'self', ...source })
      if (isFulfill(reply) && BigInt(prepare.amount) > 0n) await onFulfill?.(BigInt(prepare.amount))
      return serializeIlpReply(reply)
    } catch (err) {
      if (isIlpError(err)) return serializeIlpReject(errorToIlpReject(own, err))
      deps.logger.error({ err }, 'sending an ILP packet failed')
      return serializeIlpReject({
        code: IlpError.T00_INTERNAL_ERROR,
        triggeredBy: own,
        message: 'internal error',
        data: Buffer.alloc(0),
      })
    }
  }
}
