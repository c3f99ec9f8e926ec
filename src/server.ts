import type { FastifyInstance } from 'fastify'
import { createAdminApp } from './admin/app.ts'
import type { Role } from './config.ts'
import type { Deps } from './deps.ts'
import { createApp } from './http/app.ts'
import { allowCors } from './http/cors.ts'
import { walletAddressRoutes } from './wallet-addresses/routes.ts'

export interface Listener {
  role: Role
  app: FastifyInstance
  port: number
  /** The URL printed at start: the public base URL for public listeners. */
  url: () => string
}

/** Builds one Fastify instance per enabled role. Nothing listens until `listen` is called. */
export function createListeners(deps: Deps): Listener[] {
  const { config } = deps
  const listeners: Listener[] = []
  const enabled = new Set(config.roles)
  if (enabled.has('open-payments')) {
    listeners.push({
      role: 'open-payments',
      app: createOpenPaymentsApp(deps),
      port: config.ports.openPayments,
      url: () => config.openPaymentsUrl,
    })
  }
  if (enabled.has('auth')) {
    listeners.push({
      role: 'auth',
      app: createAuthApp(deps),
      port: config.ports.auth,
      url: () => config.authServerUrl,
    })
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
  return listeners
}

export async function listen(listeners: Listener[], host: string): Promise<void> {
  for (const l of listeners) await l.app.listen({ host, port: l.port })
}

/** Stops accepting connections, lets in-flight requests finish, then resolves. */
export async function close(listeners: Listener[]): Promise<void> {
  await Promise.all(listeners.map((l) => l.app.close()))
}

export function boundPort(l: Listener): number {
  const address = l.app.server.address()
  return typeof address === 'object' && address ? address.port : l.port
}

function createOpenPaymentsApp(deps: Deps): FastifyInstance {
  const app = createApp({
    logger: deps.logger.child({ listener: 'open-payments' }),
    // Open Payments clients read the HTTP status from `error.code` (Rafiki's convention).
    errorCode: (err) => String(err.statusCode),
  })
  allowCors(app)
  walletAddressRoutes(app, deps)
  return app
}

function createAuthApp(deps: Deps): FastifyInstance {
  const app = createApp({ logger: deps.logger.child({ listener: 'auth' }) })
  allowCors(app)
  // The GNAP grant endpoint will live at this root.
  app.get('/', async () => ({
    service: 'Open Payments authorization server',
    grantEndpoint: deps.config.authServerUrl,
  }))
  return app
}
