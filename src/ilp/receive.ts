import { createHash } from 'node:crypto'
import {
  Errors,
  type IlpPrepare,
  type IlpReply,
  isFulfill,
  isIlpReply,
  serializeIlpPrepare,
} from 'ilp-packet'
import { type RawBuilder, sql } from 'kysely'
import { incomingDecision } from '../core-banking/incoming.ts'
import type { Db } from '../db/database.ts'
import { LAST_STATEMENT } from '../db/pipelined-postgres.ts'
import type { AccountKind, BalanceRule } from '../db/schema.ts'
import type { Deps } from '../deps.ts'
import {
  type CreditError,
  creditIncomingPayment,
  creditPaymentsCte,
  getIncomingPayment,
  type LockedForCredit,
  lockForCreditSql,
  recordCompletions,
} from '../incoming-payments/service.ts'
import { assetAccountId } from '../ledger/accounts.ts'
import {
  createTransfer,
  existingTransfersSql,
  findTransfer,
  lockAccountsSql,
  planTransferGroups,
  type TransferInput,
} from '../ledger/transfers.ts'
import { type Account, isLedgerError } from '../ledger/types.ts'
import { groupCommit } from '../lib/group-commit.ts'
import { existingPeersSql, type Peer } from '../peers/service.ts'
import { getWalletAddress } from '../wallet-addresses/service.ts'
import type { NewEvent } from '../webhooks/events.ts'
import { recordEventsCtes } from '../webhooks/outbox.ts'
import { afterPeerDebit, liquidityLowEvent } from '../webhooks/thresholds.ts'
import { convertPacketAmount } from './convert.ts'
import { createPaymentFactsCache, type PaymentFactsCache } from './payment-facts.ts'
import type { StreamReceiver } from './stream-receiver.ts'

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

/** Answers a Prepare for one of our STREAM addresses (`receiveLocally`, with this process's caches). */
export type LocalReceiver = (prepare: IlpPrepare, from: Peer) => Promise<IlpReply>

export function createLocalReceiver(deps: Deps, stream: StreamReceiver): LocalReceiver {
  const book = createBooker(deps)
  const payments = createPaymentFactsCache(deps.db)
  return (prepare, from) => receiveLocally(deps, stream, book, payments, prepare, from)
}

/**
 * A Prepare for one of our STREAM addresses, from `from`: the incoming payment its address names is
 * credited and the peer's account debited, in one transaction, and only then is the Fulfill
 * returned. Refusals are thrown as ILP errors or returned as STREAM declines; nothing is booked.
 * Nothing is read before the booking but what never changes (`payments`): the booking decides,
 * under the payment's lock, whether it is still open.
 */
