import {
  type AuthenticatedClient,
  createAuthenticatedClient,
  OpenPaymentsClientError,
} from '@interledger/open-payments'
import type { Deps } from '../deps.ts'

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
  /** `fresh` reads past the cache (what a payment is about to rely on), and caches the result. */
  get(url: string, opts?: { fresh?: boolean }): Promise<RemoteIncomingPayment | undefined>
}

/**
 * Reads incoming payments at other ASEs as an Open Payments client, with the server's own identity:
 * the public view names the receiver's authorization server, a non-interactive `read-all` grant
 * there gives a token (cached until it expires, dropped and renewed once when refused), and the
 * authenticated read gives amounts and the `ilp` method. Results are cached for `cacheTtlMs` (the
 * quote's life), so a quote and its payment read the receiver once.
 */
export function createRemoteReceivers(deps: Deps, opts: { cacheTtlMs: number }): RemoteReceivers {
  const { identity, logger } = deps
  let client: Promise<AuthenticatedClient> | undefined
  const tokens = new Map<string, { value: string; expiresAt: number }>()
  const cache = new Map<string, { at: number; value: Promise<RemoteIncomingPayment | undefined> }>()

  const opClient = () => {
    client ??= createAuthenticatedClient({
      walletAddressUrl: identity.walletAddressUrl,
      privateKey: identity.privateKey,
      keyId: identity.jwk.kid,
      validateResponses: true,
      logLevel: 'silent',
    })
    return client
  }

  const token = async (c: AuthenticatedClient, authServer: string): Promise<string | undefined> => {
    const cached = tokens.get(authServer)
    if (cached && cached.expiresAt > Date.now()) return cached.value
    const grant = await c.grant.request(
      { url: authServer },
      { access_token: { access: [{ type: 'incoming-payment', actions: ['read-all'] }] } },
    )
    if (!('access_token' in grant) || !grant.access_token) return undefined
    const lifetime = (grant.access_token.expires_in ?? 60) * 1000
    // Renew a little early so a token never expires between our check and their check.
    tokens.set(authServer, {
      value: grant.access_token.value,
      expiresAt: Date.now() + lifetime * 0.9,
    })
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
          return {
            url,
            asset: { code: ip.receivedAmount.assetCode, scale: ip.receivedAmount.assetScale },
            incomingAmount: ip.incomingAmount ? BigInt(ip.incomingAmount.value) : null,
            receivedAmount: BigInt(ip.receivedAmount.value),
            expiresAt: ip.expiresAt ? new Date(ip.expiresAt) : undefined,
            completed: ip.completed,
            ilp: method && { ilpAddress: method.ilpAddress, sharedSecret: method.sharedSecret },
          }
        } catch (err) {
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
    get(url, { fresh = false } = {}) {
      const hit = cache.get(url)
      if (hit && !fresh && Date.now() - hit.at < opts.cacheTtlMs) return hit.value
      const value = load(url)
      cache.set(url, { at: Date.now(), value })
      // A failed lookup is not remembered: the next quote tries again.
      void value.then(
        (v) => v === undefined && cache.get(url)?.value === value && cache.delete(url),
      )
      for (const [k, v] of cache) if (Date.now() - v.at >= opts.cacheTtlMs) cache.delete(k)
      return value
    },
  }
}
