import { setTimeout as sleep } from 'node:timers/promises'
import type { Deps } from '../deps.ts'
import { failureClass } from '../metrics/metrics.ts'
import { recordPaymentEvent } from './events.ts'
import { decideLocalCredit, knownLocalDecision } from './local-decision.ts'
import { settleRemotely } from './remote.ts'
import { fail, ReservationLost, settleLocally } from './settlement.ts'

/** Unexpected settlement errors are retried with exponential backoff this many times. */
const MAX_ATTEMPTS = 8

export interface PaymentWorker {
  /** Look for due payments now (after a create) instead of at the next poll. */
  kick(): void
  /**
   * Right after the create of a payment to a local incoming payment committed: it is settled now,
   * in this process, beside the worker's loop (so payments of many senders settle in parallel);
   * if it cannot be claimed so, the loop is kicked.
   */
  settle(paymentId: string): void
  stop(): Promise<void>
}

/**
 * Sends due outgoing payments. Each is claimed with `FOR UPDATE SKIP LOCKED`, so any number of
 * processes can run workers on one database, and settled in the same transaction (local receivers
 * involve no network I/O).
 */
export function startPaymentWorker(deps: Deps, opts: { pollMs?: number } = {}): PaymentWorker {
  const { db, logger, metrics } = deps
  const pollMs = opts.pollMs ?? 1000
  // How long one attempt may send a payment over Interledger before another may take it over.
  const leaseMs = deps.config.openPayments.paymentSendLeaseSeconds * 1000
  // How long asking core banking about a local receiver keeps the payment claimed.
  const callLeaseMs = deps.config.coreBanking.timeoutMs + 5000
  let stopped = false
  let wake: AbortController = new AbortController()

  /**
   * Counts a payment that ended, from its committed row. Never throws: the payment is settled, and
   * a failure here must not send it down the retry path.
   */
  const observeEnd = async (id: string) => {
    try {
      const p = await db
        .selectFrom('outgoing_payments')
        .select(['state', 'failure', 'created_at'])
        .where('id', '=', id)
        .executeTakeFirstOrThrow()
      if (p.state === 'completed') {
        metrics.outgoingCompleted.inc()
        metrics.outgoingCompletionSeconds.observe((Date.now() - p.created_at.getTime()) / 1000)
      } else if (p.state === 'failed') {
        metrics.outgoingFailed.inc({ reason: failureClass(p.failure) })
      }
    } catch (err) {
      logger.warn({ err, payment: id }, 'could not count an ended outgoing payment')
    }
  }

  /** Settles one due payment (this one, if local, with `only`); false when none is due. */
  const processOne = async (only?: string): Promise<boolean> => {
    let claimed: string | undefined
    // A payment sent over the network is held by this attempt number (claim.ts).
    let attempt: number | undefined
    // Set inside the settling transaction, counted once it committed.
    let receiverCompleted = false
    try {
      const claim = await db.transaction().execute(async (trx) => {
        let q = trx
          .selectFrom('outgoing_payments as o')
          .innerJoin('quotes as q', 'q.id', 'o.quote_id')
          .select([
            'o.id',
            'o.wallet_address_id',
            'o.quote_id',
            'o.debit_amount',
            'o.fee_amount',
            'o.receive_amount',
            'o.attempts',
            'o.sending_since',
            'o.stream_outcome',
            'o.failure',
            'q.receiver_incoming_payment_id',
          ])
          .where('o.state', '=', 'sending')
          .where('o.next_attempt_at', '<=', new Date())
        if (only !== undefined)
          q = q.where('o.id', '=', only).where('q.receiver_incoming_payment_id', 'is not', null)
        // Skipping a locked row: whoever holds it (the loop, or another process) settles it.
        const p = await q
          .orderBy('o.next_attempt_at')
          .limit(1)
          .forUpdate('o')
          .skipLocked()
          .executeTakeFirst()
        if (!p) return undefined
        claimed = p.id
        const due = {
          id: p.id,
          walletAddressId: p.wallet_address_id,
          quoteId: p.quote_id,
          debitAmount: p.debit_amount,
          feeAmount: p.fee_amount,
          receiveAmount: p.receive_amount,
        }
        if (p.receiver_incoming_payment_id !== null) {
          const decision = await knownLocalDecision(deps, trx, p.receiver_incoming_payment_id)
          if (decision === 'ask') {
            // Asked outside this transaction, then the payment is claimed again. Meanwhile a
            // lease keeps the loop (or another process) from claiming it and asking a second
            // time; a process that dies while asking leaves it to be asked again once it ends.
            await trx
              .updateTable('outgoing_payments')
              .set({ next_attempt_at: new Date(Date.now() + callLeaseMs) })
              .where('id', '=', p.id)
              .execute()
            return { decide: p.receiver_incoming_payment_id }
          }
          if (!decision.credit) return fail(trx, p.id, `receiver declined: ${decision.reason}`)
          const local = { ...due, receiverIncomingPaymentId: p.receiver_incoming_payment_id }
          return settleLocally(trx, local, () => {
            receiverCompleted = true
          })
        }
        // Paid over the network, outside this transaction: the lease keeps other workers off it
        // meanwhile (the attempt renews it while it works), and a lease that runs out means the
        // attempt died or stalled. The raised `attempts` is the claim: whoever takes the payment
        // over raises it again, which fences off every later write of this attempt.
        await trx
          .updateTable('outgoing_payments')
          .set({
            attempts: p.attempts + 1,
            next_attempt_at: new Date(Date.now() + leaseMs),
            sending_since: new Date(),
          })
          .where('id', '=', p.id)
          .execute()
        return {
          remote: {
            ...due,
            attempts: p.attempts + 1,
            interrupted: p.sending_since !== null,
            outcome: p.stream_outcome
              ? { delivered: p.stream_outcome === 'delivered', failure: p.failure ?? undefined }
              : undefined,
          },
        }
      })
      if (typeof claim === 'object' && claim.decide !== undefined) {
        const outcome = await decideLocalCredit(deps, claimed!, claim.decide)
        if (outcome === 'failed') await observeEnd(claimed!)
        return true
      }
      if (typeof claim === 'object') attempt = claim.remote.attempts
      const outcome =
        typeof claim === 'object' ? await settleRemotely(deps, claim.remote, leaseMs) : claim
      if (outcome) logger.debug({ payment: claimed, outcome }, 'outgoing payment settled')
      if (receiverCompleted) metrics.incomingCompleted.inc()
      if (outcome === 'completed' || outcome === 'failed') await observeEnd(claimed!)
      return outcome !== undefined
    } catch (err) {
      if (claimed === undefined) throw err
      const outcome = await db
        .transaction()
        .execute((trx) =>
          err instanceof ReservationLost
            ? fail(trx, claimed!, 'reservation expired')
            : retryLater(trx, claimed!, err as Error, attempt),
        )
      if (outcome === 'failed') await observeEnd(claimed)
      return true
    }
  }

  /**
   * Schedules another attempt after an unexpected error. For a payment sent over the network, only
   * while `attempt` still holds it: one taken over meanwhile is its new holder's to settle, and
   * rescheduling it would cut that holder's lease short.
   */
  const retryLater = async (trx: Deps['db'], id: string, err: Error, attempt?: number) => {
    const row = await trx
      .updateTable('outgoing_payments')
      .set((eb) => ({ attempts: eb('attempts', '+', 1) }))
      .where('id', '=', id)
      .where('state', '=', 'sending')
      .$if(attempt !== undefined, (q) => q.where('attempts', '=', attempt!))
      .returning(['attempts', 'sent_amount'])
      .executeTakeFirst()
    if (!row) {
      logger.warn(
        { err, payment: id },
        'outgoing payment failed after another attempt took it over',
      )
      return undefined
    }
    // Money that left over Interledger must be booked, however long that takes: failing such a
    // payment would release what the receiver already has. It is retried until booked, loudly.
    const left = row.sent_amount > 0n
    if (left) metrics.settlementBookingFailures.inc()
    logger.error(
      {
        err,
        payment: id,
        attempts: row.attempts,
        ...(left && { sent: row.sent_amount.toString() }),
      },
      left
        ? 'BOOKING FAILED for a payment whose money left: retrying until it is booked'
        : 'outgoing payment settlement failed',
    )
    if (!left && row.attempts >= MAX_ATTEMPTS)
      return fail(trx, id, `settlement failed ${row.attempts} times`)
    const delaySeconds = Math.min(2 ** row.attempts, 300)
    const nextAttemptAt = new Date(Date.now() + delaySeconds * 1000)
    const retrying = await trx
      .updateTable('outgoing_payments')
      .set({ next_attempt_at: nextAttemptAt })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow()
    await recordPaymentEvent(trx, retrying, {
      type: 'outgoing_payment.attempt_failed',
      attempt: row.attempts,
      error: left ? 'booking failed' : 'settlement failed',
      nextAttemptAt,
    })
  }

  const loop = (async () => {
    while (!stopped) {
      try {
        if (await processOne()) continue
      } catch (err) {
        if (!deps.outage.noted(err)) logger.error({ err }, 'payment worker failed; retrying')
      }
      await sleep(pollMs, undefined, { signal: wake.signal }).catch(() => {})
      wake = new AbortController()
    }
  })()

  // Settlements started by `settle`, awaited by `stop`.
  const settling = new Set<Promise<void>>()

  return {
    kick: () => wake.abort(),
    settle: (paymentId) => {
      if (stopped) return
      const run = processOne(paymentId)
        .then((settled) => {
          if (!settled) wake.abort()
        })
        .catch((err) => {
          // Left `sending`: the loop takes it at its next poll.
          logger.error({ err, payment: paymentId }, 'settling a payment at once failed')
        })
        .finally(() => settling.delete(run))
      settling.add(run)
    },
    stop: async () => {
      stopped = true
      wake.abort()
      await loop
      await Promise.all(settling)
    },
  }
}
