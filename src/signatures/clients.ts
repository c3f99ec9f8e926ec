import type { Config } from '../config.ts'
import type { Db } from '../db/database.ts'
import { isObject } from '../lib/is-object.ts'
import { BoundedMap } from '../lib/oldest-out.ts'
import type { ServerIdentity } from '../open-payments-client/identity.ts'
import type { FetchBudget } from '../outbound/budget.ts'
import { createOutbound, type Outbound } from '../outbound/fetch.ts'
import { getJson } from '../outbound/json.ts'
import { isEd25519PublicKey, type Jwk, toJwk } from '../wallet-addresses/keys.ts'
import {
  createLocalWalletAddresses,
  type LocalWalletAddresses,
} from '../wallet-addresses/local-cache.ts'
import { walletAddressDocument } from '../wallet-addresses/service.ts'
import { walletAddressPath } from '../wallet-addresses/urls.ts'

/** The fields of a client's wallet address document that the servers use. */
export interface ClientWalletAddress {
  id: string
  publicName?: string
  assetCode: string
  assetScale: number
  authServer: string
  resourceServer: string
}

/**
 * Who made us look (e.g. `ip:…`), or how to work it out: only a fetch needs it, so a request
 * served from a cache does not pay for it.
 */
export type Requester = string | (() => string)

/**
 * Client identities (wallet address URLs): their signing keys and documents. A fetch on behalf of
 * `requester` is charged to its fetch budget, and a requester whose budget is spent gets nothing
 * fetched.
 */
export interface ClientDirectory {
  key(
    walletAddressUrl: string,
    keyId: string,
    requester?: Requester,
  ): Promise<Jwk | 'unknown_key' | 'keys_unavailable'>
  walletAddress(
    walletAddressUrl: string,
    requester?: Requester,
  ): Promise<ClientWalletAddress | undefined>
}

export interface ClientDirectoryDeps {
  config: Config
  db: Db
  /** This server's own identity, a wallet address served from configuration. */
  server?: ServerIdentity
  /** How remote wallet addresses are fetched: by default under the configured policy. */
  outbound?: Outbound
  /** Caps the fetches each requester can cause. */
  budget?: FetchBudget
  /** Per request to a remote wallet address server. */
  timeoutMs?: number
  /** How long a fetched key set or document is used. */
  cacheTtlMs?: number
  /** The least time between two requests for one URL when refetching or retrying. */
  minRefreshIntervalMs?: number
  /** This server's own wallet addresses and keys (by default read through a cache of its own). */
  local?: LocalWalletAddresses
}

/** A key set or wallet address is a few hundred bytes; do not buffer whatever a server sends. */
const MAX_BODY_BYTES = 64 * 1024
/** Client URLs come from requests, so the caches must not grow without bound. */
const MAX_CACHED_URLS = 10_000

interface Entry<T> {
  at: number
  value: Promise<T | undefined>
  failed: boolean
}

type Location = { kind: 'local'; path: string } | { kind: 'remote' }

/**
 * Wallet addresses on our own origin are read from the database through `local`'s short cache
 * (LOCAL_CACHE_MAX_AGE_MS, and cleared by this process's own changes). Others are fetched over HTTP and cached briefly, failures included, so that clients naming a URL cannot
 * make us send it more than one request per minRefreshIntervalMs.
 */
