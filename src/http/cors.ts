import type { FastifyInstance } from 'fastify'

/**
 * Public Open Payments endpoints are called from browsers (wallet web apps, the Web Monetization
 * extension). They carry no cookies, so any origin may call them.
 */
export function allowCors(app: FastifyInstance): void {
  app.addHook('onRequest', async (req, reply) => {
    reply.header('access-control-allow-origin', '*')
    reply.header('access-control-expose-headers', 'x-request-id, www-authenticate, retry-after')
    if (req.method === 'OPTIONS' && req.headers['access-control-request-method']) {
      reply
        .header('access-control-allow-methods', 'GET, POST, DELETE, OPTIONS')
        .header(
          'access-control-allow-headers',
          'authorization, content-type, content-digest, content-length, signature, signature-input, idempotency-key',
        )
        .header('access-control-max-age', '600')
        .code(204)
        .send()
    }
  })
}
