import { createHash } from 'node:crypto'
import {
  deserializeIlpPrepare,
  errorToIlpReject,
  IlpError,
  type IlpReply,
  isFulfill,
  isIlpError,
  serializeIlpPrepare,
  serializeIlpReject,
  serializeIlpReply,
} from 'ilp-packet'
import type { Deps } from '../deps.ts'
import { route, send } from './forward.ts'
import { mayHaveArrived } from './http-client.ts'
import type { SendData } from './sender.ts'

/** A packet about to leave for a peer, as it will be sent. */
export interface OutgoingPacket {
  /** sha-256 of the serialized Prepare. */
  id: string
  peerId: string
  prepare: Buffer
  /** In the source asset. */
  amount: bigint
  /** In the peer's asset: what the peer is owed if the packet is fulfilled. */
  peerAmount: bigint
  /** In the receiver's asset: what the sender expects to arrive. */
  expectedDelivery: bigint | undefined
}

/** Keeps a payment's `sent` total while its packets travel. */
export interface SendTracker {
  /** Before a packet leaves: counted as sent from now on. */
  sending(packet: OutgoingPacket): Promise<void>
  /** The packet was fulfilled; `delivered` is what the receiver's STREAM reply says arrived. */
  fulfilled(packet: OutgoingPacket, delivered: bigint | undefined): Promise<void>
  /** The packet was rejected (or never left): not sent after all. */
  rejected(packet: OutgoingPacket): Promise<void>
  // A packet that left but got no answer gets no call: it stays counted, unfulfilled, until the
  // payment's end repeats it to learn its fate.
}

/**
 * How our own STREAM sender's packets leave: routed to a peer like forwarded packets, from the
 * sending wallet's asset. With a tracker, a packet counts as sent *before* it leaves and stops
 * counting only if it is surely rejected: if this process dies while packets are in flight, or a
 * packet's answer is lost, the peer may have fulfilled it (the receiver books before it answers),
 * so it stays counted until the peer is asked again.
 */
export function peerSendData(
  deps: Deps,
  source: { assetCode: string; assetScale: number },
  tracker?: SendTracker,
): SendData {
  const own = deps.config.openPayments.ilpAddress
  return async (data, meta) => {
    let counted: OutgoingPacket | undefined
    let reply: IlpReply | undefined
    try {
      const prepare = deserializeIlpPrepare(data)
      const amount = BigInt(prepare.amount)
      // Route first (database reads), so that nothing but the write itself separates counting a
      // packet from sending it.
      const next = await route(deps, prepare, { id: 'self', ...source })
      // Only fulfillable packets (those the sender describes) can move money; probes cannot.
      if (tracker && meta && amount > 0n) {
        const bytes = serializeIlpPrepare(next.outgoing)
        const packet = {
          id: packetId(bytes),
          peerId: next.to.id,
          prepare: bytes,
          amount,
          peerAmount: BigInt(next.outgoing.amount),
          expectedDelivery: meta.expectedDelivery,
        }
        await tracker.sending(packet)
        counted = packet
      }
      reply = await send(deps, next, prepare)
      if (counted && isFulfill(reply)) {
        // The money has left: a failure to mark it leaves the packet counted as sent, which is
        // what it is, and the sender still gets its Fulfill.
        await tracker!.fulfilled(counted, meta?.delivered(reply)).catch((err) => {
          deps.logger.error({ err }, 'recording a fulfilled packet failed; it stays counted')
        })
      } else if (counted && !mayHaveArrived(reply)) await tracker!.rejected(counted)
      // A packet that left without an answer stays counted: the payment's end asks the peer again.
      return serializeIlpReply(reply)
    } catch (err) {
      // Only a packet that surely did not arrive stops counting as sent.
      if (counted && !(reply && (isFulfill(reply) || mayHaveArrived(reply))))
        await tracker!.rejected(counted).catch(() => {})
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

export const packetId = (prepare: Buffer) => createHash('sha256').update(prepare).digest('hex')
