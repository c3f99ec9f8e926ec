import { isUtf8 } from 'node:buffer'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { Db } from '../db/database.ts'
import { HttpError } from '../lib/errors.ts'
import { parseIdempotencyKey, requestFingerprint } from './key.ts'
import { type Claim, claimKey, completeKey, releaseKey } from './store.ts'

export { deleteExpiredKeys } from './store.ts'

/**
 * Requests some registration already took charge of: when a listener-wide registration and one of
 * a nested context both apply, the outer one (whose hook runs first) handles the key alone.
 */
const handled = new WeakSet<FastifyRequest>()

export interface IdempotencyOptions {
  db: Db
  /** How long a key is remembered. */
  ttlSeconds: number
  /** How long an in-progress key blocks retries before it may be taken over (a crashed request). */
  lockSeconds: number
  /** Who the key belongs to, known only after authentication (e.g. the token's client); keys never cross scopes. */
  scope: (req: FastifyRequest) => string | undefined
  /** The methods a key applies to (default: POST). */
  methods?: readonly string[]
}

/**
 * Registers hooks on `app` (inside an encapsulated plugin context, or on a whole listener) so that
 * every POST (or other method in `methods`) carrying Idempotency-Key is idempotent: the first
 * response (unless a 5xx) is stored and replayed to retries of the same request, and a key reused
 * for another request is refused.
 */
export function idempotency(app: FastifyInstance, opts: IdempotencyOptions): void {
  const claims = new WeakMap<FastifyRequest, Claim>()
  const methods = new Set(opts.methods ?? ['POST'])

  app.addHook('preHandler', async (req, reply) => {
    const header = req.headers['idempotency-key']
    if (!methods.has(req.method) || header === undefined || handled.has(req)) return
    handled.add(req)
    const key = parseIdempotencyKey(header)
    const scope = opts.scope(req)
    if (scope === undefined) return
    const result = await claimKey(opts.db, {
      scope,
      key,
      fingerprint: requestFingerprint(req),
      ttlSeconds: opts.ttlSeconds,
      lockSeconds: opts.lockSeconds,
    })
    switch (result.kind) {
      case 'claimed':
        claims.set(req, result.claim)
        return
      case 'replay': {
        const { status, contentType, body } = result.response
        if (contentType !== null) reply.header('content-type', contentType)
        return reply
          .code(status)
          .header('idempotent-replayed', 'true')
          .send(body ?? undefined)
      }
      case 'mismatch':
        throw new HttpError(
          422,
          'invalid_request',
          'Idempotency-Key was used with a different request',
        )
      case 'in_progress':
        throw new HttpError(409, 'conflict', 'a request with this Idempotency-Key is in progress')
    }
  })

  app.addHook('onSend', async (req, reply, payload) => {
    const claim = claims.get(req)
    if (!claim) return payload
    claims.delete(req)
    const body = bodyText(payload)
    try {
      // A server error may be transient, and a streamed or binary body cannot be kept as text:
      // forget the key so that a retry runs the handler again.
      const owned =
        reply.statusCode >= 500 || body === undefined
          ? await releaseKey(opts.db, claim)
          : await completeKey(opts.db, claim, {
              status: reply.statusCode,
              contentType: contentType(reply.getHeader('content-type')),
              body,
            })
      if (!owned) req.log.warn({ key: claim.key }, 'Idempotency-Key was taken over by a retry')
    } catch (err) {
      // The handler's work is done; the client gets its response even if it cannot be remembered.
      // The key stays in progress until its lock lapses, then a retry runs the handler again.
      req.log.error({ err, key: claim.key }, 'could not store the idempotent response')
    }
    return payload
  })
}

/** The serialized body as text; undefined when it cannot be stored (a stream, or binary bytes). */
function bodyText(payload: unknown): string | null | undefined {
  if (payload === null || payload === undefined) return null
  if (typeof payload === 'string') return payload
  if (Buffer.isBuffer(payload) && isUtf8(payload)) return payload.toString('utf8')
  return undefined
}

function contentType(value: string | number | string[] | undefined): string | null {
  return value === undefined ? null : String(value)
}
