import type { Selectable } from 'kysely'
import { queueEndCallout } from '../core-banking/outgoing.ts'
import type { Db } from '../db/database.ts'
import type { OutgoingPaymentsTable } from '../db/schema.ts'
import { getWalletAddress, type WalletAddress } from '../wallet-addresses/service.ts'
import { recordEvent } from '../webhooks/outbox.ts'
import { reservationId, toOutgoingPayment } from './service.ts'

type Ended =
  | 'outgoing_payment.created'
  | 'outgoing_payment.completed'
  | 'outgoing_payment.failed'
  | 'outgoing_payment.cancelled'

/**
 * Records a payment's state change as a webhook event, in the transaction that made it; its end
 * (completed, failed, cancelled) also queues core banking's post or release, if it approved it.
 */
export async function recordPaymentEvent(
  trx: Db,
  row: Selectable<OutgoingPaymentsTable>,
  event:
    | { type: Ended }
    | {
        type: 'outgoing_payment.attempt_failed'
        attempt: number
        error: string
        nextAttemptAt: Date
      },
  /** The sending wallet address, when the caller has it; read otherwise. */
  sender?: WalletAddress,
): Promise<void> {
  sender ??= (await getWalletAddress(trx, { id: row.wallet_address_id }))!
  await recordEvent(trx, { ...event, outgoingPayment: toOutgoingPayment(row), sender })
  if (event.type !== 'outgoing_payment.created' && event.type !== 'outgoing_payment.attempt_failed')
    await queueEndCallout(trx, row, reservationId(row.id))
}
