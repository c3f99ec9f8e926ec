import { randomUUID } from 'node:crypto'
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify'
import type { Logger } from 'pino'
import { isDatabaseUnreachable, type OutageMonitor, RETRY_AFTER_SECONDS } from '../db/outage.ts'
import { HttpError } from '../lib/errors.ts'
import { guardInput } from './input-guard.ts'
import { serializeError, serializeRequest } from './log-redaction.ts'
import { createSerializerCompiler } from './serialization.ts'
import { createValidatorCompiler, describeValidationError } from './validation.ts'

declare module 'fastify' {
  interface FastifyRequest {
    /** The exact request body bytes, for Content-Digest verification. */
    rawBody?: Buffer
  }
}

export interface AppOptions {
  logger: Logger
  /** How an error's `code` is rendered: Open Payments clients expect the status as a string. */
  errorCode?: (err: HttpError) => string
  bodyLimit?: number
  /** Told of database outages, so that they are logged once (the response is a 503 either way). */
  outage?: OutageMonitor
  /** Fastify's `trustProxy`: whether `req.ip` comes from `X-Forwarded-For` (TRUST_PROXY). */
  trustProxy?: boolean | string[]
}

export interface ErrorBody {
  error: { code: string; description: string; details?: Record<string, unknown> }
}

/**
 * A Fastify instance with what every listener shares: request ids, a JSON parser that keeps the raw
 * bytes and accepts an empty body, strict validation, and one error envelope for every failure.
 */
export function createApp(opts: AppOptions): FastifyInstance {
  const app = Fastify({
    // Request logs carry a redacted URL: nonces and signed query values are secrets.
    loggerInstance: opts.logger.child(
      {},
      { serializers: { req: serializeRequest, err: serializeError } },
    ),
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    bodyLimit: opts.bodyLimit ?? 256 * 1024,
    connectionTimeout: 30_000,
    requestTimeout: 30_000,
    // Longer than any client's or proxy's idle timeout (undici 4 s, load balancers 60 s), so the
    // client always closes an idle connection first: a server closing it first races the client's
    // next request on it, which then fails with a reset. Idle connections close at once on stop.
    keepAliveTimeout: 72_000,
    return503OnClosing: true,
    trustProxy: opts.trustProxy ?? false,
    routerOptions: { ignoreTrailingSlash: false, maxParamLength: 500 },
  }) as unknown as FastifyInstance
  const errorCode = opts.errorCode ?? ((e: HttpError) => e.code)

  app.setValidatorCompiler(createValidatorCompiler())
  app.setSerializerCompiler(createSerializerCompiler())

  const parseJson = app.getDefaultJsonParser('error', 'error')
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
    const raw = body as Buffer
    req.rawBody = raw
    // Official clients send `Content-Type: application/json` with an empty body on bodiless POSTs.
    if (raw.length === 0) return done(null, undefined)
    parseJson(req, raw.toString('utf8'), done)
  })

  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id)
  })
  guardInput(app)

  const send = (reply: FastifyReply, err: HttpError) => {
    const body: ErrorBody = {
      error: {
        code: errorCode(err),
        description: err.message,
        ...(err.details && { details: err.details }),
      },
    }
    if (err.headers) reply.headers(err.headers)
    return reply.code(err.statusCode).type('application/json').send(body)
  }

  app.setNotFoundHandler((req, reply) =>
    send(
      reply,
      new HttpError(404, 'not_found', `no route for ${req.method} ${req.url.split('?')[0]}`),
    ),
  )

  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err instanceof HttpError) return send(reply, err)
    if (err.validation) {
      const first = err.validation[0]
      const { field, message } = first
        ? describeValidationError(err.validationContext ?? 'request', first as never)
        : { field: 'request', message: err.message }
      return send(reply, new HttpError(400, 'invalid_request', message, { field }))
    }
    const status = err.statusCode ?? 500
    if (status >= 400 && status < 500) {
      return send(
        reply,
        new HttpError(status, clientErrorCode(status, err), clientErrorMessage(err)),
      )
    }
    if (isDatabaseUnreachable(err)) {
      opts.outage?.noted(err)
      return send(reply, databaseUnavailable())
    }
    req.log.error({ err }, 'unhandled error')
    return send(reply, new HttpError(500, 'internal_error', 'internal server error'))
  })

  return app
}

/** While the database is unreachable: try again shortly (every listener, in its own envelope). */
function databaseUnavailable(): HttpError {
  return new HttpError(
    503,
    'service_unavailable',
    'temporarily unavailable; try again shortly',
    undefined,
    { 'retry-after': String(RETRY_AFTER_SECONDS) },
  )
}

function clientErrorCode(status: number, err: FastifyError): string {
  if (status === 413) return 'payload_too_large'
  if (status === 415) return 'unsupported_media_type'
  if (err.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || err.name === 'SyntaxError')
    return 'invalid_json'
  return 'invalid_request'
}

function clientErrorMessage(err: FastifyError): string {
  if (err.name === 'SyntaxError') return 'request body is not valid JSON'
  return err.message
}
