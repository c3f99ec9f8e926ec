import type { FastifyInstance, FastifyRequest } from 'fastify'
import {
  deserializeIlpPrepare,
  IlpError,
  type IlpPrepare,
  serializeIlpReject,
  serializeIlpReply,
} from 'ilp-packet'
import type { Deps } from '../deps.ts'
import { createApp } from '../http/app.ts'
import { badRequest, HttpError } from '../lib/errors.ts'
import { createRateBuckets } from '../lib/rate-buckets.ts'
import { observeHttp } from '../metrics/http.ts'
import type { Peer } from '../peers/service.ts'
import { peerTokenCache } from '../peers/token-cache.ts'
import { createCredentialGuard, tooManyRequests } from '../rate-limit/hooks.ts'
import { createPipeline } from './pipeline.ts'
import type { StreamReceiver } from './stream-receiver.ts'

/** A Prepare carries at most 32 KiB of data; anything much larger is not one. */
const BODY_LIMIT = 64 * 1024
const OCTET_STREAM = 'application/octet-stream'

/**
 * The ILP listener: ILP-over-HTTP in synchronous mode (RFC-0035 draft 2, as Rafiki speaks it). A
 * peer posts a Prepare with its bearer token and gets the Fulfill or Reject as the 200 response
 * body; other statuses are HTTP-level failures in the usual error envelope.
 */
export function createIlpApp(deps: Deps, stream: StreamReceiver): FastifyInstance {
  const { config } = deps
  const app = createApp({
    logger: deps.logger.child({ listener: 'ilp' }),
    bodyLimit: BODY_LIMIT,
    trustProxy: config.trustProxy,
    outage: deps.outage,
  })
  observeHttp(app, deps.metrics, 'ilp')
  const pipeline = createPipeline(deps, stream)
  const peers = new WeakMap<FastifyRequest, Peer>()
  // Kept for a few seconds (src/peers/token-cache.ts): one read fewer per packet.
  const peerByToken = peerTokenCache(deps.db)
  const guard = createCredentialGuard(
    config.rateLimits.credentialFailures,
    tooManyRequests('too_many_requests'),
  )
  const packetsPerSecond = config.rateLimits.ilpPacketsPerSecond
  const packetBuckets =
    packetsPerSecond === 0
      ? undefined
      : createRateBuckets({ capacity: packetsPerSecond, windowMs: 1000 })

  app.addContentTypeParser(OCTET_STREAM, { parseAs: 'buffer' }, (_req, body, done) =>
    done(null, body),
  )

  // Before the body is read: a caller we do not know, or a body that cannot be a packet, costs
  // no more than its headers.
  const authenticate = async (req: FastifyRequest) => {
    guard.check(req)
    const token = /^Bearer (\S+)$/i.exec(req.headers.authorization ?? '')?.[1]
    const peer = token === undefined ? undefined : await peerByToken.peer(token)
    if (!peer) {
      // A wrong token is a guess; a missing one is not.
      if (token !== undefined) await guard.failed(req)
      throw new HttpError(401, 'unauthorized', 'unknown or missing bearer token', undefined, {
        'www-authenticate': 'Bearer',
      })
    }
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
    if (type !== OCTET_STREAM) throw badRequest(`content-type must be ${OCTET_STREAM}`)
    peers.set(req, peer)
  }

  for (const url of ['/ilp', '/']) {
    // Packets come by the thousand: per-request log lines would cost more than handling them.
    app.post(url, { onRequest: authenticate, logLevel: 'warn' }, async (req, reply) => {
      let prepare: IlpPrepare
      try {
        prepare = deserializeIlpPrepare(req.body as Buffer)
      } catch {
        throw badRequest('body is not an ILP Prepare')
      }
      const peer = peers.get(req)!
      // A peer over its packet rate gets T05, which senders answer by slowing down.
      if (packetBuckets && packetBuckets.take(peer.id) > 0) {
        return reply.type(OCTET_STREAM).send(
          serializeIlpReject({
            code: IlpError.T05_RATE_LIMITED,
            triggeredBy: config.openPayments.ilpAddress,
            message: 'rate limit exceeded',
            data: Buffer.alloc(0),
          }),
        )
      }
      const result = await pipeline.handlePrepare(prepare, peer)
      return reply.type(OCTET_STREAM).send(serializeIlpReply(result))
    })
  }
  return app
}
