/** What a receiver did with one attempt. */
export interface AttemptResult {
  delivered: boolean
  statusCode?: number
  error?: string
  /** The start of the response body as text, for the operator. */
  excerpt?: string
  durationMs: number
}

/** At most this much of a response is read; the rest is never downloaded. */
const MAX_BODY_BYTES = 4096
const MAX_EXCERPT_CHARS = 1024

/**
 * POSTs one webhook. Endpoints are configured by the operator, so they are trusted, but every call
 * is bounded: one timeout covers connecting, the answer and reading it, at most a few KiB of the
 * body are read, and redirects are not followed (a 3xx is a failure). Any 2xx is success. Never
 * throws.
 */
export async function postWebhook(
  url: string,
  headers: Record<string, string>,
  body: string,
  opts: { timeoutMs: number; interrupt: AbortSignal },
): Promise<AttemptResult> {
  const started = performance.now()
  const signal = AbortSignal.any([AbortSignal.timeout(opts.timeoutMs), opts.interrupt])
  const done = (r: Omit<AttemptResult, 'durationMs'>): AttemptResult => ({
    ...r,
    durationMs: Math.round(performance.now() - started),
  })
  let res: Response
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'open-payments-server-webhooks',
        ...headers,
      },
      body,
      redirect: 'manual',
      signal,
    })
  } catch (err) {
    return done({ delivered: false, error: describe(err, signal, opts.interrupt) })
  }
  const delivered = res.status >= 200 && res.status < 300
  const excerpt = await readStart(res).catch(() => undefined)
  return done({
    delivered,
    statusCode: res.status,
    ...(!delivered && { error: `HTTP ${res.status}` }),
    ...(excerpt && { excerpt }),
  })
}

async function readStart(res: Response): Promise<string | undefined> {
  if (!res.body) return undefined
  const reader = res.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  try {
    while (size < MAX_BODY_BYTES) {
      const { done, value } = await reader.read()
      if (done) break
      chunks.push(value)
      size += value.byteLength
    }
  } finally {
    await reader.cancel().catch(() => {})
  }
  // Whatever the receiver sent, stored as text: invalid UTF-8 becomes U+FFFD, NUL is dropped.
  const text = Buffer.concat(chunks)
    .subarray(0, MAX_BODY_BYTES)
    .toString('utf8')
    .replaceAll('\u0000', '')
  return text.slice(0, MAX_EXCERPT_CHARS) || undefined
}

function describe(err: unknown, signal: AbortSignal, interrupt: AbortSignal): string {
  if (interrupt.aborted) return 'interrupted by shutdown'
  if (signal.aborted) return 'timed out'
  const cause = (err as { cause?: { code?: string; message?: string } }).cause
  return cause?.code ?? cause?.message ?? (err as Error).message ?? 'request failed'
}
