import { randomBytes } from 'node:crypto'
import {
  existsSync,
  linkSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { z } from 'zod'
import {
  type Brand,
  DEFAULT_ACCENT_COLOR,
  DEFAULT_PRIMARY_COLOR,
  parseColor,
  parseLogoUrl,
} from './branding/brand.ts'
import { SHARED_CONNECTIONS } from './db/shared-connections.ts'
import { type Network, parseNetwork } from './outbound/addresses.ts'
import type { OutboundPolicy } from './outbound/fetch.ts'
import { parseStaticTable, type RatesSource } from './rates/service.ts'
import { isWebhookSecret } from './webhooks/signing.ts'

export const ROLES = ['open-payments', 'auth', 'admin', 'ilp', 'workers'] as const
export type Role = (typeof ROLES)[number]

/** Secrets that production must be given; development generates them once under DATA_DIR. */
const SECRET_NAMES = [
  'ADMIN_API_KEY',
  'AUTH_SECRET',
  'STREAM_SECRET',
  'SERVER_PRIVATE_KEY',
  'DEV_SIGN_IN_PASSWORD',
] as const
type SecretName = (typeof SECRET_NAMES)[number]

export class ConfigError extends Error {
  override name = 'ConfigError'
}

const port = (fallback: number) =>
  z.coerce
    .number({ error: 'must be a port number' })
    .int({ error: 'must be an integer port number' })
    .min(0, { error: 'must be between 0 and 65535' })
    .max(65535, { error: 'must be between 0 and 65535' })
    .default(fallback)

const positiveInt = (fallback: number) =>
  z.coerce
    .number({ error: 'must be a number' })
    .int({ error: 'must be an integer' })
    .positive({ error: 'must be positive' })
    .default(fallback)

/**
 * A public origin such as `https://wallet.example`: ids, `@target-uri` and the grant-endpoint hash
 * are built from it, and Open Payments expects these servers at an origin root.
 */
const baseUrl = z
  .string()
  .refine((v) => {
    try {
      const u = new URL(v)
      return (
        (u.protocol === 'http:' || u.protocol === 'https:') &&
        u.pathname === '/' &&
        !u.search &&
        !u.hash
      )
    } catch {
      return false
    }
  }, 'must be an http(s) origin such as https://wallet.example (no path, query or fragment)')
  .transform((v) => new URL(v).origin)

const secret = z.string().min(32, { error: 'must be at least 32 characters' }).optional()

const bool = (fallback: boolean) =>
  z
    .enum(['true', 'false'], { error: 'must be true or false' })
    .default(fallback ? 'true' : 'false')
    .transform((v) => v === 'true')

const seconds = (fallback: number) => positiveInt(fallback)

const nonNegativeInt = (fallback: number) =>
  z.coerce
    .number({ error: 'must be a number' })
    .int({ error: 'must be an integer' })
    .min(0, { error: 'must not be negative' })
    .default(fallback)

const networks = z
  .string()
  .default('')
  .transform((v) => v.split(',').filter((n) => n.trim() !== ''))
  .refine((ns) => ns.every((n) => parseNetwork(n) !== undefined), {
    error: 'must be a comma-separated list of networks such as 10.20.0.0/16,fd00::/8',
  })
  .transform((ns) => ns.map((n) => parseNetwork(n)!))

/**
 * Fastify's `trustProxy`: false, true (every peer is a proxy), or the proxies' addresses/networks,
 * the safe choice: `X-Forwarded-For` is believed only when a listed proxy sent it.
 */
const trustProxy = z
  .string()
  .default('false')
  .transform((v): boolean | string[] =>
    v === 'true' || v === 'false' ? v === 'true' : v.split(',').map((n) => n.trim()),
  )
  .refine((v) => !Array.isArray(v) || v.every((n) => parseNetwork(n) !== undefined), {
    error: 'must be true, false, or a comma-separated list of proxy addresses/networks',
  })

const color = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .refine((v) => parseColor(v) !== undefined, { error: 'must be a hex colour such as #1a56db' })
    .transform((v) => parseColor(v)!)

const schema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  DATA_DIR: z.string().min(1).default('./data'),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, { error: 'must be a postgres:// or postgresql:// URL' })
    .optional(),
  DATABASE_SCHEMA: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, { error: 'must be a lower-case SQL identifier' })
    .default('public'),
  DATABASE_POOL_SIZE: positiveInt(10),
  DATABASE_SHARED_CONNECTIONS: nonNegativeInt(SHARED_CONNECTIONS),
  HOST: z.string().min(1).default('127.0.0.1'),
  OPEN_PAYMENTS_PORT: port(3000),
  AUTH_PORT: port(3001),
  ADMIN_PORT: port(3002),
  ILP_PORT: port(3003),
  OPEN_PAYMENTS_URL: baseUrl.optional(),
  AUTH_SERVER_URL: baseUrl.optional(),
  ROLES: z
    .string()
    .default(ROLES.join(','))
    .transform((v) => v.split(',').map((r) => r.trim()))
    .refine((rs) => rs.length > 0 && rs.every((r) => (ROLES as readonly string[]).includes(r)), {
      error: `must be a comma-separated list of ${ROLES.join(', ')}`,
    })
    .transform((rs) => rs as Role[]),
  WALLET_ADDRESS_CACHE_SECONDS: nonNegativeInt(60),
  SHUTDOWN_TIMEOUT_MS: positiveInt(10_000),
  TRUST_PROXY: trustProxy,
  OUTBOUND_ALLOW_PRIVATE: z.enum(['true', 'false'], { error: 'must be true or false' }).optional(),
  OUTBOUND_ALLOWED_NETWORKS: networks,
  OUTBOUND_TIMEOUT_MS: positiveInt(5000),
  OUTBOUND_NEW_URLS_PER_MINUTE: nonNegativeInt(300),
  RATE_LIMIT_ENABLED: bool(true),
  RATE_LIMIT_IP_PER_MINUTE: nonNegativeInt(3000),
  RATE_LIMIT_CLIENT_PER_MINUTE: nonNegativeInt(1200),
  RATE_LIMIT_PAGES_PER_MINUTE: nonNegativeInt(120),
  RATE_LIMIT_CREDENTIAL_FAILURES: nonNegativeInt(20),
  RATE_LIMIT_ILP_PACKETS_PER_SECOND: nonNegativeInt(1000),
  SIGNATURE_MAX_AGE_SECONDS: seconds(300),
  ACCESS_TOKEN_EXPIRY_SECONDS: seconds(600),
  INTERACTION_EXPIRY_SECONDS: seconds(600),
  // 0: clients may continue at once (an ASE whose clients poll right after consent).
  GRANT_WAIT_SECONDS: nonNegativeInt(5),
  INCOMING_PAYMENT_INTERACTION: bool(false),
  QUOTE_INTERACTION: bool(false),
  LIST_ALL_ACCESS_INTERACTION: bool(true),
  INTERACT_FINISH_HASH_ENCODING: z.enum(['base64', 'base64url']).default('base64'),
  IDENTITY_PROVIDER: z.enum(['dev', 'redirect']).optional(),
  IDP_URL: z
    .string()
    .refine(
      (v) => URL.canParse(v) && /^https?:$/.test(new URL(v).protocol),
      'must be an http(s) URL',
    )
    .optional(),
  IDP_SECRET: secret,
  ILP_ADDRESS: z
    .string()
    .regex(/^(g|private|example|peer|self|test[1-3]?|local)([.][a-zA-Z0-9_~-]+)+$/, {
      error: 'must be an ILP address such as test.my-wallet or g.my-wallet',
    })
    .max(100)
    .default('test.op-server'),
  INCOMING_PAYMENT_EXPIRY_DEFAULT_SECONDS: seconds(30 * 86_400),
  INCOMING_PAYMENT_EXPIRY_MAX_SECONDS: seconds(30 * 86_400),
  QUOTE_LIFESPAN_SECONDS: seconds(300),
  RATES_URL: z
    .string()
    .refine(
      (v) => URL.canParse(v) && /^https?:$/.test(new URL(v).protocol),
      'must be an http(s) URL',
    )
    .optional(),
  RATES: z
    .string()
    .refine((v) => parseStaticTable(v) !== undefined, {
      error: 'must be JSON like {"USD":{"EUR":"0.9"}} with positive decimal rates',
    })
    .optional(),
  RATES_CACHE_SECONDS: seconds(15),
  ILP_SLIPPAGE: z.coerce
    .number({ error: 'must be a number' })
    .min(0, { error: 'must be between 0 and 1' })
    .max(1, { error: 'must be between 0 and 1' })
    .default(0.01),
  RATES_TIMEOUT_MS: positiveInt(5000),
  IDEMPOTENCY_KEY_TTL_SECONDS: seconds(86_400),
  PAYMENT_SEND_LEASE_SECONDS: seconds(120),
  ILP_PACKET_EXPIRY_SECONDS: seconds(20),
  SERVER_WALLET_ADDRESS_PATH: z
    .string()
    .regex(/^(\/[A-Za-z0-9][A-Za-z0-9._~-]*)+$/, { error: 'must be a path such as /op-client' })
    .default('/op-client'),
  SERVER_NAME: z.string().min(1).max(200).default('Open Payments server'),
  ADMIN_API_KEY: secret,
  AUTH_SECRET: secret,
  SERVER_PRIVATE_KEY: z
    .string()
    .refine((v) => Buffer.from(v, 'base64').length === 32, {
      error: 'must be a 32-byte Ed25519 seed, base64 or base64url encoded',
    })
    .optional(),
  STREAM_SECRET: z
    .string()
    .refine((v) => Buffer.from(v, 'base64').length === 32, {
      error: 'must be 32 random bytes, base64 or base64url encoded',
    })
    .optional(),
  DEV_SIGN_IN_PASSWORD: z.string().min(8, { error: 'must be at least 8 characters' }).optional(),
  WEBHOOK_TIMEOUT_MS: positiveInt(10_000),
  WEBHOOK_RETRY_BASE_MS: positiveInt(5000),
  WEBHOOK_RETRY_PERIOD_SECONDS: seconds(86_400),
  WEBHOOK_LEASE_SECONDS: seconds(60),
  WEBHOOK_CONCURRENCY: positiveInt(8),
  WEBHOOK_POLL_MS: positiveInt(1000),
  WEBHOOK_RETENTION_DAYS: positiveInt(30),
  CORE_BANKING_URL: z
    .string()
    .refine(
      (v) => URL.canParse(v) && /^https?:$/.test(new URL(v).protocol),
      'must be an http(s) URL',
    )
    .optional(),
  CORE_BANKING_SECRET: z
    .string()
    .refine(isWebhookSecret, { error: 'must be whsec_ followed by at least 24 bytes in base64' })
    .optional(),
  CORE_BANKING_TIMEOUT_MS: positiveInt(5000),
  CORE_BANKING_RETRY_BASE_MS: positiveInt(5000),
  CORE_BANKING_LEASE_SECONDS: seconds(60),
  CORE_BANKING_POLL_MS: positiveInt(1000),
  BRAND_NAME: z
    .string()
    .trim()
    .min(1, { error: 'must not be empty' })
    .max(100, { error: 'must be at most 100 characters' })
    .optional(),
  BRAND_LOGO_URL: z.string().optional(),
  BRAND_PRIMARY_COLOR: color(DEFAULT_PRIMARY_COLOR),
  BRAND_ACCENT_COLOR: color(DEFAULT_ACCENT_COLOR),
  CONSOLE_ENABLED: bool(true),
  CONSOLE_SESSION_SECONDS: seconds(8 * 3600),
  CONSOLE_IDLE_SECONDS: seconds(30 * 60),
})

