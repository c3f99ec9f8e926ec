import { sql } from 'kysely'
import type { Db } from '../db/database.ts'
import { findTransfer, voidTransfer } from '../ledger/transfers.ts'
import { isLedgerError } from '../ledger/types.ts'
import { recordPaymentEvent } from './events.ts'
import { type OutgoingPayment, reservationId, toOutgoingPayment } from './service.ts'

export type CancelError = 'not_found' | 'already_sending' | 'wrong_state'

/**
 * Cancels a payment that has not started sending, in one transaction: its reservation is released
 * and it ends `cancelled` with the operator's reason. The row is locked first, so a payment worker
 * either settled it before (the payment is no longer `sending`: `wrong_state`) or skips it (it
 * claims with SKIP LOCKED) and never sees it due again. A payment an attempt is sending over
 * Interledger, or one that has sent anything, is `already_sending`. Cancelling a cancelled payment
 * returns it unchanged (`replayed`).
 */
export async function cancelOutgoingPayment(
  db: Db,
  id: string,
  reason: string,
): Promise<{ payment: OutgoingPayment; replayed: boolean } | CancelError> {
  return db.transaction().execute(async (trx) => {
    const row = await trx
      .selectFrom('outgoing_payments')
      .selectAll()
      .where('id', '=', id)
      .forUpdate()
      .executeTakeFirst()
    if (!row) return 'not_found'
    if (row.state === 'cancelled') return { payment: toOutgoingPayment(row), replayed: true }
    if (row.state !== 'sending') return 'wrong_state'
    if (row.sending_since !== null || row.sent_amount > 0n || row.stream_outcome !== null)
      return 'already_sending'
    const released = await voidTransfer(trx, reservationId(id))
    if (isLedgerError(released)) {
      // Released already by the ledger's expiry worker: nothing is held. Anything else (posted
      // while the payment says it sent nothing) is a broken invariant, not a cancellation.
      const reservation = await findTransfer(trx, reservationId(id))
      if (reservation?.state !== 'expired')
        throw new Error(`cannot release the reservation of ${id}: ${released.message}`)
    }
    const cancelled = await trx
      .updateTable('outgoing_payments')
      .set({ state: 'cancelled', failure: reason, next_attempt_at: null, updated_at: sql`now()` })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow()
    await recordPaymentEvent(trx, cancelled, { type: 'outgoing_payment.cancelled' })
    return { payment: toOutgoingPayment(cancelled), replayed: false }
  })
}
