import type { FastifyInstance } from 'fastify'
import type { Deps } from '../deps.ts'
import { idempotency } from '../idempotency/plugin.ts'
import type { StreamReceiver } from '../ilp/stream-receiver.ts'
import { incomingPaymentRoutes } from '../incoming-payments/routes.ts'
import { outgoingPaymentRoutes } from '../outgoing-payments/routes.ts'
import type { PaymentWorker } from '../outgoing-payments/worker.ts'
import { quoteRoutes } from '../quotes/routes.ts'
import { protectRoutes } from './authorize.ts'

/**
 * The resource server: every route authorized by its GNAP token and signature, and every POST
 * idempotent under an Idempotency-Key, scoped to the client that holds the token.
 */
export async function resourceServerRoutes(
  app: FastifyInstance,
  deps: Deps,
  opts: { stream: StreamReceiver; worker: PaymentWorker | undefined },
): Promise<void> {
  await app.register(async (rs) => {
    protectRoutes(rs, deps)
    idempotency(rs, {
      db: deps.db,
      ttlSeconds: deps.config.openPayments.idempotencyKeyTtlSeconds,
      // Above the request timeout, so a slow first request is never run twice.
      lockSeconds: 60,
      scope: (req) => req.auth?.clientId,
    })
    await incomingPaymentRoutes(rs, deps, opts.stream)
    await quoteRoutes(rs, deps)
    await outgoingPaymentRoutes(rs, deps, opts.worker)
  })
}