export type IdentityConfig =
  | { kind: 'dev'; password: string }
  | { kind: 'redirect'; url: string; secret: string }

export interface OpenPaymentsConfig {
  ilpAddress: string
  /** Derives every incoming payment's STREAM credentials; must stay stable. */
  streamSecret: Buffer
  incomingPaymentExpiryDefaultSeconds: number
  incomingPaymentExpiryMaxSeconds: number
  quoteLifespanSeconds: number
  rates: RatesSource
  /** How far below the quoted rate a STREAM payment may deliver (0.01 = 1 %). */
  ilpSlippage: number
  /** How long one attempt may send a payment over Interledger before it counts as dead. */
  paymentSendLeaseSeconds: number
  /** How long each packet our STREAM sender sends may stay unanswered. */
  ilpPacketExpirySeconds: number
  idempotencyKeyTtlSeconds: number
  /** The server's own client identity, when it calls other ASEs' Open Payments APIs. */
  serverIdentity: { path: string; name: string; seed: Buffer }
}

export interface AuthConfig {
  accessTokenExpirySeconds: number
  interactionExpirySeconds: number
  waitSeconds: number
  /** Which access needs the account holder's consent besides outgoing payments (always). */
  interaction: { incomingPayment: boolean; quote: boolean; listAll: boolean }
  finishHashEncoding: 'base64' | 'base64url'
  /** Derives continuation tokens and signs interaction cookies. */
  secret: string
  identity: IdentityConfig
}

