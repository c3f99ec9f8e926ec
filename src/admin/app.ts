import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import { assetAdminRoutes } from '../assets/admin-routes.ts'
import { ping } from '../db/database.ts'
import type { Deps } from '../deps.ts'
import { createApp } from '../http/app.ts'
import { ledgerAdminRoutes } from '../ledger/admin-routes.ts'
import { HttpError } from '../lib/errors.ts'
import { walletAddressAdminRoutes } from '../wallet-addresses/admin-routes.ts'
import { collectOpenApi } from './openapi.ts'

const PUBLIC_PATHS = new Set(['/healthz', '/readyz', '/openapi.json'])

/** The operator listener: keep it on a private network; every call but health needs the API key. */
export function createAdminApp(deps: Deps): FastifyInstance {
  const app = createApp({ logger: deps.logger.child({ listener: 'admin' }) })
  const expected = digest(deps.config.adminApiKey)

  app.addHook('onRequest', async (req, reply) => {
    if (PUBLIC_PATHS.has(req.url.split('?', 1)[0]!)) return
    const header = req.headers.authorization ?? ''
    const given = header.startsWith('Bearer ') ? header.slice(7) : ''
    // Compare digests of equal length so the time taken says nothing about the key.
    if (!given || !timingSafeEqual(digest(given), expected)) {
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
  return app
}

const digest = (v: string) => createHash('sha256').update(v).digest()
