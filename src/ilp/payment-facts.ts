import type { Db } from '../db/database.ts'
import { getIncomingPayment } from '../incoming-payments/service.ts'
import { createLru } from '../lib/lru.ts'
import { getWalletAddress } from '../wallet-addresses/service.ts'

/**
 * What a packet needs to know of its incoming payment before the booking, none of it changing (a
 * wallet address keeps its asset and its ledger account).
 */
export interface PaymentFacts {
  id: string
  walletAddressId: string
  assetCode: string
  assetScale: number
  expiresAt: Date
  /** The owner's wallet: where the money goes. */
  wallet: { ledgerAccountId: string; assetId: string }
  /** Seen closed (completed or cancelled) by this process; a payment never reopens. */
  closed: boolean
}

/** Payments being paid at once; a few hundred bytes each. */
const MAX_ENTRIES = 10_000

export interface PaymentFactsCache {
  get(id: string): Promise<PaymentFacts | undefined>
}

/**
 * The incoming payments' facts that never change (owner, asset, expiry), kept per process so that a
 * packet reads nothing before its booking: no staleness to bound. Whether a payment is still open
 * is decided by the booking, under the payment's row lock; `closed` only saves the STREAM work for
 * packets to a payment this process has seen closed. Least recently used entries go first.
 */
export function createPaymentFactsCache(db: Db, maxEntries = MAX_ENTRIES): PaymentFactsCache {
  const entries = createLru<string, PaymentFacts>(maxEntries)
  return {
    async get(id) {
      const hit = entries.get(id)
      if (hit) return hit
      const ip = await getIncomingPayment(db, id)
      if (!ip) return undefined
      const wallet = (await getWalletAddress(db, { id: ip.walletAddressId }))!
      const facts: PaymentFacts = {
        id: ip.id,
        walletAddressId: ip.walletAddressId,
        assetCode: ip.assetCode,
        assetScale: ip.assetScale,
        expiresAt: ip.expiresAt,
        wallet: { ledgerAccountId: wallet.ledgerAccountId, assetId: wallet.assetId },
        closed: ip.completedAt !== null,
      }
      entries.set(id, facts)
      return facts
    },
  }
}