/** Requests per key in this process; 0 means no limit. */
export interface RateLimitConfig {
  /** Per client IP address (IPv6 by /64), on each public listener. */
  ipPerMinute: number
  /** Per verified client (its wallet address or key), on the resource and authorization servers. */
  clientPerMinute: number
  /** Per IP on the interaction, consent and sign-in pages. */
  pagesPerMinute: number
  /** Failed API keys and peer tokens per IP in 15 minutes before every request is refused. */
  credentialFailures: number
  /** ILP Prepares per peer per second. */
  ilpPacketsPerSecond: number
}

export interface OutboundConfig {
  /** For URLs that clients and peers name. */
  policy: OutboundPolicy
  timeoutMs: number
  /** How many URLs not fetched recently one client (or one IP, before a client is known) may make us fetch; 0: no cap. */
  newUrlsPerMinute: number
}

export interface WebhooksConfig {
  /** Bound on one delivery attempt: connecting, the response and reading its start. */
  timeoutMs: number
  /** The first retry's delay; each further one doubles (with jitter), up to an hour. */
  retryBaseMs: number
  /** How long a delivery is retried before it is dead-lettered. */
  retryPeriodSeconds: number
  /** How long a claimed delivery is another process's to send before it counts as dead. */
  leaseSeconds: number
  /** Deliveries one process sends at once. */
  concurrency: number
  /** How often the workers look for due deliveries and expired incoming payments. */
  pollMs: number
  /** Finished events (all deliveries delivered or dead) older than this are deleted. */
  retentionDays: number
}

