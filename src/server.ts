import type { FastifyInstance } from 'fastify'
import { createAdminApp } from './admin/app.ts'
import { DEV_SIGN_IN_PATH, devSignInRoutes } from './auth/dev-sign-in.ts'
import { type IdentityProvider, signedRedirectIdentity } from './auth/identity.ts'
import { interactionRoutes } from './auth/interaction-routes.ts'
import { authPages } from './auth/pages.ts'
import { gnapRoutes } from './auth/routes.ts'
import type { Config, Role } from './config.ts'
import { createCoreBanking } from './core-banking/index.ts'
import { startCoreBankingWorker } from './core-banking/worker.ts'
import { createOutageMonitor } from './db/outage.ts'
import type { Deps } from './deps.ts'
import { createApp } from './http/app.ts'
import { allowCors } from './http/cors.ts'
import { securePages } from './http/page-security.ts'
import { startIdempotencyCleanup } from './idempotency/cleanup.ts'
import { createIlpApp } from './ilp/http-server.ts'
import { createStreamSender } from './ilp/sender.ts'
import { createStreamReceiver, type StreamReceiver } from './ilp/stream-receiver.ts'
import { startIncomingPaymentExpiry } from './incoming-payments/expiry-worker.ts'
import { startLedgerExpiry } from './ledger/expiry-worker.ts'
import { OneAtATime } from './lib/one-at-a-time.ts'
import { observeHttp } from './metrics/http.ts'
import { createMetrics, type PoolStats } from './metrics/metrics.ts'
import { serverIdentity } from './open-payments-client/identity.ts'
import { createRemoteReceivers } from './open-payments-client/remote-receivers.ts'
import { createFetchBudget } from './outbound/budget.ts'
import { createOutbound, OPERATOR_POLICY } from './outbound/fetch.ts'
import { type PaymentWorker, startPaymentWorker } from './outgoing-payments/worker.ts'
import { limitByClient, limitByIp, tooManyRequests } from './rate-limit/hooks.ts'
import { createRatesService } from './rates/service.ts'
import { resourceServerRoutes } from './resource-server/routes.ts'
import { createClientDirectory } from './signatures/clients.ts'
import { createLocalWalletAddresses } from './wallet-addresses/local-cache.ts'
import { walletAddressRoutes } from './wallet-addresses/routes.ts'
import { queueDepth } from './webhooks/queue.ts'
import { startWebhookWorker, type WebhookWorker } from './webhooks/worker.ts'

export interface Listener {
  role: Role
  app: FastifyInstance
  port: number
  /** The URL printed at start: the public base URL for public listeners. */
  url: () => string
}

export interface ListenerOptions {
  /** Replaces the configured identity step of interactive grants. */
  identity?: IdentityProvider
}

export function createDeps(
  base: Pick<Deps, 'config' | 'db' | 'logger'> & { poolStats?: () => PoolStats },
): Deps {
  const { poolStats, ...rest } = base
  const { config, logger } = rest
  const identity = serverIdentity(config)
  const outbound = {
    untrusted: createOutbound(config.outbound.policy, { logger }),
    operator: createOutbound(OPERATOR_POLICY, { logger }),
  }
  // One budget for both kinds of lookup a client can cause.
  const budget = createFetchBudget(config.outbound.newUrlsPerMinute)
  const walletAddresses = createLocalWalletAddresses(base.db)
  const grantQueue = new OneAtATime()
  const deps: Deps = {
    ...rest,
    walletAddresses,
    metrics: createMetrics({ pool: poolStats, waitingForGrant: () => grantQueue.waiting }),
    identity,
    clients: createClientDirectory({
      config,
      db: base.db,
      server: identity,
      outbound: outbound.untrusted,
      budget,
      local: walletAddresses,
    }),
    rates: createRatesService(config.openPayments.rates, outbound.operator),
    ilpSender: createStreamSender({
      packetExpirySeconds: config.openPayments.ilpPacketExpirySeconds,
    }),
    remoteReceivers: undefined as never,
    outbound,
    coreBanking: createCoreBanking(base.db, config),
    outage: createOutageMonitor(base.db, logger),
    grantQueue,
  }
  deps.remoteReceivers = createRemoteReceivers(deps, {
    cacheTtlMs: config.openPayments.quoteLifespanSeconds * 1000,
    outbound: outbound.untrusted,
    budget,
  })
  return deps
}

/** The identity step IDENTITY_PROVIDER selects; the development sign-in speaks the same protocol. */
export function configuredIdentity(config: Config): IdentityProvider {
  const identity = config.auth.identity
  return identity.kind === 'dev'
    ? signedRedirectIdentity(`${config.authServerUrl}${DEV_SIGN_IN_PATH}`, config.auth.secret)
    : signedRedirectIdentity(identity.url, identity.secret)
}

export interface Server {
  listeners: Listener[]
  /** Starts listening (and the workers, with the `workers` role). */
  start(host: string): Promise<void>
  /** Stops accepting requests, lets in-flight ones finish, stops the workers. */
  stop(): Promise<void>
}

