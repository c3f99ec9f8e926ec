import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { HttpError } from '../lib/errors.ts'
import { createRateBuckets } from '../lib/rate-buckets.ts'
import { ipKey } from './keys.ts'

/** A listener's 429 in its own error envelope, with `Retry-After`. */
export type TooMany = (retryAfterSeconds: number) => HttpError

declare module 'fastify' {
  interface FastifyRequest {
    /** Counts the request against the verified client's limit; throws the listener's 429 beyond it. */
    limitClient(client: string): void
  }
}

/**
 * Refuses requests beyond `perMinute` per client address (IPv6 by /64) before any work is done,
 * optionally only on some paths. With `html`, browsers (Accept: text/html) get a page instead of
 * the JSON envelope. 0 is no limit.
 */
export function limitByIp(
  app: FastifyInstance,
  perMinute: number,
  tooMany: TooMany,
  opts: { only?: (path: string) => boolean; html?: (retryAfterSeconds: number) => string } = {},
): void {
  if (perMinute === 0) return
  const buckets = createRateBuckets({ capacity: perMinute, windowMs: 60_000 })
  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    if (opts.only && !opts.only(req.url.split('?', 1)[0]!)) return
    const wait = buckets.take(ipKey(req.ip))
    if (wait === 0) return
    if (opts.html && (req.headers.accept ?? '').includes('text/html')) {
      return reply
        .code(429)
        .header('retry-after', String(wait))
        .type('text/html; charset=utf-8')
        .send(opts.html(wait))
    }
    throw tooMany(wait)
  })
}

/**
 * Gives the listener's requests `limitClient`, which routes call once the client is verified (its
 * signature checked): `perMinute` per client. 0 is no limit.
 */
export function limitByClient(app: FastifyInstance, perMinute: number, tooMany: TooMany): void {
  const buckets =
    perMinute === 0 ? undefined : createRateBuckets({ capacity: perMinute, windowMs: 60_000 })
  app.decorateRequest('limitClient', (client: string) => {
    const wait = buckets?.take(client) ?? 0
    if (wait > 0) throw tooMany(wait)
  })
}

/** Failures are forgiven at `failures` per this window. */
const CREDENTIAL_WINDOW_MS = 15 * 60_000
/** Once half the allowance is spent, each further failure is answered this much later. */
const SLOW_DOWN_MS = 1000

export interface CredentialGuard {
  /** Before the credential is looked at: an address that used up its failures is refused. */
  check(req: FastifyRequest): void
  /** After a bad credential: counts it, and past half the allowance slows the answer down. */
  failed(req: FastifyRequest): Promise<void>
}

/**
 * Bad API keys and peer tokens per client address: `failures` per 15 minutes, the second half of
 * them slowed down, then every request from the address is refused until the allowance refills
 * (one failure per 15 min / `failures`). A correct credential is not let through meanwhile, or the
 * refusal would tell a guesser which guess was right. 0 is no limit.
 */
export function createCredentialGuard(failures: number, tooMany: TooMany): CredentialGuard {
  if (failures === 0) return { check: () => {}, failed: async () => {} }
  const buckets = createRateBuckets({ capacity: failures, windowMs: CREDENTIAL_WINDOW_MS })
  return {
    check(req) {
      const wait = buckets.waitSeconds(ipKey(req.ip))
      if (wait > 0) throw tooMany(wait)
    },
    async failed(req) {
      const key = ipKey(req.ip)
      buckets.take(key)
      if (buckets.tokens(key) < failures / 2) await sleep(SLOW_DOWN_MS)
    },
  }
}

/** The 429 of a listener whose error code for it is `code`. */
export const tooManyRequests =
  (code: string): TooMany =>
  (retryAfterSeconds) =>
    new HttpError(429, code, `too many requests: retry after ${retryAfterSeconds} s`, undefined, {
      'retry-after': String(retryAfterSeconds),
    })
