import type { Db } from '../db/database.ts'
import type { Deps } from '../deps.ts'
import type { IncomingPayment } from '../incoming-payments/service.ts'
import { BoundedMap } from '../lib/oldest-out.ts'
import { walletAddressUrl } from '../wallet-addresses/urls.ts'
import { askApproval } from './callout.ts'

/**
 * Whether money may be credited to an incoming payment. `unanswered`: core banking did not decide
 * (the refusal holds for this credit only).
 */
export type IncomingDecision =
  | { credit: true }
  | { credit: false; reason: string; unanswered?: true }

const CREDIT: IncomingDecision = { credit: true }

/** Decisions kept in memory per process; the database keeps them all. */
const MAX_CACHED = 10_000

/**
 * The incoming decisions one process knows, and the callouts it has in flight: packets of one
 * payment arriving together wait for one callout instead of each making its own.
 */
export class IncomingDecisions {
  private readonly known = new BoundedMap<string, IncomingDecision>(MAX_CACHED)
  readonly asking = new Map<string, Promise<IncomingDecision>>()

  get(id: string): IncomingDecision | undefined {
    return this.known.get(id)
  }

  set(id: string, d: IncomingDecision): void {
    this.known.set(id, d)
    this.known.trim()
  }
}

/**
 * Whether core banking lets money be credited to `ip` (of asset `assetId`). Asked once per incoming
 * payment: the answer is stored on the payment and kept in this process for its life, so crediting
 * stays one transaction per packet with no callout. Never call it inside a transaction. A callout
 * that fails (time out, not 2xx, malformed) refuses this credit but is not remembered: the next
 * credit asks again.
 */
export async function incomingDecision(
  deps: Deps,
  ip: IncomingPayment,
  assetId: string,
): Promise<IncomingDecision> {
  const known = await knownIncomingDecision(deps, deps.db, ip.id, assetId)
  if (known !== 'ask') return known
  const { decisions } = deps.coreBanking
  let asking = decisions.asking.get(ip.id)
  if (!asking) {
    asking = ask(deps, ip, assetId).finally(() => decisions.asking.delete(ip.id))
    decisions.asking.set(ip.id, asking)
  }
  return asking
}

/**
 * The decision about an incoming payment when it needs no callout: credit when core banking is off
 * for the asset, else the stored decision; `ask` when none was made yet. Reads (never locks) in
 * `db`, which may be the caller's transaction.
 */
export async function knownIncomingDecision(
  deps: Deps,
  db: Db,
  incomingPaymentId: string,
  assetId: string,
): Promise<IncomingDecision | 'ask'> {
  const hook = await deps.coreBanking.hooks.hookFor(assetId)
  if (!hook) return CREDIT
  const cached = deps.coreBanking.decisions.get(incomingPaymentId)
  if (cached) return cached
  const stored = await readStored(db, incomingPaymentId)
  if (stored) deps.coreBanking.decisions.set(incomingPaymentId, stored)
  return stored ?? 'ask'
}

async function readStored(db: Db, id: string): Promise<IncomingDecision | undefined> {
  const row = await db
    .selectFrom('incoming_payments')
    .select(['core_banking_decision', 'core_banking_reason'])
    .where('id', '=', id)
    .executeTakeFirst()
  if (!row?.core_banking_decision) return undefined
  return row.core_banking_decision === 'approved'
    ? CREDIT
    : { credit: false, reason: row.core_banking_reason ?? 'declined by core banking' }
}

async function ask(deps: Deps, ip: IncomingPayment, assetId: string): Promise<IncomingDecision> {
  const hook = await deps.coreBanking.hooks.hookFor(assetId)
  if (!hook) return CREDIT
  const decision = await askApproval(deps, hook, 'incoming', {
    id: ip.id,
    type: 'incoming_payment.approve',
    timestamp: new Date(),
    data: {
      incomingPayment: {
        id: `${deps.config.openPaymentsUrl}/incoming-payments/${ip.id}`,
        paymentId: ip.id,
        walletAddress: walletAddressUrl(deps.config, ip.walletAddressPath),
        walletAddressId: ip.walletAddressId,
        ...(ip.incomingAmount !== null && {
          incomingAmount: {
            value: ip.incomingAmount.toString(),
            assetCode: ip.assetCode,
            assetScale: ip.assetScale,
          },
        }),
        receivedAmount: {
          value: ip.receivedAmount.toString(),
          assetCode: ip.assetCode,
          assetScale: ip.assetScale,
        },
        expiresAt: ip.expiresAt.toISOString(),
        ...(ip.metadata !== null && { metadata: ip.metadata }),
      },
    },
  })
  if (decision.kind === 'unavailable')
    return { credit: false, reason: 'core banking did not answer', unanswered: true }
  // The first decision stored wins: another process may have asked at the same time.
  await deps.db
    .updateTable('incoming_payments')
    .set({
      core_banking_decision: decision.kind,
      core_banking_reason: decision.kind === 'declined' ? decision.reason : null,
    })
    .where('id', '=', ip.id)
    .where('core_banking_decision', 'is', null)
    .execute()
  const stored = (await readStored(deps.db, ip.id))!
  deps.coreBanking.decisions.set(ip.id, stored)
  return stored
}
