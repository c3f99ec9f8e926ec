import { deserializeIlpPrepare, isFulfill } from 'ilp-packet'
import { sql } from 'kysely'
import type { Deps } from '../deps.ts'
import { sendPrepare } from '../ilp/http-client.ts'
import { peerSendData, type SendTracker } from '../ilp/outgoing.ts'
import type { IlpTerms } from '../ilp/pay-sender.ts'
import { assetAccountId } from '../ledger/accounts.ts'
import { createTransfer, postTransfer, voidTransfer } from '../ledger/transfers.ts'
import { isLedgerError } from '../ledger/types.ts'
import { getPeer, peerForDestination } from '../peers/service.ts'
import { resolveReceiver } from '../quotes/receiver.ts'
import { getWalletAddress } from '../wallet-addresses/service.ts'
import { reservationId } from './service.ts'

interface Claimed {
  id: string
  walletAddressId: string
  quoteId: string
  debitAmount: bigint
  feeAmount: bigint
  /** Attempts including this one. */
  attempts: number
  /** An earlier attempt died while sending. */
  interrupted: boolean
}

/**
 * Failures worth another attempt when nothing was sent yet: the path went quiet (pay retries
 * T-rejects itself until its idle timeout). F and R rejects (ConnectorError) are final.
 */
const TRANSIENT = new Set(['IdleTimeout', 'EstablishmentFailed', 'RateProbeFailed'])
/** Attempts before a payment that keeps failing transiently is given up. */
const MAX_ATTEMPTS = 5

const fromJson = (t: Record<string, string | string[]>): IlpTerms => ({
  maxSourceAmount: BigInt(t.maxSourceAmount as string),
  minDeliveryAmount: BigInt(t.minDeliveryAmount as string),
  maxPacketAmount: BigInt(t.maxPacketAmount as string),
  minExchangeRate: (t.minExchangeRate as string[]).map(BigInt) as [bigint, bigint],
  lowEstimatedExchangeRate: (t.lowEstimatedExchangeRate as string[]).map(BigInt) as [
    bigint,
    bigint,
  ],
  highEstimatedExchangeRate: (t.highEstimatedExchangeRate as string[]).map(BigInt) as [
    bigint,
    bigint,
  ],
})

/**
 * Pays a payment to another ASE over Interledger, outside any database transaction (packets take
 * network time). Every packet's amount is recorded in `sent_amount` before it leaves and taken back
 * if it is rejected; when STREAM is done, one transaction posts what was sent (plus the fee, on
 * success) from the reservation to the peer's account and releases the rest. A payment whose
 * earlier attempt died mid-way is not sent again: it fails with what was recorded.
 */
export async function settleRemotely(
  deps: Deps,
  p: Claimed,
): Promise<'completed' | 'failed' | 'retrying'> {
  const { db } = deps
  const quote = await db
    .selectFrom('quotes')
    .selectAll()
    .where('id', '=', p.quoteId)
    .executeTakeFirstOrThrow()
  const terms = fromJson(quote.ilp_terms as Record<string, string | string[]>)
  // Where the money went (for the peer's account): the receiver's address as its ASE gave it.
  const destination = (await deps.remoteReceivers.get(quote.receiver))?.ilp?.ilpAddress
  if (p.interrupted) {
    await reconcile(deps, p.id)
    return finish(deps, p, destination, false, 'interrupted while sending')
  }
  const receiver = await resolveReceiver(deps, quote.receiver)
  if (!receiver?.ilp) return finish(deps, p, destination, false, 'receiver closed')
  const sender = (await getWalletAddress(db, { id: p.walletAddressId }))!
  const sendData = peerSendData(deps, sender, packetTracker(deps, p.id))
  const result = await deps.ilpSender.pay({
    sendData,
    destination: { ...receiver.ilp, asset: receiver.asset },
    terms,
  })
  const delivered = !result.error && result.amountDelivered >= terms.minDeliveryAmount
  if (
    !delivered &&
    result.amountSent === 0n &&
    TRANSIENT.has(result.error ?? '') &&
    p.attempts < MAX_ATTEMPTS
  ) {
    // Nothing moved: try again later, with backoff, before the quote's terms go stale.
    await db
      .updateTable('outgoing_payments')
      .set({
        sending_since: null,
        next_attempt_at: new Date(Date.now() + 2 ** p.attempts * 1000),
        failure: result.error ?? null,
      })
      .where('id', '=', p.id)
      .execute()
    return 'retrying'
  }
  const failure = result.error ?? (delivered ? undefined : 'delivered too little')
  return finish(deps, p, receiver.ilp.ilpAddress, delivered, failure)
}

