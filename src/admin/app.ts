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
import { createCredentialGuard, tooManyRequests } from '../rate-limit/hooks.ts'
import { walletAddressAdminRoutes } from '../wallet-addresses/admin-routes.ts'
import { collectOpenApi } from './openapi.ts'

const PUBLIC_PATHS = new Set(['/healthz', '/readyz', '/openapi.json'])

/** The operator listener: keep it on a private network; every call but health needs the API key. */
export function createAdminApp(deps: Deps): FastifyInstance {
  const { config } = deps
  const app = createApp({
    logger: deps.logger.child({ listener: 'admin' }),
    trustProxy: config.trustProxy,
  })
  const guard = createCredentialGuard(
    config.rateLimits.credentialFailures,
    tooManyRequests('too_many_requests'),
  )

  app.addHook('onRequest', async (req, reply) => {
    if (PUBLIC_PATHS.has(req.url.split('?', 1)[0]!)) return
    guard.check(req)
    const header = req.headers.authorization ?? ''
    const given = header.startsWith('Bearer ') ? header.slice(7) : ''
    if (!given || !safeEqual(given, config.adminApiKey)) {
      await guard.failed(req)
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
  return app
}
