import { isObject } from '../lib/is-object.ts'
import { BoundedMap } from '../lib/oldest-out.ts'
import { createOutbound, OPERATOR_POLICY, type Outbound } from '../outbound/fetch.ts'
import { getJson } from '../outbound/json.ts'
import { invert, parseRate, type Ratio, ratio } from './ratio.ts'

/** Units of `quote` per one unit of `base`, in major units (ignore scales; convertAmount handles them). */
export interface RatesService {
  rate(base: string, quote: string): Promise<Ratio | undefined>
}

export type RatesSource =
  | { kind: 'static'; table: Record<string, Record<string, string | number>> }
  | { kind: 'http'; url: string; timeoutMs: number; cacheTtlMs: number }

type Lookup = (base: string, quote: string) => Promise<Ratio | undefined>

/** A failed fetch is retried after at most this long, so a blip in the rates feed does not last. */
const FAILURE_TTL_MS = 1000
/** A table for every ISO currency is a few kilobytes; do not buffer whatever a server sends. */
const MAX_BODY_BYTES = 1024 * 1024
/** Asset codes can come from remote wallet addresses, so the cache must not grow without bound. */
const MAX_CACHED_BASES = 1000

/** The rates URL is the operator's: fetched under the operator policy. */
export function createRatesService(
  source: RatesSource,
  outbound: Outbound = createOutbound(OPERATOR_POLICY),
): RatesService {
  const lookup = source.kind === 'static' ? staticRates(source.table) : httpRates(source, outbound)
  return {
    async rate(base, quote) {
      // No lookup at all, so a missing or failing feed never blocks a same-asset payment.
      return base === quote ? ratio(1n, 1n) : lookup(base, quote)
    },
  }
}

/** Validates a static table from configuration: its shape, and that every rate parses exactly. */
export function parseStaticTable(
  json: string,
): Record<string, Record<string, string | number>> | undefined {
  let value: unknown
  try {
    value = JSON.parse(json)
  } catch {
    return undefined
  }
  return parseTable(value) && (value as Record<string, Record<string, string | number>>)
}

/** A pair is answered directly, else as the exact inverse of the reverse pair. */
function staticRates(source: Record<string, Record<string, string | number>>): Lookup {
  // A bad table is a configuration error, found at start-up rather than on the first payment.
  const table = parseTable(source)
  if (!table) throw new RangeError('static rates table has a rate that is not a positive decimal')
  return async (base, quote) => {
    const direct = table.get(base)?.get(quote)
    if (direct) return direct
    const reverse = table.get(quote)?.get(base)
    return reverse && invert(reverse)
  }
}

interface CacheEntry {
  quotes: Promise<Map<string, Ratio> | undefined>
  expiresAt: number
}

/**
 * Rafiki's exchange-rates contract: GET `url?base=USD` answers `{ base: 'USD', rates: { EUR: 0.9 } }`.
 * Only the base's own table is read: a pair missing from it is unknown, even if the feed would list
 * the reverse under the other base, which keeps one request per base and one source of truth per pair.
 */
function httpRates(source: Extract<RatesSource, { kind: 'http' }>, outbound: Outbound): Lookup {
  // Parsed once, so a bad URL fails at start-up.
  const url = new URL(source.url)
  const cache = new BoundedMap<string, CacheEntry>(MAX_CACHED_BASES)

  /** Concurrent callers share one request; the oldest fetch is evicted first. */
  const quotesFor = (base: string) => {
    const hit = cache.get(base)
    if (hit && Date.now() < hit.expiresAt) return hit.quotes
    // Never expires while in flight, so callers during a slow fetch wait for it instead of adding one.
    const entry: CacheEntry = {
      quotes: fetchQuotes(outbound, url, base, source.timeoutMs),
      expiresAt: Number.POSITIVE_INFINITY,
    }
    void entry.quotes.then((quotes) => {
      const ttl = quotes ? source.cacheTtlMs : Math.min(FAILURE_TTL_MS, source.cacheTtlMs)
      entry.expiresAt = Date.now() + ttl
    })
    cache.delete(base)
    cache.set(base, entry)
    cache.trim()
    return entry.quotes
  }

  return async (base, quote) => (await quotesFor(base))?.get(quote)
}

/** Undefined on any failure (see getJson) or a body outside the contract. */
async function fetchQuotes(
  outbound: Outbound,
  url: URL,
  base: string,
  timeoutMs: number,
): Promise<Map<string, Ratio> | undefined> {
  const target = new URL(url)
  target.searchParams.set('base', base)
  const body = await getJson(outbound, target, { timeoutMs, maxBytes: MAX_BODY_BYTES })
  return isObject(body) && body.base === base ? parseQuotes(body.rates) : undefined
}

/** `{ "EUR": "0.9", "JPY": 150 }` → exact ratios; undefined if any entry is not a positive decimal. */
function parseQuotes(value: unknown): Map<string, Ratio> | undefined {
  if (!isObject(value)) return undefined
  const quotes = new Map<string, Ratio>()
  for (const [code, rate] of Object.entries(value)) {
    const parsed =
      typeof rate === 'string' || typeof rate === 'number' ? parseRate(rate) : undefined
    if (!parsed) return undefined
    quotes.set(code, parsed)
  }
  return quotes
}

function parseTable(value: unknown): Map<string, Map<string, Ratio>> | undefined {
  if (!isObject(value)) return undefined
  const table = new Map<string, Map<string, Ratio>>()
  for (const [base, entries] of Object.entries(value)) {
    const quotes = parseQuotes(entries)
    if (!quotes) return undefined
    table.set(base, quotes)
  }
  return table
}
