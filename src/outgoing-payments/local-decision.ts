import { sql } from 'kysely'
import { incomingDecision, knownIncomingDecision } from '../core-banking/incoming.ts'
import type { Db } from '../db/database.ts'
import type { Deps } from '../deps.ts'
import { getIncomingPayment } from '../incoming-payments/service.ts'
import { fail } from './settlement.ts'

/** The asset of an incoming payment's wallet address. */
const assetOf = async (db: Db, incomingPaymentId: string) =>
  (
    await db
      .selectFrom('incoming_payments as p')
      .innerJoin('wallet_addresses as w', 'w.id', 'p.wallet_address_id')
      .select('w.asset_id')
      .where('p.id', '=', incomingPaymentId)
      .executeTakeFirstOrThrow()
  ).asset_id

/**
 * Inside the settling transaction: whether core banking lets this ASE's incoming payment be
 * credited, when that is known without a callout (`ask` otherwise).
 */
export async function knownLocalDecision(deps: Deps, trx: Db, incomingPaymentId: string) {
  if (!(await deps.coreBanking.hooks.enabled())) return { credit: true } as const
  return knownIncomingDecision(deps, trx, incomingPaymentId, await assetOf(trx, incomingPaymentId))
}

/**
 * Outside any transaction, while the worker's lease keeps the payment from being claimed: asks
 * core banking about the receiver of a local payment. A stored answer lets the worker claim the
 * payment again and settle or fail it by that answer; no answer (time-out, malformed) fails the
 * payment here, while it is still sending, releasing its reservation, since the question would
 * otherwise be asked again and again.
 */
export async function decideLocalCredit(
  deps: Deps,
  paymentId: string,
  incomingPaymentId: string,
): Promise<'decided' | 'failed' | 'gone'> {
  const ip = (await getIncomingPayment(deps.db, incomingPaymentId))!
  const decision = await incomingDecision(deps, ip, await assetOf(deps.db, incomingPaymentId))
  if (decision.credit || !decision.unanswered) {
    // The answer is stored: the payment is due again at once, no longer leased for the callout.
    await deps.db
      .updateTable('outgoing_payments')
      .set({ next_attempt_at: sql<Date>`now()` })
      .where('id', '=', paymentId)
      .where('state', '=', 'sending')
      .execute()
    return 'decided'
  }
  return deps.db.transaction().execute(async (trx) => {
    const p = await trx
      .selectFrom('outgoing_payments')
      .select('state')
      .where('id', '=', paymentId)
      .forUpdate()
      .executeTakeFirstOrThrow()
    if (p.state !== 'sending') return 'gone'
    return fail(trx, paymentId, `receiver not approved: ${decision.reason}`)
  })
}
