import { setTimeout as sleep } from 'node:timers/promises'
import { type Connection, maxPacketFromF08 } from './connection.ts'
import { MAX_UINT64 } from './oer.ts'
import { PathRate } from './rate.ts'

export interface PathProbe {
  rate: PathRate
  /** The largest packet the path carried (MAX_UINT64 when no hop limits it). */
  maxPacketAmount: bigint
}

/** The first probe's amount: large enough to measure a rate to twelve digits. */
const FIRST_PROBE = 10n ** 12n

/**
 * Measures a path with unfulfillable packets (no money moves): each authentic STREAM reply says
 * how much arrived, whatever its ILP code (F99 from older receivers, F05 or F04 from newer ones);
 * F08 says the largest packet a hop takes. Done when a packet as large as the path allows came
 * back authentic. T and R rejects are retried with backoff until `deadline`; any other reject, or
 * a reply the receiver did not seal, means the receiver cannot be paid.
 */
export async function probePath(
  conn: Connection,
  deadline: number,
): Promise<PathProbe | { error: string }> {
  const rate = new PathRate()
  let max = MAX_UINT64
  let amount = FIRST_PROBE
  let backoffMs = 20
  while (Date.now() < deadline) {
    const reply = await conn.send({ amount, minDelivery: 0n, fulfillable: false })
    if (reply.stream) {
      rate.observe(amount, reply.stream.prepareAmount)
      // Either the whole first probe got through, or a packet as large as the path's limit did.
      return { rate, maxPacketAmount: max }
    }
    const code = reply.code ?? ''
    if (code === 'F08') {
      max = maxPacketFromF08(reply, amount)
      if (max <= 0n) return { error: 'ConnectorError' }
      amount = max
      continue
    }
    if (code.startsWith('T') || code.startsWith('R')) {
      await sleep(Math.min(backoffMs, Math.max(0, deadline - Date.now())))
      backoffMs = Math.min(backoffMs * 2, 1000)
      continue
    }
    return { error: 'ConnectorError' }
  }
  return { error: 'RateProbeFailed' }
}
