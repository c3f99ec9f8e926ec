import type { Deps } from '../deps.ts'
import { getIncomingPayment, isOpen } from '../incoming-payments/service.ts'

/** What a quote and a payment need to know about the incoming payment they pay into. */
export interface Receiver {
  url: string
  /** Set for incoming payments of this ASE, which are settled through the ledger directly. */
  localIncomingPaymentId: string | null
  /** Set for incoming payments at other ASEs, which are paid over Interledger. */
  ilp: { ilpAddress: string; sharedSecret: string } | null
  asset: { code: string; scale: number }
  incomingAmount: bigint | null
  receivedAmount: bigint
  expiresAt: Date | undefined
}

const LOCAL =
  /^\/incoming-payments\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/

/**
 * Resolves a receiver URL to an incoming payment that can still be paid (unknown, completed or
 * expired → undefined): from the database for this ASE's incoming payments, otherwise read from the
 * other ASE as an Open Payments client (cached for a quote's life, unless `fresh`).
 */
export async function resolveReceiver(
  deps: Deps,
  url: string,
  opts: { fresh?: boolean } = {},
): Promise<Receiver | undefined> {
  if (!URL.canParse(url)) return undefined
  const u = new URL(url)
  if (u.origin === deps.config.openPaymentsUrl) {
    const m = LOCAL.exec(u.pathname)
    if (!m || u.search || u.hash) return undefined
    const ip = await getIncomingPayment(deps.db, m[1]!)
    if (!ip || !isOpen(ip)) return undefined
    return {
      url,
      localIncomingPaymentId: ip.id,
      ilp: null,
      asset: { code: ip.assetCode, scale: ip.assetScale },
      incomingAmount: ip.incomingAmount,
      receivedAmount: ip.receivedAmount,
      expiresAt: ip.expiresAt,
    }
  }
  const remote = await deps.remoteReceivers.get(url, opts)
  if (!remote?.ilp || remote.completed || (remote.expiresAt && remote.expiresAt <= new Date())) {
    return undefined
  }
  return {
    url,
    localIncomingPaymentId: null,
    ilp: remote.ilp,
    asset: remote.asset,
    incomingAmount: remote.incomingAmount,
    receivedAmount: remote.receivedAmount,
    expiresAt: remote.expiresAt,
  }
}
