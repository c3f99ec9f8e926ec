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
import { route, send } from './forward.ts'
import type { SendData } from './pay-sender.ts'

/** Keeps a payment's `sent` total while its packets travel (amounts in the source asset). */
export interface SendTracker {
  /** Before a packet leaves: counted as sent from now on. */
  sending(amount: bigint): Promise<void>
  /** The packet was rejected (or never left): not sent after all. */
  rejected(amount: bigint): Promise<void>
}

/**
 * How our own STREAM sender's packets leave: routed to a peer like forwarded packets, from the
 * sending wallet's asset. With a tracker, a packet counts as sent *before* it leaves and stops
 * counting if it is rejected: if this process dies while packets are in flight, the peer most
 * likely fulfilled them (the receiver books before it answers), so the books lean that way.
 */
export function peerSendData(
  deps: Deps,
  source: { assetCode: string; assetScale: number },
  tracker?: SendTracker,
): SendData {
  const own = deps.config.openPayments.ilpAddress
  return async (data) => {
    let counted = 0n
    try {
      const prepare = deserializeIlpPrepare(data)
      const amount = BigInt(prepare.amount)
      // Route first (database reads), so that nothing but the write itself separates counting a
      // packet from sending it.
      const next = await route(deps, prepare, { id: 'self', ...source })
      if (tracker && amount > 0n) {
        await tracker.sending(amount)
        counted = amount
      }
      const reply = await send(deps, next, prepare)
      if (!isFulfill(reply) && counted > 0n) await tracker!.rejected(counted)
      return serializeIlpReply(reply)
    } catch (err) {
      if (counted > 0n) await tracker!.rejected(counted).catch(() => {})
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
