import type { FastifyInstance } from 'fastify'
import { assetAdminRoutes } from '../assets/admin-routes.ts'
import { authAdminRoutes } from '../auth/admin-routes.ts'
import { ping } from '../db/database.ts'
import type { Deps } from '../deps.ts'
import { feeAdminRoutes } from '../fees/admin-routes.ts'
import { createApp } from '../http/app.ts'
import { ledgerAdminRoutes } from '../ledger/admin-routes.ts'
import { HttpError } from '../lib/errors.ts'
import { safeEqual } from '../lib/secrets.ts'
import { peerAdminRoutes } from '../peers/admin-routes.ts'
import { walletAddressAdminRoutes } from '../wallet-addresses/admin-routes.ts'
import { webhookAdminRoutes } from '../webhooks/admin-routes.ts'
import { collectOpenApi } from './openapi.ts'

const PUBLIC_PATHS = new Set(['/healthz', '/readyz', '/openapi.json'])

/** The operator listener: keep it on a private network; every call but health needs the API key. */
export function createAdminApp(deps: Deps): FastifyInstance {
  const app = createApp({ logger: deps.logger.child({ listener: 'admin' }) })

  app.addHook('onRequest', async (req, reply) => {
    if (PUBLIC_PATHS.has(req.url.split('?', 1)[0]!)) return
    const header = req.headers.authorization ?? ''
    const given = header.startsWith('Bearer ') ? header.slice(7) : ''
    if (!given || !safeEqual(given, deps.config.adminApiKey)) {
      reply.header('www-authenticate', 'Bearer')
      throw new HttpError(401, 'unauthorized', 'missing or invalid API key')
    }
  })

  const openApi = collectOpenApi(app, { title: 'Open Payments server admin API', version: '1' })
  app.get('/healthz', async () => ({ status: 'ok' }))
  app.get('/readyz', async (_req, reply) => {
    try {
      await ping(deps.db)
      return { status: 'ready' }
    } catch {
      return reply.code(503).send({ status: 'unavailable', reason: 'database unreachable' })
    }
  })
  app.get('/openapi.json', async () => openApi())

  assetAdminRoutes(app, deps)
  walletAddressAdminRoutes(app, deps)
  ledgerAdminRoutes(app, deps)
  authAdminRoutes(app, deps)
  feeAdminRoutes(app, deps)
  peerAdminRoutes(app, deps)
  // Its own context: its Idempotency-Key hooks apply to its routes only.
  app.register((scoped) => webhookAdminRoutes(scoped, deps))
  return app
}