export interface ConsoleConfig {
  /** Whether the admin listener serves the operator console at /console. */
  enabled: boolean
  /** A console session ends this long after sign-in, however active. */
  sessionSeconds: number
  /** …or after this long without a request. */
  idleSeconds: number
}

export interface CoreBankingConfig {
  /** The hook of every asset that has none of its own; absent: only per-asset hooks. */
  global: { url: string; secret: string } | undefined
  /** Bound on one callout: connecting, the answer and reading it. */
  timeoutMs: number
  /** The first retry's delay of a post or release; each further one doubles, up to an hour. */
  retryBaseMs: number
  /** How long a claimed post or release is another process's to send. */
  leaseSeconds: number
  /** How often the workers look for due posts and releases. */
  pollMs: number
}

export interface Config {
  env: 'development' | 'test' | 'production'
  logLevel: string
  dataDir: string
  /** Absent: the embedded PGlite database under `dataDir`. */
  databaseUrl: string | undefined
  databaseSchema: string
  databasePoolSize: number
  /** Connections besides the pool that requests' single statements share (0: none). */
  databaseSharedConnections: number
  host: string
  ports: { openPayments: number; auth: number; admin: number; ilp: number }
  openPaymentsUrl: string
  authServerUrl: string
  roles: Role[]
  walletAddressCacheSeconds: number
  shutdownTimeoutMs: number
  /** Whether to take the client's address from `X-Forwarded-For` (Fastify's `trustProxy`). */
  trustProxy: boolean | string[]
  outbound: OutboundConfig
  rateLimits: RateLimitConfig
  signatureMaxAgeSeconds: number
  openPayments: OpenPaymentsConfig
  auth: AuthConfig
  webhooks: WebhooksConfig
  coreBanking: CoreBankingConfig
  /** Name, logo and colours of the consent pages and the operator console. */
  brand: Brand
  console: ConsoleConfig
  adminApiKey: string
  /** Names of secrets generated for development; the server warns about each at start. */
  generatedSecrets: SecretName[]
}

