import type { Deps } from '../deps.ts'
import type { IncomingFacts } from '../incoming-payments/facts.ts'
import { getIncomingPayment, type IncomingPayment, isOpen } from '../incoming-payments/service.ts'

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
 * The id of the incoming payment of this ASE that a receiver URL names, if it is one in the form
 * `resolveReceiver` accepts; undefined for anything else (which `resolveReceiver` then judges).
 */
export function localIncomingPaymentId(openPaymentsUrl: string, url: string): string | undefined {
  // The spelling of every id we hand out (`LOCAL` is anchored, so the origin ends where it should).
  if (url.startsWith(openPaymentsUrl)) {
    const id = LOCAL.exec(url.slice(openPaymentsUrl.length))?.[1]
    if (id !== undefined) return id
  }
  if (!URL.canParse(url)) return undefined
  const u = new URL(url)
  if (u.origin !== openPaymentsUrl || u.search || u.hash) return undefined
  return LOCAL.exec(u.pathname)?.[1]
}

/** The receiver `resolveReceiver` makes of a local incoming payment read by the caller. */
export function localReceiver(url: string, ip: IncomingPayment | undefined): Receiver | undefined {
  if (!ip || !isOpen(ip)) return undefined
  return receiverOf(url, ip, ip.receivedAmount)
}

/**
 * The receiver a quote is priced from when only the incoming payment's kept facts are known: what
 * it received counts as nothing, so what it still expects is an upper bound, and the quote's write
 * checks the payment as it is (`saveQuoteIfReceiver`). Not for a quote of what remains to pay.
 */
export function receiverFromFacts(url: string, facts: IncomingFacts): Receiver | undefined {
  if (facts.expiresAt <= new Date()) return undefined
  return receiverOf(url, facts, 0n)
}

const receiverOf = (url: string, p: IncomingFacts, receivedAmount: bigint): Receiver => ({
  url,
  localIncomingPaymentId: p.id,
  ilp: null,
  asset: { code: p.assetCode, scale: p.assetScale },
  incomingAmount: p.incomingAmount,
  receivedAmount,
  expiresAt: p.expiresAt,
})

/**
 * Resolves a receiver URL to an incoming payment that can still be paid (unknown, completed or
 * expired → undefined): from the database for this ASE's incoming payments, otherwise read from the
 * other ASE as an Open Payments client (cached for a quote's life, unless `fresh`), charged to
 * `requester`'s fetch budget when given.
 */
export async function resolveReceiver(
  deps: Deps,
  url: string,
  opts: { fresh?: boolean; requester?: string } = {},
): Promise<Receiver | undefined> {
  if (!URL.canParse(url)) return undefined
  const u = new URL(url)
  if (u.origin === deps.config.openPaymentsUrl) {
    const id = localIncomingPaymentId(deps.config.openPaymentsUrl, url)
    return localReceiver(url, id === undefined ? undefined : await getIncomingPayment(deps.db, id))
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
