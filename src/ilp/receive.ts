import { createHash } from 'node:crypto'
import {
  Errors,
  type IlpPrepare,
  type IlpReply,
  isFulfill,
  isIlpReply,
  serializeIlpPrepare,
} from 'ilp-packet'
import { incomingDecision } from '../core-banking/incoming.ts'
import type { Db } from '../db/database.ts'
import type { Deps } from '../deps.ts'
import {
  type CreditError,
  creditIncomingPayment,
  getIncomingPayment,
  type IncomingPayment,
  isOpen,
} from '../incoming-payments/service.ts'
import { assetAccountId } from '../ledger/accounts.ts'
import { createTransfer, findTransfer, type TransferInput } from '../ledger/transfers.ts'
import { isLedgerError } from '../ledger/types.ts'
import type { Peer } from '../peers/service.ts'
import { getWalletAddress, type WalletAddress } from '../wallet-addresses/service.ts'
import { afterPeerDebit } from '../webhooks/thresholds.ts'
import { convertPacketAmount } from './convert.ts'
import type { StreamReceiver } from './stream-receiver.ts'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/**
 * A Prepare for one of our STREAM addresses, from `from`: the incoming payment its address names is
 * credited and the peer's account debited, in one transaction, and only then is the Fulfill
 * returned. Refusals are thrown as ILP errors or returned as STREAM declines; nothing is booked.
 */
export async function receiveLocally(
  deps: Deps,
  stream: StreamReceiver,
  prepare: IlpPrepare,
  from: Peer,
): Promise<IlpReply> {
  const paymentId = stream.paymentId(prepare.destination)
  // Tags are ids we issued; the check keeps anything else away from a uuid column.
  const payment =
    paymentId !== undefined && UUID.test(paymentId)
      ? await getIncomingPayment(deps.db, paymentId)
      : undefined
  if (!payment) throw new Errors.UnreachableError('unknown payment address')
  const sent = BigInt(prepare.amount)
  const booking = bookingId(prepare, from)
  // A packet booked before the payment closed may come again (its HTTP response was lost): it gets
  // its Fulfill again, as the first copy did, and nothing more is booked.
  if (sent > 0n && !isOpen(payment) && !(await findTransfer(deps.db, booking))) {
    throw new Errors.UnreachableError('incoming payment is completed or expired')
  }
  // STREAM reports the amount that arrived in the receiver's asset, probes included: that is how
  // senders measure the exchange rate, so the conversion comes before the reply.
  const received = await convertPacketAmount(deps.rates, sent, from, payment)
  const reply = stream.createReply({ ...prepare, amount: received.toString() })
  if (isIlpReply(reply)) {
    // Fulfilling money that rounds to nothing here would leave the peer's payment unbooked.
    if (sent > 0n && isFulfill(reply)) {
      throw new Errors.InsufficientDestinationAmountError('amount rounds to zero at the receiver')
    }
    return reply
  }
  const wallet = (await getWalletAddress(deps.db, { id: payment.walletAddressId }))!
  if (sent > 0n) {
    // Core banking may refuse the money (compliance): a final reject, so the sender stops.
    const decision = await incomingDecision(deps, payment, wallet.assetId)
    if (!decision.credit) throw new Errors.FinalApplicationError(decision.reason, Buffer.alloc(0))
  }
  const outcome = await book(deps.db, {
    bookingId: booking,
    from,
    payment,
    wallet,
    sent,
    received,
    expiresAt: prepare.expiresAt,
  })
  switch (outcome) {
    case 'completed':
      deps.metrics.incomingCompleted.inc()
      return reply.accept()
    case 'booked':
      return reply.accept()
    case 'expired':
      throw new Errors.TransferTimedOutError('packet expired while it was being credited')
    case 'exceeds_incoming_amount':
      return reply.finalDecline()
    case 'not_payable':
      throw new Errors.UnreachableError('incoming payment is completed or expired')
    case 'peer_out_of_credit':
      throw new Errors.InsufficientLiquidityError('peer has exceeded its credit line')
  }
}

/** The ledger id of a packet's booking, from its bytes and its sender. */
export const bookingId = (prepare: IlpPrepare, from: Peer) =>
  `ilp:${from.id}:${createHash('sha256').update(serializeIlpPrepare(prepare)).digest('base64url')}`

interface Packet {
  /** The first transfer's id: the same packet twice is booked once. */
  bookingId: string
  from: Peer
  payment: IncomingPayment
  wallet: WalletAddress
  /** In the peer's asset. */
  sent: bigint
  /** In the incoming payment's asset. */
  received: bigint
  expiresAt: Date
}

/** `completed`: booked, and the packet completed the incoming payment. */
type BookOutcome = 'booked' | 'completed' | CreditError | 'peer_out_of_credit' | 'expired'

/** Thrown inside the transaction to roll back the credit, carrying what to answer. */
class Rollback extends Error {
  constructor(readonly outcome: BookOutcome) {
    super(outcome)
  }
}

/**
 * Credits the incoming payment and moves the money from the peer's account to the receiver's wallet
 * (through the two assets' settlement accounts when they differ). Transfer ids derive from the
 * packet, so the same packet posted twice, here or on another process, is booked once.
 */
async function book(db: Db, p: Packet): Promise<BookOutcome> {
  const id = p.bookingId
  const reference = `incoming_payment:${p.payment.id}`
  const transfers: TransferInput[] =
    p.from.assetId === p.wallet.assetId
      ? [
          {
            id,
            debitAccountId: p.from.ledgerAccountId,
            creditAccountId: p.wallet.ledgerAccountId,
            amount: p.sent,
            reference,
          },
        ]
      : [
          {
            id,
            debitAccountId: p.from.ledgerAccountId,
            creditAccountId: await assetAccountId(db, p.from.assetId, 'settlement'),
            amount: p.sent,
            reference,
          },
          {
            id: `${id}:in`,
            debitAccountId: await assetAccountId(db, p.wallet.assetId, 'settlement'),
            creditAccountId: p.wallet.ledgerAccountId,
            amount: p.received,
            reference,
          },
        ]
  try {
    return await db.transaction().execute(async (trx) => {
      // The credit comes first: it locks the payment's row, as local settlement does, before the
      // accounts' rows, so the two never wait on each other in opposite orders.
      const credited = await creditIncomingPayment(trx, p.payment.id, p.received)
      if (typeof credited === 'string') {
        // A copy of this packet may have been booked while we waited for the payment's row.
        return (await findTransfer(trx, id)) ? 'booked' : credited
      }
      for (const transfer of transfers) {
        const t = await createTransfer(trx, transfer)
        if (isLedgerError(t)) {
          if (t.code === 'exceeds_limit') throw new Rollback('peer_out_of_credit')
          throw new Error(`ILP transfer ${transfer.id} refused: ${t.message}`)
        }
        // A copy of this packet was booked first: undo this credit and fulfill as that one did.
        if (t.replayed) throw new Rollback('booked')
      }
      // A new packet whose expiry passed while it waited here is refused, not credited: its
      // sender has stopped waiting for it. (A repeat of one already booked was answered above.)
      if (Date.now() >= p.expiresAt.getTime()) throw new Rollback('expired')
      await afterPeerDebit(trx, p.from, p.sent)
      return credited.completedAt !== null ? 'completed' : 'booked'
    })
  } catch (err) {
    if (err instanceof Rollback) return err.outcome
    throw err
  }
}