/**
 * Reads the configuration from the environment. A bad value throws a ConfigError whose message is
 * one line naming the variable.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = schema.safeParse(env)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!
    const name = String(issue.path[0] ?? 'environment')
    throw new ConfigError(`Invalid configuration: ${name} ${issue.message}`)
  }
  const e = parsed.data
  const dataDir = resolve(e.DATA_DIR)
  const production = e.NODE_ENV === 'production'
  const identityKind = e.IDENTITY_PROVIDER ?? (production ? 'redirect' : 'dev')
  if (identityKind === 'dev' && production) {
    throw new ConfigError(
      'Invalid configuration: IDENTITY_PROVIDER=dev is a development sign-in and is refused when NODE_ENV=production',
    )
  }
  if (identityKind === 'redirect' && (!e.IDP_URL || !e.IDP_SECRET)) {
    throw new ConfigError(
      `Invalid configuration: ${e.IDP_URL ? 'IDP_SECRET' : 'IDP_URL'} is required when IDENTITY_PROVIDER=redirect`,
    )
  }
  if (e.WEBHOOK_LEASE_SECONDS * 1000 <= e.WEBHOOK_TIMEOUT_MS) {
    throw new ConfigError(
      'Invalid configuration: WEBHOOK_LEASE_SECONDS must be longer than WEBHOOK_TIMEOUT_MS',
    )
  }
  if (e.CORE_BANKING_URL !== undefined && e.CORE_BANKING_SECRET === undefined) {
    throw new ConfigError(
      'Invalid configuration: CORE_BANKING_SECRET is required when CORE_BANKING_URL is set',
    )
  }
  if (e.CORE_BANKING_LEASE_SECONDS * 1000 <= e.CORE_BANKING_TIMEOUT_MS) {
    throw new ConfigError(
      'Invalid configuration: CORE_BANKING_LEASE_SECONDS must be longer than CORE_BANKING_TIMEOUT_MS',
    )
  }
  let logoUrl: string | undefined
  if (e.BRAND_LOGO_URL) {
    const logo = parseLogoUrl(e.BRAND_LOGO_URL, { allowHttp: !production })
    if (!logo.ok) throw new ConfigError(`Invalid configuration: BRAND_LOGO_URL ${logo.reason}`)
    logoUrl = logo.value
  }
  const wanted = SECRET_NAMES.filter((n) => n !== 'DEV_SIGN_IN_PASSWORD' || identityKind === 'dev')
  const { secrets, generated } = resolveSecrets(e, wanted, dataDir, production)
  return {
    env: e.NODE_ENV,
    logLevel: e.LOG_LEVEL,
    dataDir,
    databaseUrl: e.DATABASE_URL,
    databaseSchema: e.DATABASE_SCHEMA,
    databasePoolSize: e.DATABASE_POOL_SIZE,
    databaseSharedConnections: e.DATABASE_SHARED_CONNECTIONS,
    host: e.HOST,
    ports: {
      openPayments: e.OPEN_PAYMENTS_PORT,
      auth: e.AUTH_PORT,
      admin: e.ADMIN_PORT,
      ilp: e.ILP_PORT,
    },
    // As origins, like the configured ones (`http://localhost:80` is `http://localhost`).
    openPaymentsUrl:
      e.OPEN_PAYMENTS_URL ?? new URL(`http://localhost:${e.OPEN_PAYMENTS_PORT}`).origin,
    authServerUrl: e.AUTH_SERVER_URL ?? new URL(`http://localhost:${e.AUTH_PORT}`).origin,
    roles: e.ROLES,
    walletAddressCacheSeconds: e.WALLET_ADDRESS_CACHE_SECONDS,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    trustProxy: e.TRUST_PROXY,
    outbound: outboundConfig(e, production),
    rateLimits: rateLimitConfig(e),
    signatureMaxAgeSeconds: e.SIGNATURE_MAX_AGE_SECONDS,
    openPayments: {
      ilpAddress: e.ILP_ADDRESS,
      streamSecret: Buffer.from(secrets.STREAM_SECRET!, 'base64'),
      incomingPaymentExpiryDefaultSeconds: Math.min(
        e.INCOMING_PAYMENT_EXPIRY_DEFAULT_SECONDS,
        e.INCOMING_PAYMENT_EXPIRY_MAX_SECONDS,
      ),
      incomingPaymentExpiryMaxSeconds: e.INCOMING_PAYMENT_EXPIRY_MAX_SECONDS,
      quoteLifespanSeconds: e.QUOTE_LIFESPAN_SECONDS,
      rates: e.RATES_URL
        ? {
            kind: 'http',
            url: e.RATES_URL,
            timeoutMs: e.RATES_TIMEOUT_MS,
            cacheTtlMs: e.RATES_CACHE_SECONDS * 1000,
          }
        : { kind: 'static', table: e.RATES ? parseStaticTable(e.RATES)! : {} },
      ilpSlippage: e.ILP_SLIPPAGE,
      paymentSendLeaseSeconds: e.PAYMENT_SEND_LEASE_SECONDS,
      ilpPacketExpirySeconds: e.ILP_PACKET_EXPIRY_SECONDS,
      idempotencyKeyTtlSeconds: e.IDEMPOTENCY_KEY_TTL_SECONDS,
      serverIdentity: {
        path: e.SERVER_WALLET_ADDRESS_PATH,
        name: e.SERVER_NAME,
        seed: Buffer.from(secrets.SERVER_PRIVATE_KEY!, 'base64'),
      },
    },
    auth: {
      accessTokenExpirySeconds: e.ACCESS_TOKEN_EXPIRY_SECONDS,
      interactionExpirySeconds: e.INTERACTION_EXPIRY_SECONDS,
      waitSeconds: e.GRANT_WAIT_SECONDS,
      interaction: {
        incomingPayment: e.INCOMING_PAYMENT_INTERACTION,
        quote: e.QUOTE_INTERACTION,
        listAll: e.LIST_ALL_ACCESS_INTERACTION,
      },
      finishHashEncoding: e.INTERACT_FINISH_HASH_ENCODING,
      secret: secrets.AUTH_SECRET!,
      identity:
        identityKind === 'dev'
          ? { kind: 'dev', password: secrets.DEV_SIGN_IN_PASSWORD! }
          : { kind: 'redirect', url: e.IDP_URL!, secret: e.IDP_SECRET! },
    },
    webhooks: {
      timeoutMs: e.WEBHOOK_TIMEOUT_MS,
      retryBaseMs: e.WEBHOOK_RETRY_BASE_MS,
      retryPeriodSeconds: e.WEBHOOK_RETRY_PERIOD_SECONDS,
      leaseSeconds: e.WEBHOOK_LEASE_SECONDS,
      concurrency: e.WEBHOOK_CONCURRENCY,
      pollMs: e.WEBHOOK_POLL_MS,
      retentionDays: e.WEBHOOK_RETENTION_DAYS,
    },
    coreBanking: {
      global: e.CORE_BANKING_URL
        ? { url: e.CORE_BANKING_URL, secret: e.CORE_BANKING_SECRET! }
        : undefined,
      timeoutMs: e.CORE_BANKING_TIMEOUT_MS,
      retryBaseMs: e.CORE_BANKING_RETRY_BASE_MS,
      leaseSeconds: e.CORE_BANKING_LEASE_SECONDS,
      pollMs: e.CORE_BANKING_POLL_MS,
    },
    brand: {
      name: e.BRAND_NAME ?? e.SERVER_NAME,
      logoUrl,
      primaryColor: e.BRAND_PRIMARY_COLOR,
      accentColor: e.BRAND_ACCENT_COLOR,
    },
    console: {
      enabled: e.CONSOLE_ENABLED,
      sessionSeconds: e.CONSOLE_SESSION_SECONDS,
      idleSeconds: e.CONSOLE_IDLE_SECONDS,
    },
    adminApiKey: secrets.ADMIN_API_KEY!,
    generatedSecrets: generated,
  }
}

function outboundConfig(e: z.infer<typeof schema>, production: boolean): OutboundConfig {
  const allowPrivate = (e.OUTBOUND_ALLOW_PRIVATE ?? (production ? 'false' : 'true')) === 'true'
  const allowedNetworks: Network[] = e.OUTBOUND_ALLOWED_NETWORKS
  return {
    policy: { httpsOnly: production, allowPrivate, allowedNetworks },
    timeoutMs: e.OUTBOUND_TIMEOUT_MS,
    newUrlsPerMinute: e.OUTBOUND_NEW_URLS_PER_MINUTE,
  }
}

function rateLimitConfig(e: z.infer<typeof schema>): RateLimitConfig {
  const on = e.RATE_LIMIT_ENABLED
  return {
    ipPerMinute: on ? e.RATE_LIMIT_IP_PER_MINUTE : 0,
    clientPerMinute: on ? e.RATE_LIMIT_CLIENT_PER_MINUTE : 0,
    pagesPerMinute: on ? e.RATE_LIMIT_PAGES_PER_MINUTE : 0,
    credentialFailures: on ? e.RATE_LIMIT_CREDENTIAL_FAILURES : 0,
    ilpPacketsPerSecond: on ? e.RATE_LIMIT_ILP_PACKETS_PER_SECOND : 0,
  }
}

function resolveSecrets(
  env: Partial<Record<SecretName, string>>,
  wanted: SecretName[],
  dataDir: string,
  production: boolean,
): { secrets: Partial<Record<SecretName, string>>; generated: SecretName[] } {
  const missing = wanted.filter((n) => !env[n])
  if (missing.length > 0 && production) {
    throw new ConfigError(
      `Invalid configuration: ${missing[0]} is required when NODE_ENV=production`,
    )
  }
  const stored = missing.length > 0 ? storedSecrets(join(dataDir, 'secrets.json'), missing) : {}
  const generated = [...missing]
  const secrets = Object.fromEntries(SECRET_NAMES.map((n) => [n, env[n] ?? stored[n]!])) as Record<
    SecretName,
    string
  >
  return { secrets, generated }
}

type StoredSecrets = Partial<Record<SecretName, string>>

/**
 * The development secrets in `file`, generating those `needed` that it lacks. Several processes
 * may start on one data directory at once: the file is only ever replaced whole (written aside,
 * then linked or renamed into place), and a process that loses the race to create it uses the
 * winner's values, so all of them agree.
 */
function storedSecrets(file: string, needed: SecretName[]): StoredSecrets {
  mkdirSync(dirname(file), { recursive: true })
  for (;;) {
    const existed = existsSync(file)
    const stored: StoredSecrets = existed ? JSON.parse(readFileSync(file, 'utf8')) : {}
    const lacking = needed.filter((n) => !stored[n])
    if (lacking.length === 0) return stored
    for (const name of lacking) stored[name] = randomBytes(32).toString('base64url')
    const aside = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`
    writeFileSync(aside, `${JSON.stringify(stored, null, 2)}\n`, { mode: 0o600 })
    try {
      if (existed) renameSync(aside, file)
      else linkSync(aside, file) // fails if another process created it meanwhile
      return stored
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    } finally {
      rmSync(aside, { force: true })
    }
  }
}
