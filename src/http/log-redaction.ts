import type { FastifyRequest } from 'fastify'
import { stdSerializers } from 'pino'

/** Query parameters whose values are safe and useful in a log; every other value is redacted. */
const SAFE_QUERY = new Set([
  'first',
  'last',
  'cursor',
  'wallet-address',
  'days',
  'asset',
  'assetId',
  'state',
  'kind',
  'walletAddressId',
  'finalization',
  'notice',
  'count',
])

const REDACTED = '[redacted]'

/**
 * A request URL fit for the log: the interaction nonce (`/interact/{id}/{nonce}`) is a bearer
 * secret of the browser flow, and query values may be signatures (`sig`), references or return
 * URLs that embed the nonce, so only known-harmless query values are kept.
 */
export function redactUrl(url: string): string {
  const q = url.indexOf('?')
  const path = (q === -1 ? url : url.slice(0, q)).replace(
    /^(\/+interact\/[^/]*\/)[^/]+/,
    `$1${REDACTED}`,
  )
  if (q === -1) return path
  const query = [...new URLSearchParams(url.slice(q + 1))]
    .map(
      ([k, v]) =>
        `${encodeURIComponent(k)}=${SAFE_QUERY.has(k) ? encodeURIComponent(v) : REDACTED}`,
    )
    .join('&')
  return `${path}?${query}`
}

/** Fastify's request serializer, with the URL redacted (headers are never logged). */
export function serializeRequest(req: FastifyRequest) {
  return {
    method: req.method,
    url: redactUrl(req.url),
    host: req.host,
    remoteAddress: req.ip,
    remotePort: req.socket?.remotePort,
  }
}

/**
 * pino's error serializer, without PostgreSQL's `detail`: for a constraint that failed it quotes
 * the whole row ("Failing row contains (…)"), secrets included (a webhook endpoint's, a
 * core-banking hook's). The code, the constraint and the message stay.
 */
export function serializeError(err: unknown): unknown {
  const out = stdSerializers.err(err as Error)
  if (out && typeof out === 'object' && 'detail' in out) {
    const { detail: _, ...rest } = out as Record<string, unknown>
    return rest
  }
  return out
}
