import type { FastifyInstance } from 'fastify'
import { Registry } from 'prom-client'
import { assetAdminRoutes } from '../assets/admin-routes.ts'
import { authAdminRoutes } from '../auth/admin-routes.ts'
import { coreBankingAdminRoutes } from '../core-banking/admin-routes.ts'
import { ping } from '../db/database.ts'
import type { Deps } from '../deps.ts'
import { feeAdminRoutes } from '../fees/admin-routes.ts'
import { createApp } from '../http/app.ts'
import { idempotency } from '../idempotency/plugin.ts'
import { incomingPaymentAdminRoutes } from '../incoming-payments/admin-routes.ts'
import { ledgerAdminRoutes } from '../ledger/admin-routes.ts'
import { HttpError } from '../lib/errors.ts'
import { safeEqual } from '../lib/secrets.ts'
import { observeHttp } from '../metrics/http.ts'
import { outgoingPaymentAdminRoutes } from '../outgoing-payments/admin-routes.ts'
import { peerAdminRoutes } from '../peers/admin-routes.ts'
import { createCredentialGuard, tooManyRequests } from '../rate-limit/hooks.ts'
import { rateAdminRoutes } from '../rates/admin-routes.ts'
import { walletAddressAdminRoutes } from '../wallet-addresses/admin-routes.ts'
import { webhookAdminRoutes } from '../webhooks/admin-routes.ts'
import { consoleRoutes } from './console/routes.ts'
import { collectOpenApi } from './openapi.ts'
import { paymentStatsRoutes } from './payment-stats-routes.ts'

/** Keys sent to the admin API share one scope: there is one caller, holding ADMIN_API_KEY. */
const IDEMPOTENCY_SCOPE = 'admin'

/**
 * The operator listener: keep it on a private network; every call but health and the OpenAPI
 * document (routes whose schema says `security: []`) needs the API key, and every mutation is
 * idempotent under an Idempotency-Key.
 */
export function createAdminApp(deps: Deps): FastifyInstance {
  const { config } = deps
  const app = createApp({
    logger: deps.logger.child({ listener: 'admin' }),
    trustProxy: config.trustProxy,
    outage: deps.outage,
  })
  observeHttp(app, deps.metrics, 'admin')
  const guard = createCredentialGuard(
    config.rateLimits.credentialFailures,
    tooManyRequests('too_many_requests'),
  )

  app.addHook('onRequest', async (req, reply) => {
    // The console's pages sign in with their own session (admin/console/session.ts).
    if (req.routeOptions.config.console) return
    const security = req.routeOptions.schema?.security
    if (Array.isArray(security) && security.length === 0) return
    guard.check(req)
    const header = req.headers.authorization ?? ''
    const given = header.startsWith('Bearer ') ? header.slice(7) : ''
    if (!given || !safeEqual(given, config.adminApiKey)) {
      // A wrong key is a guess; a missing one is not.
      if (given) await guard.failed(req)
      reply.header('www-authenticate', 'Bearer')
      throw new HttpError(401, 'unauthorized', 'missing or invalid API key')
    }
  })
  idempotency(app, {
    db: deps.db,
    ttlSeconds: deps.config.openPayments.idempotencyKeyTtlSeconds,
    // Above the request timeout, so a slow first request is never run twice.
    lockSeconds: 60,
    scope: () => IDEMPOTENCY_SCOPE,
    methods: ['POST', 'PUT', 'PATCH', 'DELETE'],
  })

  const openApi = collectOpenApi(app, { title: 'Open Payments server admin API', version: '1' })
  const status = (values: string[]) => ({
    type: 'object',
    required: ['status'],
    properties: { status: { enum: values }, reason: { type: 'string' } },
  })
  app.get(
    '/healthz',
    {
      schema: {
        summary: 'Liveness: the process answers',
        tags: ['operations'],
        security: [],
        response: { 200: status(['ok']) },
      },
    },
    async () => ({ status: 'ok' }),
  )
  app.get(
    '/readyz',
    {
      schema: {
        summary: 'Readiness: the database answers',
        tags: ['operations'],
        security: [],
        response: { 200: status(['ready']), 503: status(['unavailable']) },
      },
    },
    async (_req, reply) => {
      try {
        await ping(deps.db)
        return { status: 'ready' }
      } catch {
        return reply.code(503).send({ status: 'unavailable', reason: 'database unreachable' })
      }
    },
  )
  app.get(
    '/openapi.json',
    {
      schema: {
        summary: 'This document',
        tags: ['operations'],
        security: [],
        response: { 200: { type: 'object', additionalProperties: true } },
      },
    },
    async () => openApi(),
  )
  app.get(
    '/metrics',
    {
      schema: {
        summary: 'Prometheus metrics of this process',
        description: 'Prometheus text exposition format; see docs/operations.md for each metric.',
        tags: ['operations'],
        textResponse: Registry.PROMETHEUS_CONTENT_TYPE,
      },
    },
    async (_req, reply) => {
      const { registry } = deps.metrics
      return reply.type(registry.contentType).send(await registry.metrics())
    },
  )

  assetAdminRoutes(app, deps)
  walletAddressAdminRoutes(app, deps)
  ledgerAdminRoutes(app, deps)
  authAdminRoutes(app, deps)
  feeAdminRoutes(app, deps)
  peerAdminRoutes(app, deps)
  incomingPaymentAdminRoutes(app, deps)
  outgoingPaymentAdminRoutes(app, deps)
  rateAdminRoutes(app, deps)
  webhookAdminRoutes(app, deps)
  coreBankingAdminRoutes(app, deps)
  paymentStatsRoutes(app, deps)
  consoleRoutes(app, deps, guard)
  return app
}