async function receiveLocally(
  deps: Deps,
  stream: StreamReceiver,
  book: Booker,
  payments: PaymentFactsCache,
  prepare: IlpPrepare,
  from: Peer,
): Promise<IlpReply> {
  const paymentId = stream.paymentId(prepare.destination)
  // Tags are ids we issued; the check keeps anything else away from a uuid column.
  const payment =
    paymentId !== undefined && UUID.test(paymentId) ? await payments.get(paymentId) : undefined
  if (!payment) throw new Errors.UnreachableError('unknown payment address')
  const sent = BigInt(prepare.amount)
  const booking = bookingId(prepare, from)
  // A packet booked before the payment closed may come again (its HTTP response was lost): it gets
  // its Fulfill again, as the first copy did, and nothing more is booked. (A payment closed by
  // another process, unseen here, is refused by the booking with the same error.)
  const closed = payment.closed || payment.expiresAt.getTime() <= Date.now()
  if (sent > 0n && closed && !(await findTransfer(deps.db, booking))) {
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
  if (sent > 0n && (await deps.coreBanking.hooks.enabled())) {
    // Core banking may refuse the money (compliance): a final reject, so the sender stops. Asked
    // once per incoming payment; without hooks the hot path reads nothing more.
    const ip = (await getIncomingPayment(deps.db, payment.id))!
    const wallet = (await getWalletAddress(deps.db, { id: payment.walletAddressId }))!
    const decision = await incomingDecision(deps, ip, wallet.assetId)
    if (!decision.credit) throw new Errors.FinalApplicationError(decision.reason, Buffer.alloc(0))
  }
  const outcome = await book({
    bookingId: booking,
    from,
    payment,
    wallet: payment.wallet,
    sent,
    received,
    expiresAt: prepare.expiresAt,
  })
  switch (outcome) {
    case 'completed':
      payment.closed = true
      deps.metrics.incomingCompleted.inc()
      return reply.accept()
    case 'booked':
      return reply.accept()
    case 'expired':
      throw new Errors.TransferTimedOutError('packet expired while it was being credited')
    case 'exceeds_incoming_amount':
      return reply.finalDecline()
    case 'not_payable':
      payment.closed = true
      throw new Errors.UnreachableError('incoming payment is completed or expired')
    case 'peer_out_of_credit':
      throw new Errors.InsufficientLiquidityError('peer has exceeded its credit line')
    case 'unknown_peer':
      throw new Errors.UnreachableError('peer removed')
  }
}

/** The ledger id of a packet's booking, from its bytes and its sender. */
export const bookingId = (prepare: IlpPrepare, from: Peer) =>
  `ilp:${from.id}:${createHash('sha256').update(serializeIlpPrepare(prepare)).digest('base64url')}`

export interface Packet {
  /** The first transfer's id: the same packet twice is booked once. */
  bookingId: string
  from: Peer
  /** The incoming payment credited (whose owner's wallet receives the money). */
  payment: { id: string }
  /** The payment owner's wallet: where the money goes. */
  wallet: { ledgerAccountId: string; assetId: string }
  /** In the peer's asset. */
  sent: bigint
  /** In the incoming payment's asset. */
  received: bigint
  expiresAt: Date
}

/** `completed`: booked, and the packet completed the incoming payment. */
type BookOutcome =
  | 'booked'
  | 'completed'
  | CreditError
  | 'peer_out_of_credit'
  | 'expired'
  | 'unknown_peer'

/** Books a packet, with the others that arrive meanwhile; resolves once its booking committed. */
export type Booker = (p: Packet) => Promise<BookOutcome>

/** Up to this many packets share a transaction: a few milliseconds of work for PostgreSQL. */
const MAX_BATCH = 256

/**
 * The process's packet booker: group commit (src/lib/group-commit.ts) over `bookBatch`, and the
 * one-packet `book` when a batch fails as a whole (a deadlock with a local payment, a packet the
 * batch did not foresee), so that each packet still gets its own answer.
 */
export function createBooker(deps: Deps): Booker {
  return groupCommit<Packet, BookOutcome>({
    batch: (packets) => bookBatch(deps.db, packets),
    one: (p) => book(deps.db, p),
    maxBatch: MAX_BATCH,
    onBatchError: (err, size) =>
      deps.logger.warn({ err, size }, 'ILP batch booking failed; booking its packets one by one'),
  })
}

/**
 * Books packets in one transaction, each exactly once, as `book` would one by one in arrival
 * order: the incoming payments' rows are locked first, packets already booked (repeats) are
 * answered as booked, then each packet in turn is checked against its payment's room and the
 * ledger's running totals (a peer over its credit line) as the packets before it left them, and
 * takes room and credit only if both take it (what is refused, the rest still goes); each payment
 * and account is then updated once with the sum. Every packet's outcome holds once the transaction commits. Two round trips
 * whatever the batch's size (BEGIN with the locks and reads; the writes, the peers' low-liquidity
 * events among them, with COMMIT); more only when a refusal needs a second look or a payment
 * completes (its event, and COMMIT, after the writes).
 */
async function bookBatch(db: Db, packets: Packet[]): Promise<BookOutcome[]> {
  return db.transaction().execute(async (trx) => {
    // Every packet's transfers, before anything is locked: their accounts are locked with the
    // payments, in one round trip.
    const legs = await Promise.all(packets.map((p) => transfersOf(trx, p)))
    const { payments, booked, peers, accounts } = await lockBatch(trx, packets, legs)
    const plan = planTransferGroups(accounts)
    const credits = new Map<string, bigint>()
    // By peer id: each packet carries its own copy of the peer, and the threshold check needs the
    // batch's whole debit of it at once.
    const debits = new Map<string, { peer: Peer; amount: bigint }>()
    const last = new Map<string, number>()
    const firstOf = new Map<string, number>()
    const now = Date.now()
    const outcomes = packets.map((p, i): BookOutcome | undefined => {
      // The same packet twice in one batch: the copy is answered as the first (below).
      if (firstOf.has(p.bookingId)) return undefined
      firstOf.set(p.bookingId, i)
      if (booked.has(p.bookingId)) return 'booked'
      // Found by a token kept for a few seconds (src/peers/token-cache.ts): no money for a peer
      // removed meanwhile.
      if (!peers.has(p.from.id)) return 'unknown_peer'
      // A new packet whose expiry passed while it waited is refused: its sender stopped waiting.
      if (now >= p.expiresAt.getTime()) return 'expired'
      const payment = payments.get(p.payment.id)
      if (!payment?.open) return 'not_payable'
      // The payment's room, then the ledger, packet by packet, as `book` does: a packet the ledger
      // refuses (its peer over its credit line) takes no room, so a later packet that fits what is
      // left is booked, as it would be alone. (Taking the room before the ledger decided declined
      // it for good, `exceeds_incoming_amount`, which stops its sender.)
      if (payment.room !== null && p.received > payment.room) return 'exceeds_incoming_amount'
      const result = plan.take(legs[i]!)
      if (result !== true) {
        if (result.code !== 'exceeds_limit')
          throw new Error(`ILP transfer refused: ${result.message}`)
        return 'peer_out_of_credit'
      }
      if (payment.room !== null) payment.room -= p.received
      credits.set(p.payment.id, (credits.get(p.payment.id) ?? 0n) + p.received)
      const debit = debits.get(p.from.id) ?? { peer: p.from, amount: 0n }
      debit.amount += p.sent
      debits.set(p.from.id, debit)
      last.set(p.payment.id, i)
      return 'booked'
    })
    await refusalsStillHold(trx, packets, outcomes)
    const posting = plan.posting()
    if (posting) {
      // The peers' `peer.liquidity_low`, decided on the accounts as the plan leaves them (locked).
      const events: NewEvent[] = []
      for (const { peer, amount } of debits.values()) {
        const event = await liquidityLowEvent(
          trx,
          peer,
          amount,
          () => accounts.get(peer.ledgerAccountId)!,
        )
        if (event) events.push(event)
      }
      // A payment this batch completes needs its event written after its credit, from the row as
      // credited: a statement more. Otherwise the write is the transaction's last, and COMMIT goes
      // with it (`room` is what is left after every packet booked: 0 when one completed it).
      const completing = [...credits.keys()].some((id) => payments.get(id)!.room === 0n)
      const completed = await writeBatch(trx, posting, credits, events, !completing)
      for (const id of completed) outcomes[last.get(id)!] = 'completed'
      await recordCompletions(trx, completed)
    }
    return packets.map((p, i) => {
      const own = outcomes[i]
      if (own !== undefined) return own
      // A copy of a packet earlier in this batch gets its Fulfill if that one was booked.
      const first = outcomes[firstOf.get(p.bookingId)!]!
      return first === 'completed' ? 'booked' : first
    })
  })
}

/**
 * One statement: the batch's incoming payments locked, then their transfers' accounts (rows in
 * this order, as everywhere: `UNION ALL` runs its parts in order); which packets are booked
 * already; which peers exist.
 */
async function lockBatch(trx: Db, packets: Packet[], legs: TransferInput[][]) {
  const accountIds = new Set(legs.flat().flatMap((t) => [t.debitAccountId, t.creditAccountId]))
  const { rows } = await sql<{
    what: 'payment' | 'account' | 'booked' | 'peer'
    id: string
    open: boolean
    room: bigint | null
    asset_id: string
    kind: AccountKind
    rule: BalanceRule
    debits_posted: bigint
    credits_posted: bigint
    debits_pending: bigint
    credits_pending: bigint
    debit_limit: bigint | null
  }>`
    WITH payments AS (${lockForCreditSql([...new Set(packets.map((p) => p.payment.id))])}),
         accounts AS (${lockAccountsSql([...accountIds])})
    SELECT 'payment' AS what, id, open, room, NULL AS asset_id, NULL AS kind, NULL AS rule,
           NULL::numeric AS debits_posted, NULL::numeric AS credits_posted,
           NULL::numeric AS debits_pending, NULL::numeric AS credits_pending,
           NULL::numeric AS debit_limit
      FROM payments
    UNION ALL
    SELECT 'account', id::text, NULL, NULL, asset_id::text, kind, rule, debits_posted,
           credits_posted, debits_pending, credits_pending, debit_limit
      FROM accounts
    UNION ALL
    SELECT 'booked', id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
      FROM (${existingTransfersSql(packets.map((p) => p.bookingId))}) b
    UNION ALL
    SELECT 'peer', id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
      FROM (${existingPeersSql([...new Set(packets.map((p) => p.from.id))])}) x`.execute(trx)
  const payments = new Map<string, LockedForCredit>()
  const accounts = new Map<string, Account>()
  const booked = new Set<string>()
  const peers = new Set<string>()
  for (const r of rows) {
    if (r.what === 'payment') payments.set(r.id, { id: r.id, open: r.open, room: r.room })
    else if (r.what === 'account')
      accounts.set(r.id, {
        id: r.id,
        assetId: r.asset_id,
        kind: r.kind,
        rule: r.rule,
        debitsPosted: r.debits_posted,
        creditsPosted: r.credits_posted,
        debitsPending: r.debits_pending,
        creditsPending: r.credits_pending,
        debitLimit: r.debit_limit,
      })
    else (r.what === 'booked' ? booked : peers).add(r.id)
  }
  return { payments, booked, peers, accounts }
}

/**
 * The lock statement's list of booked packets comes from its snapshot, taken before it waited for
 * the payments' locks, while the payments' rows it returns are the latest: a copy of a packet that
 * another process booked meanwhile (and with it completed or filled the payment) would be refused
 * here although its first copy got a Fulfill. Refusals are rare, so only then is the question asked
 * again, in a statement of its own, whose snapshot sees every booking into these payments (each
 * takes a payment's lock, which this transaction holds now). A refused packet found booked throws:
 * the batch is booked again one by one.
 */
async function refusalsStillHold(
  trx: Db,
  packets: Packet[],
  outcomes: (BookOutcome | undefined)[],
): Promise<void> {
  const refused = packets.filter((_, i) => {
    const o = outcomes[i]
    return o !== undefined && o !== 'booked' && o !== 'completed'
  })
  if (refused.length === 0) return
  const { rows } = await existingTransfersSql(refused.map((p) => p.bookingId)).execute(trx)
  if (rows.length > 0) throw new Error('a refused packet was booked meanwhile by another process')
}

/**
 * One statement: the planned transfers, the payments' credits and `events`. Anything short of all
 * of them (an id booked meanwhile elsewhere, a payment that no longer takes its sum) fails the
 * statement, which rolls the batch back for the one-by-one path; so it may carry the transaction's
 * COMMIT (`last`). Returns the ids of the payments it completed.
 */
async function writeBatch(
  trx: Db,
  posting: RawBuilder<unknown>,
  credits: Map<string, bigint>,
  events: NewEvent[],
  last: boolean,
): Promise<string[]> {
  const { rows } = await sql<{ id: string; completed: boolean }>`
    ${last ? LAST_STATEMENT : sql``}
    WITH ${posting}, ${creditPaymentsCte(credits)}
         ${events.length > 0 ? sql`, ${recordEventsCtes(events)}` : sql``}
    SELECT id, completed FROM credited_payments
    UNION ALL
    SELECT NULL, NULL
     WHERE NOT statement_check((SELECT count(*) FROM credited_payments) = ${credits.size},
                               'a payment of the batch no longer takes its sum')`.execute(trx)
  return rows.filter((r) => r.completed).map((r) => r.id)
}

/** The packet's transfers: peer to wallet, or through the two assets' settlement accounts. */
async function transfersOf(db: Db, p: Packet): Promise<TransferInput[]> {
  const { wallet } = p
  const id = p.bookingId
  const reference = `incoming_payment:${p.payment.id}`
  return p.from.assetId === wallet.assetId
    ? [
        {
          id,
          debitAccountId: p.from.ledgerAccountId,
          creditAccountId: wallet.ledgerAccountId,
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
          debitAccountId: await assetAccountId(db, wallet.assetId, 'settlement'),
          creditAccountId: wallet.ledgerAccountId,
          amount: p.received,
          reference,
        },
      ]
}

/** Thrown inside the transaction to roll back the credit, carrying what to answer. */
class Rollback extends Error {
  constructor(readonly outcome: BookOutcome) {
    super(outcome)
  }
}

/**
 * Credits the incoming payment and moves the money from the peer's account to the receiver's wallet
 * (through the two assets' settlement accounts when they differ), for one packet alone: the
 * fallback of a failed batch. Transfer ids derive from the packet, so the same packet posted twice,
 * here or on another process, is booked once.
 */
async function book(db: Db, p: Packet): Promise<BookOutcome> {
  const id = p.bookingId
  const transfers = await transfersOf(db, p)
  try {
    return await db.transaction().execute(async (trx) => {
      if ((await existingPeersSql([p.from.id]).execute(trx)).rows.length === 0)
        return 'unknown_peer'
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
