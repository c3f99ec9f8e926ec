import type { Deps } from '../deps.ts'
import { BoundedMap } from '../lib/oldest-out.ts'
import type { FetchBudget } from '../outbound/budget.ts'
import type { Outbound } from '../outbound/fetch.ts'
import type { OpenPaymentsCalls } from './guarded-client.ts'

/** What a quote needs to know about an incoming payment at another ASE. */
export interface RemoteIncomingPayment {
  url: string
  asset: { code: string; scale: number }
  incomingAmount: bigint | null
  receivedAmount: bigint
  expiresAt: Date | undefined
  completed: boolean
  /** The STREAM destination to pay it over Interledger, while it can receive. */
  ilp: { ilpAddress: string; sharedSecret: string } | undefined
}

export interface RemoteReceivers {
  /**
   * `fresh` reads past the cache (what a payment is about to rely on), and caches the result;
   * `requester` (e.g. `client:…`) is charged for a read that is not served from the cache.
   */
  get(
    url: string,
    opts?: { fresh?: boolean; requester?: string },
  ): Promise<RemoteIncomingPayment | undefined>
}

/** Receiver URLs and the authorization servers they name come from clients: bound what we keep. */
const MAX_CACHED = 10_000

/**
 * Reads incoming payments at other ASEs as an Open Payments client, with the server's own identity:
 * the public view names the receiver's authorization server, a non-interactive `read-all` grant
 * there gives a token (cached until it expires, dropped and renewed once when refused), and the
 * authenticated read gives amounts and the `ilp` method. Results are cached for `cacheTtlMs` (the
 * quote's life), so a quote and its payment read the receiver once. Every request goes through the
 * guarded fetcher (`outbound`): receivers and their authorization servers are named by clients.
 */
export function createRemoteReceivers(
  deps: Deps,
  opts: { cacheTtlMs: number; outbound: Outbound; budget?: FetchBudget },
): RemoteReceivers {
  const { identity, logger } = deps
  let client: Promise<OpenPaymentsCalls> | undefined
  const tokens = new BoundedMap<string, { value: string; expiresAt: number }>(MAX_CACHED)
  // An entry older than the TTL is not used (`get`); it stays until it is the oldest beyond the bound.
  const cache = new BoundedMap<
    string,
    { at: number; value: Promise<RemoteIncomingPayment | undefined> }
  >(MAX_CACHED)

  const opClient = () => {
    // Loaded on first use: the official client's packages cost start-up time, and a server
    // whose clients only pay locally never needs them.
    client ??= import('./guarded-client.ts').then((m) =>
      m.createGuardedClient({
        identity,
        outbound: opts.outbound,
        timeoutMs: deps.config.outbound.timeoutMs,
      }),
    )
    return client
  }

  const token = async (c: OpenPaymentsCalls, authServer: string): Promise<string | undefined> => {
    const cached = tokens.get(authServer)
    if (cached && cached.expiresAt > Date.now()) return cached.value
    const grant = await c.grant.request(
      { url: authServer },
      { access_token: { access: [{ type: 'incoming-payment', actions: ['read-all'] }] } },
    )
    if (!('access_token' in grant) || !grant.access_token) return undefined
    const lifetime = (grant.access_token.expires_in ?? 60) * 1000
    // Renew a little early so a token never expires between our check and their check.
    tokens.delete(authServer)
    tokens.set(authServer, {
      value: grant.access_token.value,
      expiresAt: Date.now() + lifetime * 0.9,
    })
    tokens.trim()
    return grant.access_token.value
  }

  const load = async (url: string): Promise<RemoteIncomingPayment | undefined> => {
    try {
      const c = await opClient()
      const { authServer } = await c.incomingPayment.getPublic({ url })
      for (let attempt = 0; attempt < 2; attempt++) {
        const accessToken = await token(c, authServer)
        if (!accessToken) return undefined
        try {
          const ip = await c.incomingPayment.get({ url, accessToken })
          const method = ip.methods.find((m) => m.type === 'ilp')
          const expiresAt = ip.expiresAt ? new Date(ip.expiresAt) : undefined
          // The client's schema lets through a time no Date holds (a leap second): no receiver.
          if (expiresAt && Number.isNaN(expiresAt.getTime())) return undefined
          return {
            url,
            asset: { code: ip.receivedAmount.assetCode, scale: ip.receivedAmount.assetScale },
            incomingAmount: ip.incomingAmount ? BigInt(ip.incomingAmount.value) : null,
            receivedAmount: BigInt(ip.receivedAmount.value),
            expiresAt,
            completed: ip.completed,
            ilp: method && { ilpAddress: method.ilpAddress, sharedSecret: method.sharedSecret },
          }
        } catch (err) {
          const { OpenPaymentsClientError } = await import('@interledger/open-payments')
          const refused =
            err instanceof OpenPaymentsClientError && (err.status === 401 || err.status === 403)
          if (!refused) throw err
          tokens.delete(authServer)
        }
      }
      return undefined
    } catch (err) {
      logger.info({ err, receiver: url }, 'remote receiver could not be read')
      return undefined
    }
  }

  return {
    get(url, { fresh = false, requester } = {}) {
      const hit = cache.get(url)
      if (hit && !fresh && Date.now() - hit.at < opts.cacheTtlMs) return hit.value
      if (requester !== undefined && opts.budget && !opts.budget.spend(requester)) {
        logger.info({ receiver: url, requester }, 'remote receiver not read: fetch budget spent')
        return Promise.resolve(undefined)
      }
      const value = load(url)
      cache.delete(url)
      cache.set(url, { at: Date.now(), value })
      cache.trim()
      // A failed lookup is not remembered: the next quote tries again.
      void value.then(
        (v) => v === undefined && cache.get(url)?.value === value && cache.delete(url),
      )
      return value
    },
  }
}
