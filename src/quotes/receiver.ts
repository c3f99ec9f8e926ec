import type { Config } from '../config.ts'
import type { Db } from '../db/database.ts'
import { getIncomingPayment, isOpen } from '../incoming-payments/service.ts'

/** What a quote and a payment need to know about the incoming payment they pay into. */
export interface Receiver {
  url: string
  /** Set for incoming payments of this ASE, which are settled through the ledger directly. */
  localIncomingPaymentId: string
  asset: { code: string; scale: number }
  incomingAmount: bigint | null
  receivedAmount: bigint
  expiresAt: Date
}

const LOCAL =
  /^\/incoming-payments\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/

/**
 * Resolves a receiver URL to an incoming payment that can still be paid: unknown, completed or
 * expired → undefined. Only incoming payments of this ASE for now; receivers at other ASEs (read
 * over Open Payments) come with Interledger.
 */
export async function resolveReceiver(
  db: Db,
  config: Config,
  url: string,
): Promise<Receiver | undefined> {
  if (!URL.canParse(url)) return undefined
  const u = new URL(url)
  const m = LOCAL.exec(u.pathname)
  if (u.origin !== config.openPaymentsUrl || !m || u.search || u.hash) return undefined
  const ip = await getIncomingPayment(db, m[1]!)
  if (!ip || !isOpen(ip)) return undefined
  return {
    url,
    localIncomingPaymentId: ip.id,
    asset: { code: ip.assetCode, scale: ip.assetScale },
    incomingAmount: ip.incomingAmount,
    receivedAmount: ip.receivedAmount,
    expiresAt: ip.expiresAt,
  }
}
