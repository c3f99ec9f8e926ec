import { deserializeIlpPrepare, Errors, isFulfill } from 'ilp-packet'
import { sql } from 'kysely'
import { prepared } from '../db/database.ts'
import { sqlState } from '../db/errors.ts'
import type { Deps } from '../deps.ts'
import { fulfills } from '../ilp/forward.ts'
import { sendPrepare } from '../ilp/http-client.ts'
import { peerSendData, type SendTracker } from '../ilp/outgoing.ts'
import type { IlpTerms } from '../ilp/sender.ts'
import { assetAccountId } from '../ledger/accounts.ts'
import { createTransfer, postTransfer, voidTransfer } from '../ledger/transfers.ts'
import { isLedgerError } from '../ledger/types.ts'
import { getPeer } from '../peers/service.ts'
import { resolveReceiver } from '../quotes/receiver.ts'
import { getWalletAddress } from '../wallet-addresses/service.ts'
import { type Claim, ClaimLost, held, keepLease, type Lease } from './claim.ts'
import { recordPaymentEvent } from './events.ts'
import { reservationId } from './service.ts'

interface Claimed {
  id: string
  walletAddressId: string
  quoteId: string
  debitAmount: bigint
  feeAmount: bigint
  /** Attempts including this one: also this attempt's claim on the payment (claim.ts). */
  attempts: number
  /** An earlier attempt died while sending. */
  interrupted: boolean
  /** How STREAM ended, when an earlier attempt got that far but could not book it. */
  outcome?: Outcome | undefined
}

/**
 * Failures worth another attempt when nothing was sent yet: the path went quiet (pay retries
 * T-rejects itself until its idle timeout). F and R rejects (ConnectorError) are final.
 */
const TRANSIENT = new Set(['IdleTimeout', 'EstablishmentFailed', 'RateProbeFailed'])
/** Attempts before a payment that keeps failing transiently is given up. */
const MAX_ATTEMPTS = 5

