import type { Config } from '../config.ts'
import type { Db } from '../db/database.ts'
import { fetchJson, isObject } from '../lib/fetch-json.ts'
import type { ServerIdentity } from '../open-payments-client/identity.ts'
import { findActiveKey, isEd25519PublicKey, type Jwk, toJwk } from '../wallet-addresses/keys.ts'
import { findActiveByUrl, walletAddressDocument } from '../wallet-addresses/service.ts'
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

/** Client identities (wallet address URLs): their signing keys and documents. */
export interface ClientDirectory {
  key(walletAddressUrl: string, keyId: string): Promise<Jwk | 'unknown_key' | 'keys_unavailable'>
  walletAddress(walletAddressUrl: string): Promise<ClientWalletAddress | undefined>
}

export interface ClientDirectoryDeps {
  config: Config
  db: Db
  /** This server's own identity, a wallet address served from configuration. */
  server?: ServerIdentity
  fetch?: typeof fetch
  /** Per request to a remote wallet address server. */
  timeoutMs?: number
  /** How long a fetched key set or document is used. */
  cacheTtlMs?: number
  /** The least time between two requests for one URL when refetching or retrying. */
  minRefreshIntervalMs?: number
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
 * Wallet addresses on our own origin are read from the database, which is always current. Others
 * are fetched over HTTP and cached briefly, failures included, so that clients naming a URL cannot
 * make us send it more than one request per minRefreshIntervalMs.
 */
export function createClientDirectory(deps: ClientDirectoryDeps): ClientDirectory {
  const { config, db } = deps
  const fetchFn = deps.fetch ?? fetch
  const timeoutMs = deps.timeoutMs ?? 3000
  const getJson = (url: string) => fetchJson(fetchFn, url, { timeoutMs, maxBytes: MAX_BODY_BYTES })
  const cacheTtlMs = deps.cacheTtlMs ?? 60_000
  const minRefreshIntervalMs = deps.minRefreshIntervalMs ?? 10_000
  const keySets = new Map<string, Entry<Jwk[]>>()
  const documents = new Map<string, Entry<ClientWalletAddress>>()

  /** Concurrent callers share one request; the oldest fetch is evicted first. */
  const cached = <T>(
    cache: Map<string, Entry<T>>,
    url: string,
    maxAgeMs: number,
    load: () => Promise<T | undefined>,
  ): Promise<T | undefined> => {
    const hit = cache.get(url)
    if (hit && Date.now() - hit.at < (hit.failed ? minRefreshIntervalMs : maxAgeMs)) {
      return hit.value
    }
    const entry: Entry<T> = { at: Date.now(), value: load(), failed: false }
    void entry.value.then((v) => {
      entry.failed = v === undefined
    })
    cache.delete(url)
    cache.set(url, entry)
    if (cache.size > MAX_CACHED_URLS) cache.delete(cache.keys().next().value!)
    return entry.value
  }

  const locate = (url: string): Location | undefined => {
    if (!URL.canParse(url)) return undefined
    const u = new URL(url)
    if (u.origin === config.openPaymentsUrl) {
      const path = walletAddressPath(config, url)
      return path === undefined ? undefined : { kind: 'local', path }
    }
    // The JWKS URL is built by appending to this one, as the Open Payments client does.
    const usable = (u.protocol === 'http:' || u.protocol === 'https:') && !/[?#]/.test(url)
    return usable ? { kind: 'remote' } : undefined
  }

  const remoteKeys = (url: string, maxAgeMs: number) =>
    cached(keySets, url, maxAgeMs, async () => parseKeySet(await getJson(`${url}/jwks.json`)))

  return {
    async key(url, keyId) {
      const location = locate(url)
      if (!location) return 'unknown_key'
      if (location.kind === 'local') {
        if (deps.server && url === deps.server.walletAddressUrl) {
          return deps.server.jwk.kid === keyId ? deps.server.jwk : 'unknown_key'
        }
        return (await findActiveKey(db, location.path, keyId)) ?? 'unknown_key'
      }
      let keys = await remoteKeys(url, cacheTtlMs)
      let key = keys?.find((k) => k.kid === keyId)
      if (keys && !key) {
        // The client may have added a key since we fetched the set.
        keys = await remoteKeys(url, minRefreshIntervalMs)
        key = keys?.find((k) => k.kid === keyId)
      }
      if (!keys) return 'keys_unavailable'
      return key ?? 'unknown_key'
    },

    async walletAddress(url) {
      const location = locate(url)
      if (!location) return undefined
      if (location.kind === 'local') {
        const wa = await findActiveByUrl(db, config, url)
        return wa && walletAddressDocument(config, wa)
      }
      return cached(documents, url, cacheTtlMs, async () =>
        parseWalletAddress(url, await getJson(url)),
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
