import { randomBytes } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Logger, pino } from 'pino'
import type { IdentityProvider } from '../../src/auth/identity.ts'
import { type Config, loadConfig } from '../../src/config.ts'
import { freePort } from '../../src/lib/free-port.ts'
import { boundPort, createDeps, createServer } from '../../src/server.ts'
import { createTestDatabase, type TestDatabase } from './db.ts'

export const DEV_PASSWORD = 'correct horse battery staple'

export interface TestServer {
  config: Config
  database: TestDatabase
  openPaymentsUrl: string
  authUrl: string
  adminUrl: string
  /** ILP-over-HTTP endpoint for peers. */
  ilpUrl: string
  adminKey: string
  /** Calls the admin API with the key; `body` is sent as JSON when given. */
  admin(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<JsonResponse>
  close(): Promise<void>
}

export interface JsonResponse {
  status: number
  headers: Headers
  body: any
}

export { freePort }

/** The whole server on loopback ports, on a fresh PostgreSQL schema (or embedded database). */
export async function startTestServer(
  env: Record<string, string> = {},
  opts: {
    identity?: IdentityProvider
    logger?: Logger
    embedded?: boolean
    poolSize?: number
  } = {},
): Promise<TestServer> {
  const database = await createTestDatabase({
    embedded: opts.embedded ?? false,
    poolSize: opts.poolSize,
  })
  const [op, auth] = [await freePort(), await freePort()]
  const adminKey = randomBytes(32).toString('base64url')
  const config = loadConfig({
    DATA_DIR: mkdtempSync(join(tmpdir(), 'op-test-')),
    AUTH_SECRET: randomBytes(32).toString('base64url'),
    STREAM_SECRET: randomBytes(32).toString('base64'),
    SERVER_PRIVATE_KEY: randomBytes(32).toString('base64'),
    DEV_SIGN_IN_PASSWORD: DEV_PASSWORD,
    NODE_ENV: 'test',
    ...(!opts.embedded && { DATABASE_URL: 'postgres://unused' }),
    OPEN_PAYMENTS_PORT: String(op),
    AUTH_PORT: String(auth),
    ADMIN_PORT: '0',
    ILP_PORT: '0',
    OPEN_PAYMENTS_URL: `http://127.0.0.1:${op}`,
    AUTH_SERVER_URL: `http://127.0.0.1:${auth}`,
    ADMIN_API_KEY: adminKey,
    ...env,
  })
  const logger = opts.logger ?? pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' })
  const server = await createServer(
    createDeps({ config, db: database.db, poolStats: database.poolStats, logger }),
    opts,
  )
  await server.start('127.0.0.1')
  const adminListener = server.listeners.find((l) => l.role === 'admin')!
  const adminUrl = `http://127.0.0.1:${boundPort(adminListener)}`
  const ilpUrl = `http://127.0.0.1:${boundPort(server.listeners.find((l) => l.role === 'ilp')!)}/ilp`
  return {
    config,
    database,
    openPaymentsUrl: config.openPaymentsUrl,
    authUrl: config.authServerUrl,
    adminUrl,
    ilpUrl,
    adminKey,
    admin: async (method, path, body, headers = {}) =>
      request(`${adminUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${adminKey}`,
          ...(body !== undefined && { 'content-type': 'application/json' }),
          ...headers,
        },
        body:
          body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
      }),
    close: async () => {
      await server.stop()
      await database.drop()
    },
  }
}

export async function request(url: string, init: RequestInit = {}): Promise<JsonResponse> {
  const res = await fetch(url, init)
  const text = await res.text()
  // JSON bodies parsed; anything else (e.g. Prometheus text) as text.
  const json = !res.headers.get('content-type') || /json/.test(res.headers.get('content-type')!)
  return {
    status: res.status,
    headers: res.headers,
    body: text ? (json ? JSON.parse(text) : text) : undefined,
  }
}

/** Creates an asset (if new) and an active wallet address through the admin API. */
export async function createWalletAddress(
  server: TestServer,
  opts: { path: string; assetCode?: string; assetScale?: number; publicName?: string },
): Promise<{ id: string; url: string }> {
  const assetCode = opts.assetCode ?? 'USD'
  const assetScale = opts.assetScale ?? 2
  const asset = await server.admin('POST', '/assets', { code: assetCode, scale: assetScale })
  if (asset.status !== 201 && asset.status !== 409) throw new Error(`create asset: ${asset.status}`)
  const wa = await server.admin('POST', '/wallet-addresses', {
    path: opts.path,
    assetCode,
    assetScale,
    ...(opts.publicName && { publicName: opts.publicName }),
  })
  if (wa.status !== 201)
    throw new Error(`create wallet address: ${wa.status} ${JSON.stringify(wa.body)}`)
  return { id: wa.body.id, url: wa.body.url }
}

/** Funds a wallet address from the asset's settlement account. */
export async function deposit(
  server: TestServer,
  walletAddressId: string,
  amount: bigint,
): Promise<void> {
  const res = await server.admin('POST', `/wallet-addresses/${walletAddressId}/deposits`, {
    id: `deposit-${randomBytes(8).toString('hex')}`,
    amount: amount.toString(),
  })
  if (res.status !== 201) throw new Error(`deposit: ${res.status}`)
}

export async function balanceOf(server: TestServer, walletAddressId: string): Promise<bigint> {
  return BigInt(
    (await server.admin('GET', `/wallet-addresses/${walletAddressId}/balance`)).body.balance,
  )
}

/** Polls until `check` returns a value (not undefined), or fails after `ms`. */
export async function eventually<T>(check: () => Promise<T | undefined>, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const v = await check()
    if (v !== undefined) return v
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 25))
  }
}