/** Records every packet of a payment: counted before it leaves, forgotten if rejected. */
function packetTracker(deps: Deps, paymentId: string): SendTracker {
  const { db } = deps
  const adjust = (trx: Deps['db'], delta: bigint) =>
    trx
      .updateTable('outgoing_payments')
      .set({ sent_amount: sql`sent_amount + ${delta}`, updated_at: sql`now()` })
      .where('id', '=', paymentId)
      .execute()
  return {
    sending: (packet) =>
      db.transaction().execute(async (trx) => {
        await trx
          .insertInto('outgoing_packets')
          .values({
            id: packet.id,
            payment_id: paymentId,
            peer_id: packet.peerId,
            prepare: packet.prepare,
            amount: packet.amount,
          })
          .execute()
        await adjust(trx, packet.amount)
      }),
    fulfilled: async (packet) => {
      await db
        .updateTable('outgoing_packets')
        .set({ fulfilled: true })
        .where('id', '=', packet.id)
        .execute()
    },
    rejected: (packet) => forget(db, paymentId, packet.id, packet.amount),
  }
}

async function forget(
  db: Deps['db'],
  paymentId: string,
  packetId: string,
  amount: bigint,
): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const gone = await trx
      .deleteFrom('outgoing_packets')
      .where('id', '=', packetId)
      .executeTakeFirst()
    if (gone.numDeletedRows === 0n) return
    await trx
      .updateTable('outgoing_payments')
      .set({ sent_amount: sql`sent_amount - ${amount}`, updated_at: sql`now()` })
      .where('id', '=', paymentId)
      .execute()
  })
}

/**
 * After a crash, packets counted as sent may or may not have arrived. Each is sent again exactly
 * as it was: the receiving ASE books a packet once and answers a repeat with its Fulfill (even
 * expired), so a Fulfill means it arrived and anything else means it did not.
 */
async function reconcile(deps: Deps, paymentId: string): Promise<void> {
  const { db } = deps
  const open = await db
    .selectFrom('outgoing_packets')
    .selectAll()
    .where('payment_id', '=', paymentId)
    .where('fulfilled', '=', false)
    .execute()
  for (const packet of open) {
    const peer = await getPeer(db, { id: packet.peer_id })
    const own = deps.config.openPayments.ilpAddress
    const reply =
      peer && (await sendPrepare(peer, deserializeIlpPrepare(packet.prepare), own, packet.prepare))
    if (reply && isFulfill(reply)) {
      await db
        .updateTable('outgoing_packets')
        .set({ fulfilled: true })
        .where('id', '=', packet.id)
        .execute()
    } else {
      await forget(db, paymentId, packet.id, packet.amount)
    }
  }
}

async function finish(
  deps: Deps,
  p: Claimed,
  destination: string | undefined,
  delivered: boolean,
  failure?: string,
): Promise<'completed' | 'failed'> {
  const { db } = deps
  const peer = destination === undefined ? undefined : await peerForDestination(db, destination)
  return db.transaction().execute(async (trx) => {
    const row = await trx
      .selectFrom('outgoing_payments as o')
      .select(['o.sent_amount'])
      .where('o.id', '=', p.id)
      .forUpdate()
      .executeTakeFirstOrThrow()
    const sent = row.sent_amount
    const fee = delivered ? p.feeAmount : 0n
    const reservation = reservationId(p.id)
    const resolved =
      sent + fee > 0n
        ? await postTransfer(trx, reservation, sent + fee)
        : await voidTransfer(trx, reservation)
    if (isLedgerError(resolved)) throw new Error(`reservation of ${p.id}: ${resolved.message}`)
    const sender = (await getWalletAddress(trx, { id: p.walletAddressId }))!
    const clearing = await assetAccountId(trx, sender.assetId, 'outgoing')
    if (sent > 0n) {
      if (!peer) throw new Error(`no peer account for the payment ${p.id}`)
      await move(trx, `outgoing:${p.id}:deliver`, clearing, peer.ledgerAccountId, sent)
    }
    if (fee > 0n)
      await move(
        trx,
        `outgoing:${p.id}:fee`,
        clearing,
        await assetAccountId(trx, sender.assetId, 'fees'),
        fee,
      )
    // Its packets' fate is settled in `sent_amount` now.
    await trx.deleteFrom('outgoing_packets').where('payment_id', '=', p.id).execute()
    await trx
      .updateTable('outgoing_payments')
      .set({
        state: delivered ? 'completed' : 'failed',
        failure: failure ?? null,
        next_attempt_at: null,
        sending_since: null,
        updated_at: sql`now()`,
      })
      .where('id', '=', p.id)
      .execute()
    return delivered ? 'completed' : 'failed'
  })
}

async function move(
  trx: Deps['db'],
  id: string,
  debitAccountId: string,
  creditAccountId: string,
  amount: bigint,
) {
  const t = await createTransfer(trx, {
    id,
    debitAccountId,
    creditAccountId,
    amount,
    reference: id,
  })
  if (isLedgerError(t)) throw new Error(`transfer ${id} failed: ${t.message}`)
}
