import { createRateBuckets } from '../lib/rate-buckets.ts'

/**
 * A cap on the requests one requester (a client, or an IP address before the client is known) can
 * make the server send to URLs it names. Only requests that actually leave are charged: a URL
 * fetched recently is answered from cache for free, so in effect this caps how many new URLs a
 * requester can make the server fetch.
 */
export interface FetchBudget {
  /** Charges one fetch to `requester`; false when its budget is spent (nothing may be sent). */
  spend(requester: string): boolean
}

/** `perMinute` fetches per requester per minute, in bursts; 0 is no cap. */
export function createFetchBudget(perMinute: number): FetchBudget {
  if (perMinute === 0) return { spend: () => true }
  const buckets = createRateBuckets({ capacity: perMinute, windowMs: 60_000 })
  return { spend: (requester) => buckets.take(requester) === 0 }
}
