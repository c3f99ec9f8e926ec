import type { FastifyInstance } from 'fastify'
import type { Metrics } from './metrics.ts'

/**
 * Counts and times every response of a listener. The route label is the matched pattern
 * (`/incoming-payments/:id`), never the URL, which carries ids and, on some routes, secrets.
 */
export function observeHttp(app: FastifyInstance, metrics: Metrics, listener: string): void {
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? '(unmatched)'
    const method = req.method
    metrics.httpRequests.inc({ listener, method, route, status: String(reply.statusCode) })
    metrics.httpDuration.observe({ listener, method, route }, reply.elapsedTime / 1000)
  })
}