/** Builds one Fastify instance per enabled role, and the workers. Nothing runs until `start`. */
export async function createServer(deps: Deps, opts: ListenerOptions = {}): Promise<Server> {
  const { config } = deps
  const listeners: Listener[] = []
  // The queue is shared by every process: any one with /metrics can report its depth.
  deps.metrics.watchWebhookQueue(() => queueDepth(deps.db))
  const enabled = new Set(config.roles)
  // One STREAM server for the credentials the resource server hands out and the packets the ILP
  // listener receives for them.
  const stream = createStreamReceiver({
    secret: config.openPayments.streamSecret,
    ilpAddress: config.openPayments.ilpAddress,
  })
  let worker: PaymentWorker | undefined
  let expiry: { stop(): Promise<void> } | undefined
  let keyCleanup: { stop(): Promise<void> } | undefined
  let webhooks: WebhookWorker | undefined
  let incomingExpiry: { stop(): Promise<void> } | undefined
  let coreBanking: { stop(): Promise<void> } | undefined
  // Routes kick the worker after a create; before `start` (or without the role) nothing listens.
  const kick: PaymentWorker = {
    kick: () => worker?.kick(),
    settle: (id) => worker?.settle(id),
    stop: async () => {},
  }
  if (enabled.has('open-payments')) {
    listeners.push({
      role: 'open-payments',
      app: await createOpenPaymentsApp(deps, kick, stream),
      port: config.ports.openPayments,
      url: () => config.openPaymentsUrl,
    })
  }
  if (enabled.has('auth')) {
    listeners.push({
      role: 'auth',
      app: await createAuthApp(deps, opts.identity ?? configuredIdentity(config)),
      port: config.ports.auth,
      url: () => config.authServerUrl,
    })
  }
  if (enabled.has('ilp')) {
    const ilp: Listener = {
      role: 'ilp',
      app: createIlpApp(deps, stream),
      port: config.ports.ilp,
      url: () => `http://${config.host}:${boundPort(ilp)}`,
    }
    listeners.push(ilp)
  }
  if (enabled.has('admin')) {
    const admin: Listener = {
      role: 'admin',
      app: createAdminApp(deps),
      port: config.ports.admin,
      url: () => `http://${config.host}:${boundPort(admin)}`,
    }
    listeners.push(admin)
  }
  return {
    listeners,
    start: async (host) => {
      for (const l of listeners) {
        try {
          await l.app.listen({ host, port: l.port })
        } catch (err) {
          throw new ListenError(l, host, err as Error)
        }
      }
      if (enabled.has('workers')) {
        worker = startPaymentWorker(deps)
        expiry = startLedgerExpiry(deps)
        keyCleanup = startIdempotencyCleanup(deps)
        webhooks = startWebhookWorker(deps, {
          onOutcome: (o) => deps.metrics.webhookDeliveries.inc({ outcome: o.outcome }),
        })
        incomingExpiry = startIncomingPaymentExpiry(deps, { intervalMs: config.webhooks.pollMs })
        coreBanking = startCoreBankingWorker(deps)
      }
    },
    stop: async () => {
      await Promise.all(listeners.map((l) => l.app.close()))
      await worker?.stop()
      await expiry?.stop()
      await keyCleanup?.stop()
      await incomingExpiry?.stop()
      await webhooks?.stop()
      await coreBanking?.stop()
      deps.outage.stop()
    },
  }
}

/** A listener could not bind its port (in use, or not allowed): named with the setting to change. */
export class ListenError extends Error {
  constructor(listener: Listener, host: string, cause: Error) {
    const setting = `${listener.role.toUpperCase().replace('-', '_')}_PORT`
    super(
      `the ${listener.role} listener cannot listen on ${host}:${listener.port} (${setting}): ${cause.message}`,
      { cause },
    )
  }
}

export function boundPort(l: Listener): number {
  const address = l.app.server.address()
  return typeof address === 'object' && address ? address.port : l.port
}

async function createOpenPaymentsApp(
  deps: Deps,
  worker: PaymentWorker,
  stream: StreamReceiver,
): Promise<FastifyInstance> {
  const { config } = deps
  const app = createApp({
    logger: deps.logger.child({ listener: 'open-payments' }),
    // Open Payments clients read the HTTP status from `error.code` (Rafiki's convention).
    errorCode: (err) => String(err.statusCode),
    trustProxy: config.trustProxy,
    outage: deps.outage,
  })
  observeHttp(app, deps.metrics, 'open-payments')
  allowCors(app)
  const tooMany = tooManyRequests('too_many_requests')
  limitByIp(app, config.rateLimits.ipPerMinute, tooMany)
  limitByClient(app, config.rateLimits.clientPerMinute, tooMany)
  await resourceServerRoutes(app, deps, { stream, worker })
  walletAddressRoutes(app, deps)
  return app
}

async function createAuthApp(deps: Deps, identity: IdentityProvider): Promise<FastifyInstance> {
  const { config } = deps
  const app = createApp({
    logger: deps.logger.child({ listener: 'auth' }),
    trustProxy: config.trustProxy,
    outage: deps.outage,
  })
  observeHttp(app, deps.metrics, 'auth')
  const pages = authPages(config.brand)
  securePages(app, pages.headers)
  // Consent and sign-in forms post url-encoded bodies.
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string' },
    (_req, body, done) => done(null, Object.fromEntries(new URLSearchParams(body as string))),
  )
  allowCors(app)
  // GNAP has no rate-limit code; too_fast ("slow down") is the nearest, and in the spec's list.
  const tooMany = tooManyRequests('too_fast')
  limitByIp(app, config.rateLimits.ipPerMinute, tooMany)
  limitByIp(app, config.rateLimits.pagesPerMinute, tooMany, {
    only: (path) => path.startsWith('/interact/') || path === DEV_SIGN_IN_PATH,
    html: (seconds) => pages.message('Too many requests', `Try again in ${seconds} seconds.`),
  })
  limitByClient(app, config.rateLimits.clientPerMinute, tooMany)
  await gnapRoutes(app, deps)
  interactionRoutes(app, deps, identity)
  devSignInRoutes(app, deps.config)
  return app
}
