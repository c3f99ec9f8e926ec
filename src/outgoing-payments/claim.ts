import type { ExpressionBuilder } from 'kysely'
import type { DB } from '../db/schema.ts'
import type { Deps } from '../deps.ts'

/**
 * One attempt's hold on a payment it sends over Interledger. Claiming a payment (worker.ts) raises
 * its `attempts`, and only ever raises it, so the number is the claim's identity: a fencing token.
 * Every write an attempt makes while it sends or settles (a packet's record above all) holds only
 * while the payment is still `sending` at that number. An attempt that outlived its lease and was
 * taken over finds its writes matching nothing: it sends nothing more and books nothing, and the
 * new holder, which sees every packet recorded before its claim, settles the payment.
 */
export interface Claim {
  paymentId: string
  attempt: number
}

/** The claim was taken over: the attempt that finds this stops and leaves the payment alone. */
export class ClaimLost extends Error {
  constructor(claim: Claim) {
    super(`payment ${claim.paymentId}: attempt ${claim.attempt} no longer holds it`)
  }
}

/** `outgoing_payments` rows still held by `claim` (for `.where(held(claim))`). */
export const held = (claim: Claim) => (eb: ExpressionBuilder<DB, 'outgoing_payments'>) =>
  eb.and([
    eb('outgoing_payments.id', '=', claim.paymentId),
    eb('outgoing_payments.state', '=', 'sending'),
    eb('outgoing_payments.attempts', '=', claim.attempt),
  ])

/** A claim kept alive while its attempt works outside any transaction. */
export interface Lease {
  /** Aborted once the claim is known lost: whoever sends for the attempt stops at once. */
  readonly signal: AbortSignal
  /** Records that a fenced write matched nothing: the claim is gone. */
  lose(): void
  /** Stops renewing; resolves once no renewal is under way, so none lands after the caller's writes. */
  stop(): Promise<void>
}

/**
 * Renews `claim`'s lease every third of it, with a write fenced like every other, so that an
 * attempt that is alive is never taken over however long its payment takes. A renewal that finds
 * the claim gone aborts the lease's signal. A renewal that fails (the database is unreachable) is
 * only logged: the lease may then run out, and fencing keeps the attempt from spending past it.
 */
export function keepLease(deps: Deps, claim: Claim, leaseMs: number): Lease {
  const { db, logger } = deps
  const controller = new AbortController()
  let stopped = false
  let timer: NodeJS.Timeout | undefined
  let renewing: Promise<void> = Promise.resolve()

  const lose = () => {
    if (controller.signal.aborted) return
    logger.warn(
      { payment: claim.paymentId, attempt: claim.attempt },
      'outgoing payment taken over by another attempt: this one stops sending',
    )
    controller.abort(new ClaimLost(claim))
  }
  const renew = async () => {
    try {
      const row = await db
        .updateTable('outgoing_payments')
        .set({ next_attempt_at: new Date(Date.now() + leaseMs) })
        .where(held(claim))
        .returning('id')
        .executeTakeFirst()
      if (!row) lose()
    } catch (err) {
      logger.warn({ err, payment: claim.paymentId }, 'renewing the lease of a payment failed')
    }
  }
  const schedule = () => {
    timer = setTimeout(() => {
      renewing = renew().then(() => {
        if (!stopped && !controller.signal.aborted) schedule()
      })
    }, leaseMs / 3)
  }
  schedule()

  return {
    signal: controller.signal,
    lose,
    stop: async () => {
      stopped = true
      clearTimeout(timer)
      await renewing
    },
  }
}
