import type { Outbound } from './fetch.ts'

/**
 * GETs a JSON document from a server we do not control, bounded in time and size; undefined on a
 * refusal, any failure, a non-2xx status (a redirect included) or a body that is not JSON.
 */
export async function getJson(
  outbound: Outbound,
  url: string | URL,
  opts: { timeoutMs: number; maxBytes: number },
): Promise<unknown> {
  const res = await outbound(url, { headers: { accept: 'application/json' }, ...opts })
  if (res.kind !== 'response' || res.status < 200 || res.status > 299) return undefined
  try {
    return JSON.parse(res.body.toString('utf8'))
  } catch {
    return undefined
  }
}
