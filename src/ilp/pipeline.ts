import { Errors, errorToIlpReject, type IlpPrepare, type IlpReply, isIlpError } from 'ilp-packet'
import type { Deps } from '../deps.ts'
import { findTransfer } from '../ledger/transfers.ts'
import type { Peer } from '../peers/service.ts'
import { countReply } from './count.ts'
import { forward } from './forward.ts'
import { bookingId, createLocalReceiver } from './receive.ts'
import { createReplyCache } from './reply-cache.ts'
import type { StreamReceiver } from './stream-receiver.ts'

export interface IlpPipeline {
  /** The reply to a Prepare from a peer. Never throws: every failure is a Reject from us. */
  handlePrepare(prepare: IlpPrepare, from: Peer): Promise<IlpReply>
}

/**
 * What happens to an incoming Prepare (reference/ilp.md 5.3): expiry, the peer's packet limit, then
 * a STREAM receive for our own addresses or forwarding to a peer for any other. A repeated packet
 * gets the reply the first one got.
 */
export function createPipeline(deps: Deps, stream: StreamReceiver): IlpPipeline {
  const ownAddress = deps.config.openPayments.ilpAddress
  const localPrefix = `${ownAddress}.`
  const cached = createReplyCache()
  const receiveLocally = createLocalReceiver(deps, stream)

  const route = async (prepare: IlpPrepare, from: Peer): Promise<IlpReply> => {
    const local = prepare.destination.startsWith(localPrefix)
    if (prepare.expiresAt.getTime() <= Date.now()) {
      // A sender recovering from a crash repeats packets to learn which arrived: one we booked
      // gets its Fulfill again, expired or not.
      if (local && (await findTransfer(deps.db, bookingId(prepare, from)))) {
        return receiveLocally(prepare, from)
      }
      throw new Errors.TransferTimedOutError('packet expired')
    }
    if (from.maxPacketAmount !== null && BigInt(prepare.amount) > from.maxPacketAmount) {
      // The amounts in the data are how senders discover the path's packet limit.
      throw new Errors.AmountTooLargeError('packet amount exceeds the peer’s maximum', {
        receivedAmount: prepare.amount,
        maximumAmount: from.maxPacketAmount.toString(),
      })
    }
    return local ? receiveLocally(prepare, from) : forward(deps, prepare, from)
  }

  return {
    handlePrepare: async (prepare, from) => {
      const reply = await cached(from.id, prepare, async () => {
        try {
          return await route(prepare, from)
        } catch (err) {
          if (isIlpError(err)) return errorToIlpReject(ownAddress, err)
          // T00 (temporary) either way: the sender may retry; an outage is logged once, not per packet.
          if (!deps.outage.noted(err))
            deps.logger.error({ err, peer: from.name }, 'ILP packet failed')
          return errorToIlpReject(ownAddress, new Errors.InternalError('internal error'))
        }
      })
      countReply(deps.metrics, 'incoming', reply)
      return reply
    },
  }
}
