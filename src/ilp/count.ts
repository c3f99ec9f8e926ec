import { type IlpReply, isFulfill } from 'ilp-packet'
import type { Metrics } from '../metrics/metrics.ts'

/** Counts a packet's reply: fulfilled, or rejected by its ILP error code. */
export function countReply(
  metrics: Metrics,
  direction: 'incoming' | 'outgoing',
  reply: IlpReply,
): void {
  if (isFulfill(reply)) metrics.ilpFulfilled.inc({ direction })
  // Codes are three characters (F00…T99, R00…); anything else a peer sends is lumped together.
  else
    metrics.ilpRejected.inc({
      direction,
      code: /^[FTR]\d\d$/.test(reply.code) ? reply.code : 'other',
    })
}
