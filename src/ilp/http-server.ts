import type { FastifyInstance, FastifyRequest } from 'fastify'
import { deserializeIlpPrepare, type IlpPrepare, serializeIlpReply } from 'ilp-packet'
import type { Deps } from '../deps.ts'
import { createApp } from '../http/app.ts'
import { badRequest, HttpError } from '../lib/errors.ts'
import { observeHttp } from '../metrics/http.ts'
import { type Peer, peerByIncomingToken } from '../peers/service.ts'
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
  const app = createApp({ logger: deps.logger.child({ listener: 'ilp' }), bodyLimit: BODY_LIMIT })
  observeHttp(app, deps.metrics, 'ilp')
  const pipeline = createPipeline(deps, stream)
  const peers = new WeakMap<FastifyRequest, Peer>()

  app.addContentTypeParser(OCTET_STREAM, { parseAs: 'buffer' }, (_req, body, done) =>
    done(null, body),
  )

  // Before the body is read: a caller we do not know, or a body that cannot be a packet, costs
  // no more than its headers.
  const authenticate = async (req: FastifyRequest) => {
    const token = /^Bearer (\S+)$/i.exec(req.headers.authorization ?? '')?.[1]
    const peer = token === undefined ? undefined : await peerByIncomingToken(deps.db, token)
    if (!peer) {
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
      const result = await pipeline.handlePrepare(prepare, peers.get(req)!)
      return reply.type(OCTET_STREAM).send(serializeIlpReply(result))
    })
  }
  return app
}