const fromJson = (t: Record<string, string | string[]>): IlpTerms => ({
  ...(t.paymentType && { paymentType: t.paymentType as IlpTerms['paymentType'] }),
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

/** How a STREAM payment ended, recorded before it is booked. */
interface Outcome {
  delivered: boolean
  failure?: string | undefined
}

/**
 * Pays a payment to another ASE over Interledger, outside any database transaction (packets take
 * network time). Every packet's amount is recorded before it leaves and taken back if it is
 * rejected; when STREAM is done, its outcome is recorded and one transaction books what the
 * fulfilled packets carried. A payment whose earlier attempt died mid-way is not sent again: it
 * fails with what was recorded. A payment whose booking failed is booked again from its record.
 *
 * The attempt holds the payment by its claim (claim.ts), renewed every third of `leaseMs` while it
 * works. Each of its writes is fenced by the claim: once another attempt has taken the payment
 * over, this one sends no further packet and books nothing (`superseded`).
 */
export async function settleRemotely(
  deps: Deps,
  p: Claimed,
  leaseMs: number,
): Promise<'completed' | 'failed' | 'retrying' | 'superseded'> {
  const claim = { paymentId: p.id, attempt: p.attempts }
  const lease = keepLease(deps, claim, leaseMs)
  try {
    return await attempt(deps, p, claim, lease)
  } catch (err) {
    // The new holder owns the payment, its packets and its booking: nothing is left to do here.
    if (err instanceof ClaimLost || lease.signal.aborted) return 'superseded'
    throw err
  } finally {
    await lease.stop()
  }
}

async function attempt(
  deps: Deps,
  p: Claimed,
  claim: Claim,
  lease: Lease,
): Promise<'completed' | 'failed' | 'retrying'> {
  const { db } = deps
  if (p.outcome) return settle(deps, p, claim, lease, p.outcome)
  if (p.interrupted)
    return settle(
      deps,
      p,
      claim,
      lease,
      await record(db, claim, { delivered: false, failure: 'interrupted while sending' }),
    )
  const quote = await db
    .selectFrom('quotes')
    .selectAll()
    .where('id', '=', p.quoteId)
    .executeTakeFirstOrThrow()
  const terms = fromJson(quote.ilp_terms as Record<string, string | string[]>)
  // Read afresh: what the receiver still accepts now caps the payment, and what it had received
  // before is what a crash's in-flight packets are later told apart by.
  const receiver = await resolveReceiver(deps, quote.receiver, { fresh: true })
  if (!receiver?.ilp)
    return settle(
      deps,
      p,
      claim,
      lease,
      await record(db, claim, { delivered: false, failure: 'receiver closed' }),
    )
  await fenced(
    claim,
    db
      .updateTable('outgoing_payments')
      .set({ receiver_received_before: receiver.receivedAmount })
      .where(held(claim))
      .returning('id')
      .executeTakeFirst(),
  )
  const sender = (await getWalletAddress(db, { id: p.walletAddressId }))!
  const sendData = peerSendData(deps, sender, packetTracker(deps, claim, lease))
  const result = await deps.ilpSender.pay({
    sendData,
    destination: { ...receiver.ilp, asset: receiver.asset },
    terms,
    maxDelivery:
      receiver.incomingAmount === null
        ? undefined
        : receiver.incomingAmount - receiver.receivedAmount,
    deadline: receiver.expiresAt,
    signal: lease.signal,
  })
  // Taken over mid-way: what this attempt sent is recorded, and the new holder settles it.
  if (lease.signal.aborted) throw new ClaimLost(claim)
  const delivered = !result.error && result.amountDelivered >= terms.minDeliveryAmount
  if (
    !delivered &&
    result.amountSent === 0n &&
    TRANSIENT.has(result.error ?? '') &&
    p.attempts < MAX_ATTEMPTS
  ) {
    // Nothing moved: try again later, with backoff, before the quote's terms go stale.
    const nextAttemptAt = new Date(Date.now() + 2 ** p.attempts * 1000)
    // No renewal may land after this and push the next attempt back.
    await lease.stop()
    await db.transaction().execute(async (trx) => {
      const row = await fenced(
        claim,
        trx
          .updateTable('outgoing_payments')
          .set({
            sending_since: null,
            next_attempt_at: nextAttemptAt,
            failure: result.error ?? null,
          })
          .where(held(claim))
          .returningAll()
          .executeTakeFirst(),
      )
      await recordPaymentEvent(trx, row, {
        type: 'outgoing_payment.attempt_failed',
        attempt: p.attempts,
        error: result.error ?? 'unknown',
        nextAttemptAt,
      })
    })
    return 'retrying'
  }
  const failure = result.error ?? (delivered ? undefined : 'delivered too little')
  return settle(deps, p, claim, lease, await record(db, claim, { delivered, failure }))
}

/** The row a fenced write returned; none means the claim is gone. */
async function fenced<T>(claim: Claim, write: Promise<T | undefined>): Promise<T> {
  const row = await write
  if (row === undefined) throw new ClaimLost(claim)
  return row
}

/**
 * Ends a payment whose sending is over: packets that left without an answer (a crash, a lost
 * reply) are first asked about once they have expired (`reconcile`), then it is booked. If they
 * turn out to have arrived and the payment delivered what it had to after all, it completes.
 */
async function settle(
  deps: Deps,
  p: Claimed,
  claim: Claim,
  lease: Lease,
  outcome: Outcome,
): Promise<'completed' | 'failed' | 'retrying'> {
  const { db } = deps
  // Repeating packets takes network time: still under the lease, and only while it holds.
  if (lease.signal.aborted) throw new ClaimLost(claim)
  const notBefore = await reconcile(deps, p.id)
  // No renewal may land after the writes below (it would push `notBefore` back).
  await lease.stop()
  if (lease.signal.aborted) throw new ClaimLost(claim)
  if (notBefore) {
    // Packets still alive could yet be fulfilled: look again once every one has expired.
    await fenced(
      claim,
      db
        .updateTable('outgoing_payments')
        .set({ next_attempt_at: notBefore })
        .where(held(claim))
        .returning('id')
        .executeTakeFirst(),
    )
    return 'retrying'
  }
  if (!outcome.delivered && (await deliveredInFull(db, p))) {
    outcome = await record(db, claim, { delivered: true })
  }
  return finish(deps, p, claim, outcome)
}

/** Whether the fulfilled packets delivered at least the quote's minimum. */
async function deliveredInFull(db: Deps['db'], p: Claimed): Promise<boolean> {
  const row = await db
    .selectFrom('outgoing_packets as k')
    .select((eb) =>
      eb.fn
        .sum<bigint>(eb.fn.coalesce('k.delivered', 'k.expected_delivery', sql<bigint>`0`))
        .as('delivered'),
    )
    .where('k.payment_id', '=', p.id)
    .where('k.fulfilled', '=', true)
    .executeTakeFirst()
  const quote = await db
    .selectFrom('quotes')
    .select('ilp_terms')
    .where('id', '=', p.quoteId)
    .executeTakeFirstOrThrow()
  const terms = fromJson(quote.ilp_terms as Record<string, string | string[]>)
  return BigInt(row?.delivered ?? 0) >= terms.minDeliveryAmount
}

async function record(db: Deps['db'], claim: Claim, outcome: Outcome): Promise<Outcome> {
  await fenced(
    claim,
    db
      .updateTable('outgoing_payments')
      .set({
        stream_outcome: outcome.delivered ? 'delivered' : 'undelivered',
        failure: outcome.failure ?? null,
      })
      .where(held(claim))
      .returning('id')
      .executeTakeFirst(),
  )
  return outcome
}

/**
 * Records every packet of a payment: counted before it leaves, forgotten if rejected. Each record
 * is one statement (the packet's row and the payment's `sent_amount` together), so a packet costs
 * one round trip before it leaves instead of a transaction's three. The record is fenced by the
 * claim: a packet the statement does not record (the payment was taken over) does not leave, and
 * the sender is stopped.
 */
function packetTracker(deps: Deps, claim: Claim, lease: Lease): SendTracker {
  const { db } = deps
  const paymentId = claim.paymentId
  return {
    sending: (packet) =>
      countPacket(db, [
        packet.id,
        paymentId,
        packet.peerId,
        packet.prepare,
        packet.amount,
        packet.peerAmount,
        packet.expectedDelivery ?? null,
        claim.attempt,
      ]).then(
        (rows) => {
          if (rows.length > 0) return
          lease.lose()
          // A final reject of our own: the packet never leaves.
          throw new Errors.FinalApplicationError(
            'the payment was taken over by another attempt',
            Buffer.alloc(0),
          )
        },
        (err) => {
          // Packets whose fate is still open (sent, no answer) use up the payment's budget: the
          // sender must stop, and the payment's end decides what they did.
          if (sqlState(err) === '23514')
            throw new Errors.InvalidAmountError(
              'the rest of the payment is in packets of unknown fate',
            )
          throw err
        },
      ),
    fulfilled: async (packet, delivered) => {
      await markFulfilled(db, packet.id, delivered ?? null)
    },
    // Unfenced, as is marking a packet fulfilled: what happened to a packet that left is a fact
    // about the payment, whichever attempt holds it now.
    rejected: async (packet) => {
      await forgetPacket(db, [packet.id, paymentId])
    },
  }
}

// A packet about to leave, `$1` of payment `$2`, and its amount `$5` added to the payment's
// `sent_amount`, only while attempt `$8` still holds the payment (claim.ts): no row back means
// nothing was written and the packet must not leave. The payment's CHECK refuses (23514) a sum
// beyond what it may send, and the packet's row goes with it. The payment's row is updated first
// and locks it, so a claim taken meanwhile either waits for this record (and sees the packet) or
// makes this statement match nothing (READ COMMITTED re-checks the WHERE on the claimed row).
const countPacket = prepared<{ id: string }>(`
  WITH counted AS (
    UPDATE outgoing_payments SET sent_amount = sent_amount + $5::numeric, updated_at = now()
     WHERE id = $2::uuid AND state = 'sending' AND attempts = $8::int
    RETURNING id
  )
  INSERT INTO outgoing_packets
    (id, payment_id, peer_id, prepare, amount, peer_amount, expected_delivery)
  SELECT $1::text, counted.id, $3::uuid, $4::bytea, $5::numeric, $6::numeric, $7::numeric
    FROM counted
  RETURNING id`)

/**
 * Takes a rejected packet (`$1`) back out of its payment's (`$2`) `sent_amount`, if still recorded
 * and not known fulfilled: a late reply to an attempt that was taken over cannot undo what the new
 * holder learnt.
 */
const forgetPacket = prepared(`
  WITH gone AS (DELETE FROM outgoing_packets WHERE id = $1::text AND NOT fulfilled RETURNING amount)
  UPDATE outgoing_payments o SET sent_amount = o.sent_amount - gone.amount, updated_at = now()
    FROM gone
   WHERE o.id = $2::uuid`)

/**
 * After a crash, packets counted as sent may or may not have arrived. Once every one has expired
 * (a live one repeated to a receiver that does not recognise repeats could be paid twice), each is
 * sent again exactly as it was: a receiving ASE running this server books a packet once and answers
 * a repeat of a booked packet with its Fulfill, even expired. Other implementations answer R00;
 * for the packets still undecided, the receiving incoming payment's own `receivedAmount` decides
 * (`decideByReceiver`). Returns when to look again if some packet has not expired yet.
 */
async function reconcile(deps: Deps, paymentId: string): Promise<Date | undefined> {
  const { db } = deps
  const open = await db
    .selectFrom('outgoing_packets')
    .selectAll()
    .where('payment_id', '=', paymentId)
    .where('fulfilled', '=', false)
    .orderBy('created_at')
    .execute()
  const lastExpiry = Math.max(
    0,
    ...open.map((k) => deserializeIlpPrepare(k.prepare).expiresAt.getTime()),
  )
  if (lastExpiry >= Date.now()) return new Date(lastExpiry + 1000)
  const undecided: typeof open = []
  for (const packet of open) {
    const peer = await getPeer(db, { id: packet.peer_id })
    const own = deps.config.openPayments.ilpAddress
    const prepare = deserializeIlpPrepare(packet.prepare)
    const reply = peer && (await sendPrepare(peer, prepare, own, packet.prepare))
    // Only the condition's preimage says the packet arrived, as on the way out (connection.ts).
    if (reply && isFulfill(reply) && fulfills(reply, prepare))
      await markFulfilled(db, packet.id, null)
    else undecided.push(packet)
  }
  if (undecided.length === 0) return undefined
  const arrived = await decideByReceiver(deps, paymentId, undecided)
  for (const packet of undecided) {
    if (arrived.has(packet.id)) await markFulfilled(db, packet.id, null)
    else await forgetPacket(db, [packet.id, paymentId])
  }
  return undefined
}

const markFulfilled = (db: Deps['db'], packetId: string, delivered: bigint | null) =>
  db
    .updateTable('outgoing_packets')
    .set({ fulfilled: true, delivered })
    .where('id', '=', packetId)
    .execute()

/**
 * Which undecided packets arrived, by the receiver's count: what its incoming payment received
 * beyond what it had when the attempt began and what our fulfilled packets delivered came from
 * the undecided ones. They are counted as arrived in the order they left while their expected
 * delivery fits in that rest. Unreadable receivers, or records older than this rule, count none.
 */
async function decideByReceiver(
  deps: Deps,
  paymentId: string,
  undecided: { id: string; expected_delivery: bigint | null }[],
): Promise<Set<string>> {
  const { db, logger } = deps
  const arrived = new Set<string>()
  const payment = await db
    .selectFrom('outgoing_payments as o')
    .innerJoin('quotes as q', 'q.id', 'o.quote_id')
    .select(['o.receiver_received_before as before', 'q.receiver'])
    .where('o.id', '=', paymentId)
    .executeTakeFirstOrThrow()
  const remote =
    payment.before === null
      ? undefined
      : await deps.remoteReceivers.get(payment.receiver, { fresh: true })
  if (!remote || payment.before === null) {
    logger.warn(
      { payment: paymentId, packets: undecided.length },
      'in-flight packets of an interrupted payment counted as not arrived: the receiver could not be read',
    )
    return arrived
  }
  const fulfilled = await db
    .selectFrom('outgoing_packets')
    .select(['delivered', 'expected_delivery'])
    .where('payment_id', '=', paymentId)
    .where('fulfilled', '=', true)
    .execute()
  const known = fulfilled.reduce((sum, k) => sum + (k.delivered ?? k.expected_delivery ?? 0n), 0n)
  let rest = remote.receivedAmount - payment.before - known
  for (const packet of undecided) {
    const expected = packet.expected_delivery
    if (expected === null || expected <= 0n || expected > rest) continue
    arrived.add(packet.id)
    rest -= expected
  }
  logger.info(
    { payment: paymentId, undecided: undecided.length, arrived: arrived.size },
    'in-flight packets of an interrupted payment decided by the receiver’s received amount',
  )
  return arrived
}

/**
 * Books a payment's end in one transaction: the reservation is posted for what was sent (plus the
 * fee, when delivered) and the rest released; what the fulfilled packets carried leaves the asset's
 * clearing account for each peer's account, in the peer's asset: straight across when the sender
 * and the peer hold one asset, else out through the sender asset's settlement account and in
 * through the peer asset's, as forwarding does.
 */
async function finish(
  deps: Deps,
  p: Claimed,
  claim: Claim,
  outcome: Outcome,
): Promise<'completed' | 'failed'> {
  const { db } = deps
  const { delivered, failure } = outcome
  return db.transaction().execute(async (trx) => {
    // Locked and still held: no packet can be recorded until this commits, and an attempt that
    // was taken over books nothing.
    const row = await fenced(
      claim,
      trx
        .selectFrom('outgoing_payments')
        .select(['sent_amount'])
        .where(held(claim))
        .forUpdate()
        .executeTakeFirst(),
    )
    // Every packet still recorded counts as sent (rejected ones were forgotten), one sum per peer.
    const legs = await trx
      .selectFrom('outgoing_packets as k')
      .innerJoin('peers as r', 'r.id', 'k.peer_id')
      .select((eb) => [
        'r.ledger_account_id as account',
        'r.asset_id as assetId',
        eb.fn.sum<bigint>('k.amount').as('sent'),
        eb.fn.sum<bigint>('k.peer_amount').as('peerSent'),
      ])
      .where('k.payment_id', '=', p.id)
      .groupBy(['r.ledger_account_id', 'r.asset_id'])
      .execute()
    const sent = row.sent_amount
    const recorded = legs.reduce((sum, l) => sum + BigInt(l.sent), 0n)
    if (recorded !== sent)
      throw new Error(`payment ${p.id} counts ${sent} sent but its packets carry ${recorded}`)
    const fee = delivered ? p.feeAmount : 0n
    const reservation = reservationId(p.id)
    const resolved =
      sent + fee > 0n
        ? await postTransfer(trx, reservation, sent + fee)
        : await voidTransfer(trx, reservation)
    if (isLedgerError(resolved)) throw new Error(`reservation of ${p.id}: ${resolved.message}`)
    const sender = (await getWalletAddress(trx, { id: p.walletAddressId }))!
    const clearing = await assetAccountId(trx, sender.assetId, 'outgoing')
    for (const [i, leg] of legs.entries()) {
      const [legSent, peerSent] = [BigInt(leg.sent), BigInt(leg.peerSent)]
      const id = `outgoing:${p.id}:deliver${i === 0 ? '' : `:${i}`}`
      if (leg.assetId === sender.assetId) {
        await move(trx, id, clearing, leg.account, legSent)
        continue
      }
      const out = await assetAccountId(trx, sender.assetId, 'settlement')
      await move(trx, `${id}:fx-out`, clearing, out, legSent)
      const into = await assetAccountId(trx, leg.assetId, 'settlement')
      if (peerSent > 0n) await move(trx, `${id}:fx-in`, into, leg.account, peerSent)
    }
    if (fee > 0n)
      await move(
        trx,
        `outgoing:${p.id}:fee`,
        clearing,
        await assetAccountId(trx, sender.assetId, 'fees'),
        fee,
      )
    // Its packets' fate is settled in the ledger now.
    await trx.deleteFrom('outgoing_packets').where('payment_id', '=', p.id).execute()
    const ended = await trx
      .updateTable('outgoing_payments')
      .set({
        state: delivered ? 'completed' : 'failed',
        failure: failure ?? null,
        next_attempt_at: null,
        sending_since: null,
        updated_at: sql`now()`,
      })
      .where('id', '=', p.id)
      .returningAll()
      .executeTakeFirstOrThrow()
    // The sender read above: the event does not read it again.
    await recordPaymentEvent(
      trx,
      ended,
      { type: delivered ? 'outgoing_payment.completed' : 'outgoing_payment.failed' },
      sender,
    )
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
