import { createLru } from '../lib/lru.ts'
import type { IncomingPayment } from './service.ts'

/** Incoming payments whose facts are kept, least recently used out; an entry is ~200 bytes. */
export const MAX_INCOMING_FACTS = 10_000

/**
 * What never changes about an incoming payment of this ASE: its owner (and so its asset), the
 * amount it expects and when it expires. What changes (what it received, whether it is completed or
 * cancelled) is never kept. A quote to a payment known here is priced from these facts and written
 * by one statement that checks them all against the row, with the row's state (`quotes/service.ts`
 * `saveQuoteIfReceiver`): an entry that is wrong, for whatever reason, costs a fallback to the
 * read, never a wrong quote. So there is no staleness bound to state: nothing kept is trusted.
 */
export interface IncomingFacts {
  id: string
  walletAddressId: string
  assetCode: string
  assetScale: number
  incomingAmount: bigint | null
  expiresAt: Date
}

export interface IncomingFactsCache {
  get(id: string): IncomingFacts | undefined
  /**
   * Keeps a payment's facts: its create does, and so do the quote's and the outgoing payment's
   * access checks that read a local receiver.
   */
  remember(ip: IncomingPayment): void
  delete(id: string): void
  readonly size: number
}

export function createIncomingFactsCache(max = MAX_INCOMING_FACTS): IncomingFactsCache {
  const byId = createLru<string, IncomingFacts>(max)
  return {
    get: (id) => byId.get(id),
    remember: (ip) =>
      byId.set(ip.id, {
        id: ip.id,
        walletAddressId: ip.walletAddressId,
        assetCode: ip.assetCode,
        assetScale: ip.assetScale,
        incomingAmount: ip.incomingAmount,
        expiresAt: ip.expiresAt,
      }),
    delete: (id) => byId.delete(id),
    get size() {
      return byId.size
    },
  }
}

/**
 * The facts of incoming payments this process created or read. Shared by the servers of a process,
 * as `tokenGrants` is: payment ids are random UUIDs, and every use is checked against the row.
 */
export const incomingFacts = createIncomingFactsCache()