export function createClientDirectory(deps: ClientDirectoryDeps): ClientDirectory {
  const { config } = deps
  const local = deps.local ?? createLocalWalletAddresses(deps.db)
  const outbound = deps.outbound ?? createOutbound(config.outbound.policy)
  const timeoutMs = deps.timeoutMs ?? config.outbound.timeoutMs
  const fetchJson = (url: string) => getJson(outbound, url, { timeoutMs, maxBytes: MAX_BODY_BYTES })
  const cacheTtlMs = deps.cacheTtlMs ?? 60_000
  const minRefreshIntervalMs = deps.minRefreshIntervalMs ?? 10_000
  const keySets = new BoundedMap<string, Entry<Jwk[]>>(MAX_CACHED_URLS)
  const documents = new BoundedMap<string, Entry<ClientWalletAddress>>(MAX_CACHED_URLS)

  /**
   * Concurrent callers share one request; the oldest fetch is evicted first. A requester over its
   * budget gets nothing, and nothing is cached for it, so others still get the URL fetched.
   */
  const cached = <T>(
    cache: BoundedMap<string, Entry<T>>,
    url: string,
    maxAgeMs: number,
    load: () => Promise<T | undefined>,
    requester: Requester | undefined,
  ): Promise<T | undefined> => {
    const hit = cache.get(url)
    if (hit && Date.now() - hit.at < (hit.failed ? minRefreshIntervalMs : maxAgeMs)) {
      return hit.value
    }
    const who = typeof requester === 'function' ? requester() : requester
    if (who !== undefined && deps.budget && !deps.budget.spend(who)) {
      return Promise.resolve(undefined)
    }
    const entry: Entry<T> = { at: Date.now(), value: load(), failed: false }
    void entry.value.then((v) => {
      entry.failed = v === undefined
    })
    cache.delete(url)
    cache.set(url, entry)
    cache.trim()
    return entry.value
  }

  const locate = (url: string): Location | undefined => {
    // Ours in our own spelling, the common case, without a parse (`walletAddressPath`).
    const path = walletAddressPath(config, url)
    if (path !== undefined) return { kind: 'local', path }
    if (!URL.canParse(url)) return undefined
    const u = new URL(url)
    if (u.origin === config.openPaymentsUrl) return undefined
    // The JWKS URL is built by appending to this one, as the Open Payments client does.
    const usable = (u.protocol === 'http:' || u.protocol === 'https:') && !/[?#]/.test(url)
    return usable ? { kind: 'remote' } : undefined
  }

  const remoteKeys = (url: string, maxAgeMs: number, requester: Requester | undefined) =>
    cached(
      keySets,
      url,
      maxAgeMs,
      async () => parseKeySet(await fetchJson(`${url}/jwks.json`)),
      requester,
    )

  return {
    async key(url, keyId, requester) {
      const location = locate(url)
      if (!location) return 'unknown_key'
      if (location.kind === 'local') {
        if (deps.server && url === deps.server.walletAddressUrl) {
          return deps.server.jwk.kid === keyId ? deps.server.jwk : 'unknown_key'
        }
        return (await local.activeKey(location.path, keyId)) ?? 'unknown_key'
      }
      let keys = await remoteKeys(url, cacheTtlMs, requester)
      let key = keys?.find((k) => k.kid === keyId)
      if (keys && !key) {
        // The client may have added a key since we fetched the set.
        keys = await remoteKeys(url, minRefreshIntervalMs, requester)
        key = keys?.find((k) => k.kid === keyId)
      }
      if (!keys) return 'keys_unavailable'
      return key ?? 'unknown_key'
    },

    async walletAddress(url, requester) {
      const location = locate(url)
      if (!location) return undefined
      if (location.kind === 'local') {
        const wa = await local.byPath(location.path)
        return wa?.status === 'active' ? walletAddressDocument(config, wa) : undefined
      }
      return cached(
        documents,
        url,
        cacheTtlMs,
        async () => parseWalletAddress(url, await fetchJson(url)),
        requester,
      )
    },
  }
}

const isHttpUrl = (v: unknown): v is string =>
  typeof v === 'string' && URL.canParse(v) && /^https?:$/.test(new URL(v).protocol)

/** A key set as the wallet address server spec allows it: Ed25519 keys only. */
function parseKeySet(body: unknown): Jwk[] | undefined {
  if (!isObject(body) || !Array.isArray(body.keys)) return undefined
  const keys: Jwk[] = []
  for (const k of body.keys) {
    if (
      !isObject(k) ||
      typeof k.kid !== 'string' ||
      k.kid === '' ||
      k.kty !== 'OKP' ||
      k.crv !== 'Ed25519' ||
      k.alg !== 'EdDSA' ||
      typeof k.x !== 'string' ||
      !isEd25519PublicKey(k.x)
    ) {
      return undefined
    }
    keys.push(toJwk(k.kid, k.x))
  }
  return keys
}

/** A wallet address document; one whose id names another URL is not this wallet address. */
function parseWalletAddress(url: string, body: unknown): ClientWalletAddress | undefined {
  if (!isObject(body)) return undefined
  const { id, publicName, assetCode, assetScale, authServer, resourceServer } = body
  if (
    id !== url ||
    (publicName !== undefined && typeof publicName !== 'string') ||
    typeof assetCode !== 'string' ||
    typeof assetScale !== 'number' ||
    !Number.isInteger(assetScale) ||
    assetScale < 0 ||
    assetScale > 255 ||
    !isHttpUrl(authServer) ||
    !isHttpUrl(resourceServer)
  ) {
    return undefined
  }
  return {
    id,
    ...(publicName !== undefined && { publicName }),
    assetCode,
    assetScale,
    authServer,
    resourceServer,
  }
}
