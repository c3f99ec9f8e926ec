import { sql } from 'kysely'
import type { Db } from '../db/database.ts'
import { creditIncomingPayment } from '../incoming-payments/service.ts'
import { assetAccountId } from '../ledger/accounts.ts'
import { createTransfer, postTransfer, voidTransfer } from '../ledger/transfers.ts'
import { isLedgerError } from '../ledger/types.ts'
import { getWalletAddress } from '../wallet-addresses/service.ts'
import { recordPaymentEvent } from './events.ts'
import { reservationId } from './service.ts'

interface Due {
  id: string
  walletAddressId: string
  quoteId: string
  debitAmount: bigint
  feeAmount: bigint
  receiveAmount: bigint
}

interface LocalDue extends Due {
  /** The incoming payment of this ASE that the payment's quote pays. */
  receiverIncomingPaymentId: string
}

/**
 * Pays a payment whose receiver is an incoming payment of this ASE, inside the caller's transaction:
 * the incoming payment is credited (never beyond its amount, never when closed), the reservation
 * is posted into the clearing account, and from there the fee goes to the fee account and the
 * principal to the receiver — directly for one asset, or out through the sender asset's settlement
 * account and in through the receiver asset's for two. Anything the receiver refuses fails the
 * payment and releases the reservation. Transfer ids derive from the payment id, so a retry after a
 * crash cannot move money twice.
 */
export async function settleLocally(
  trx: Db,
  p: LocalDue,
  /** Called (inside the transaction) when this payment completes the incoming payment. */
  onReceiverCompleted?: () => void,
): Promise<'completed' | 'failed'> {
  const credited = await creditIncomingPayment(trx, p.receiverIncomingPaymentId, p.receiveAmount)
  if (typeof credited === 'string')
    return fail(
      trx,
      p.id,
      credited === 'not_payable' ? 'receiver closed' : 'receiver amount exceeded',
    )
  if (credited.completedAt !== null) onReceiverCompleted?.()

  const sender = (await getWalletAddress(trx, { id: p.walletAddressId }))!
  // The receiver's wallet came back with the credit.
  const receiver = credited.wallet
  const posted = await postTransfer(trx, reservationId(p.id))
  // Thrown so that the credit above rolls back with everything else.
  if (isLedgerError(posted)) throw new ReservationLost(posted.message)
  const clearing = await assetAccountId(trx, sender.assetId, 'outgoing')
  const principal = p.debitAmount - p.feeAmount
  const move = async (
    suffix: string,
    debitAccountId: string,
    creditAccountId: string,
    amount: bigint,
  ) => {
    if (amount === 0n) return
    const t = await createTransfer(trx, {
      id: `outgoing:${p.id}:${suffix}`,
      debitAccountId,
      creditAccountId,
      amount,
      reference: `outgoing_payment:${p.id}`,
    })
    if (isLedgerError(t)) throw new Error(`settlement transfer ${suffix} failed: ${t.message}`)
  }
  await move('fee', clearing, await assetAccountId(trx, sender.assetId, 'fees'), p.feeAmount)
  if (sender.assetId === receiver.assetId) {
    await move('deliver', clearing, receiver.ledgerAccountId, principal)
  } else {
    await move(
      'fx-out',
      clearing,
      await assetAccountId(trx, sender.assetId, 'settlement'),
      principal,
    )
    await move(
      'fx-in',
      await assetAccountId(trx, receiver.assetId, 'settlement'),
      receiver.ledgerAccountId,
      p.receiveAmount,
    )
  }
  const row = await trx
    .updateTable('outgoing_payments')
    .set({
      state: 'completed',
      sent_amount: principal,
      next_attempt_at: null,
      updated_at: sql`now()`,
    })
    .where('id', '=', p.id)
    .returningAll()
    .executeTakeFirstOrThrow()
  await recordPaymentEvent(trx, row, { type: 'outgoing_payment.completed' }, sender)
  return 'completed'
}

/** The reservation expired or vanished: the payment cannot be paid from it. */
export class ReservationLost extends Error {}

/** Fails a payment and releases its reservation, in the caller's transaction. */
export async function fail(trx: Db, paymentId: string, reason: string): Promise<'failed'> {
  const voided = await voidTransfer(trx, reservationId(paymentId))
  if (isLedgerError(voided) && voided.code !== 'already_resolved') {
    throw new Error(`could not release reservation: ${voided.message}`)
  }
  const row = await trx
    .updateTable('outgoing_payments')
    .set({ state: 'failed', failure: reason, next_attempt_at: null, updated_at: sql`now()` })
    .where('id', '=', paymentId)
    .returningAll()
    .executeTakeFirstOrThrow()
  await recordPaymentEvent(trx, row, { type: 'outgoing_payment.failed' })
  return 'failed'
}
