import { randomUUID } from 'node:crypto'
import type { Selectable } from 'kysely'
import type { Db } from '../db/database.ts'
import type { OutgoingPaymentsTable } from '../db/schema.ts'
import type { Deps } from '../deps.ts'
import { findTransfer } from '../ledger/transfers.ts'
import { walletAddressUrl } from '../wallet-addresses/urls.ts'
import { askApproval, type Decision } from './callout.ts'

/** What core banking is asked to approve: a payment about to be created (and reserved). */
export interface PaymentToApprove {
  /** The id the payment will have if it is created. */
  id: string
  walletAddress: {
    id: string
    path: string
    assetId: string
    assetCode: string
    assetScale: number
  }
  receiver: string
  debitAmount: bigint
  feeAmount: bigint
  receiveAmount: bigint
  receiveAsset: { code: string; scale: number }
  metadata?: Record<string, unknown>
}

/**
 * Asks the hook of the sender's asset, if it has one, to approve an outgoing payment before
 * anything is reserved; undefined when core banking is off for the asset. Outside any transaction.
 */
export async function approveOutgoing(
  deps: Deps,
  p: PaymentToApprove,
): Promise<Decision | undefined> {
  const hook = await deps.coreBanking.hooks.hookFor(p.walletAddress.assetId)
  if (!hook) return undefined
  const wa = p.walletAddress
  return askApproval(deps, hook, 'outgoing', {
    id: p.id,
    type: 'outgoing_payment.approve',
    timestamp: new Date(),
    data: {
      outgoingPayment: {
        id: `${deps.config.openPaymentsUrl}/outgoing-payments/${p.id}`,
        paymentId: p.id,
        walletAddress: walletAddressUrl(deps.config, wa.path),
        walletAddressId: wa.id,
        receiver: p.receiver,
        debitAmount: amount(p.debitAmount, wa.assetCode, wa.assetScale),
        feeAmount: amount(p.feeAmount, wa.assetCode, wa.assetScale),
        receiveAmount: amount(p.receiveAmount, p.receiveAsset.code, p.receiveAsset.scale),
        ...(p.metadata !== undefined && { metadata: p.metadata }),
      },
    },
  })
}

const amount = (value: bigint, assetCode: string, assetScale: number) => ({
  value: value.toString(),
  assetCode,
  assetScale,
})

/** Remembers, in the payment's creation transaction, that core banking approved it. */
export async function recordApproval(trx: Db, paymentId: string, assetId: string): Promise<void> {
  await trx
    .insertInto('core_banking_approvals')
    .values({ payment_id: paymentId, asset_id: assetId })
    .execute()
}

/**
 * Queues the post or release callout of an approved payment that ended (completed, failed or
 * cancelled), in the transaction that ended it: `post` with what left the sender's wallet (the
 * reservation's posted amount, which may be less than approved), `release` when nothing did.
 * One per payment (a unique payment id); nothing for a payment core banking did not approve.
 */
export async function queueEndCallout(
  trx: Db,
  row: Selectable<OutgoingPaymentsTable>,
  reservationId: string,
): Promise<void> {
  const approval = await trx
    .selectFrom('core_banking_approvals')
    .select('asset_id')
    .where('payment_id', '=', row.id)
    .executeTakeFirst()
  if (!approval) return
  const reservation = await findTransfer(trx, reservationId)
  const posted = reservation?.state === 'posted' ? (reservation.postedAmount ?? 0n) : 0n
  await insertCallout(trx, {
    paymentId: row.id,
    assetId: approval.asset_id,
    kind: posted > 0n ? 'post' : 'release',
    data: {
      paymentId: row.id,
      state: row.state,
      ...(row.failure !== null && { failure: row.failure }),
      approvedAmount: row.debit_amount.toString(),
      postAmount: posted.toString(),
      releaseAmount: (row.debit_amount - posted).toString(),
    },
  })
}

/**
 * Queues the release of an approval whose payment was then not created (the reservation's checks
 * refused it: balance, grant limits, a quote used meanwhile), in that refusal's transaction.
 */
export async function queueUnusedApproval(
  trx: Db,
  p: { id: string; assetId: string; debitAmount: bigint; refusal: string },
): Promise<void> {
  await insertCallout(trx, {
    paymentId: p.id,
    assetId: p.assetId,
    kind: 'release',
    data: {
      paymentId: p.id,
      state: 'not_created',
      failure: p.refusal,
      approvedAmount: p.debitAmount.toString(),
      postAmount: '0',
      releaseAmount: p.debitAmount.toString(),
    },
  })
}

async function insertCallout(
  trx: Db,
  c: { paymentId: string; assetId: string; kind: 'post' | 'release'; data: object },
) {
  await trx
    .insertInto('core_banking_callouts')
    .values({
      id: randomUUID(),
      payment_id: c.paymentId,
      asset_id: c.assetId,
      kind: c.kind,
      data: JSON.stringify(c.data),
      next_attempt_at: new Date(),
    })
    .onConflict((oc) => oc.column('payment_id').doNothing())
    .execute()
}
