/**
 * GETs a JSON document from a server we do not control: bounded in time and size, and never
 * rejecting — undefined on any network error, timeout, non-2xx, oversized or unparseable body.
 */
export async function fetchJson(
  fetchFn: typeof fetch,
  url: string | URL,
  opts: { timeoutMs: number; maxBytes: number },
): Promise<unknown> {
  try {
    const res = await fetchFn(url, {
      headers: { accept: 'application/json' },
      signal: AbortSignal.timeout(opts.timeoutMs),
    })
    if (!res.ok || !res.body) {
      await res.body?.cancel()
      return undefined
    }
    const chunks: Uint8Array[] = []
    let size = 0
    for await (const chunk of res.body) {
      size += chunk.byteLength
      if (size > opts.maxBytes) return undefined
      chunks.push(chunk)
    }
    return JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    return undefined
  }
}

export const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)
