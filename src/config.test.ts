import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { ConfigError, loadConfig } from './config.ts'

const dataDir = () => mkdtempSync(join(tmpdir(), 'op-config-'))

test('defaults need no environment and generate development secrets once', () => {
  const dir = dataDir()
  const first = loadConfig({ DATA_DIR: dir })
  assert.equal(first.databaseUrl, undefined)
  assert.equal(first.openPaymentsUrl, 'http://localhost:3000')
  assert.equal(first.authServerUrl, 'http://localhost:3001')
  assert.deepEqual(first.generatedSecrets, [
    'ADMIN_API_KEY',
    'AUTH_SECRET',
    'STREAM_SECRET',
    'SERVER_PRIVATE_KEY',
    'DEV_SIGN_IN_PASSWORD',
  ])
  assert.equal(first.openPayments.streamSecret.length, 32)
  assert.equal(first.auth.identity.kind, 'dev')
  assert.ok(first.adminApiKey.length >= 32)
  const file = join(dir, 'secrets.json')
  assert.equal(statSync(file).mode & 0o777, 0o600)
  assert.equal(JSON.parse(readFileSync(file, 'utf8')).ADMIN_API_KEY, first.adminApiKey)
  assert.equal(loadConfig({ DATA_DIR: dir }).adminApiKey, first.adminApiKey)
})

test('a given secret is used and nothing is generated', () => {
  const key = 'k'.repeat(40)
  const config = loadConfig({ DATA_DIR: dataDir(), ADMIN_API_KEY: key })
  assert.equal(config.adminApiKey, key)
  assert.ok(!config.generatedSecrets.includes('ADMIN_API_KEY'))
})

test('production refuses to start without its secrets or with the development sign-in', () => {
  const idp = { IDP_URL: 'https://idp.example/consent', IDP_SECRET: 's'.repeat(32) }
  const prod = { NODE_ENV: 'production', DATA_DIR: dataDir(), DATABASE_URL: 'postgres://db/x' }
  const fails = (env: Record<string, string>, message: string) =>
    assert.throws(
      () => loadConfig({ ...prod, ...env }),
      (err: Error) => err instanceof ConfigError && err.message === message,
    )
  fails(idp, 'Invalid configuration: ADMIN_API_KEY is required when NODE_ENV=production')
  fails(
    { ...idp, ADMIN_API_KEY: 'k'.repeat(32) },
    'Invalid configuration: AUTH_SECRET is required when NODE_ENV=production',
  )
  fails({}, 'Invalid configuration: IDP_URL is required when IDENTITY_PROVIDER=redirect')
  fails(
    { IDENTITY_PROVIDER: 'dev' },
    'Invalid configuration: IDENTITY_PROVIDER=dev is a development sign-in and is refused when NODE_ENV=production',
  )
  fails(
    { ...idp, ADMIN_API_KEY: 'k'.repeat(32), AUTH_SECRET: 'a'.repeat(32) },
    'Invalid configuration: STREAM_SECRET is required when NODE_ENV=production',
  )
  fails(
    {
      ...idp,
      ADMIN_API_KEY: 'k'.repeat(32),
      AUTH_SECRET: 'a'.repeat(32),
      STREAM_SECRET: Buffer.alloc(32, 7).toString('base64'),
    },
    'Invalid configuration: SERVER_PRIVATE_KEY is required when NODE_ENV=production',
  )
  const ok = loadConfig({
    ...prod,
    ...idp,
    ADMIN_API_KEY: 'k'.repeat(32),
    AUTH_SECRET: 'a'.repeat(32),
    STREAM_SECRET: Buffer.alloc(32, 7).toString('base64'),
    SERVER_PRIVATE_KEY: Buffer.alloc(32, 9).toString('base64'),
  })
  assert.deepEqual(ok.generatedSecrets, [])
  assert.deepEqual(ok.auth.identity, { kind: 'redirect', url: idp.IDP_URL, secret: idp.IDP_SECRET })
})

test('GRANT_WAIT_SECONDS may be 0: clients continue at once', () => {
  assert.equal(loadConfig({ DATA_DIR: dataDir(), GRANT_WAIT_SECONDS: '0' }).auth.waitSeconds, 0)
})

test('DATABASE_SHARED_CONNECTIONS: 4 by default, 0 turns them off', () => {
  assert.equal(loadConfig({ DATA_DIR: dataDir() }).databaseSharedConnections, 4)
  assert.equal(
    loadConfig({ DATA_DIR: dataDir(), DATABASE_SHARED_CONNECTIONS: '0' }).databaseSharedConnections,
    0,
  )
})

test('a bad value stops start-up with one line naming the variable', () => {
  const bad: [Record<string, string>, string][] = [
    [{ OPEN_PAYMENTS_PORT: 'abc' }, 'OPEN_PAYMENTS_PORT'],
    [{ AUTH_PORT: '70000' }, 'AUTH_PORT'],
    [{ OPEN_PAYMENTS_URL: 'ftp://x' }, 'OPEN_PAYMENTS_URL'],
    [{ AUTH_SERVER_URL: 'https://as.example/auth' }, 'AUTH_SERVER_URL'],
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL'],
    [{ ROLES: 'open-payments,teapot' }, 'ROLES'],
    [{ ADMIN_API_KEY: 'short' }, 'ADMIN_API_KEY'],
    [{ NODE_ENV: 'staging' }, 'NODE_ENV'],
    [{ DATABASE_SCHEMA: 'x; drop' }, 'DATABASE_SCHEMA'],
    [{ QUOTE_INTERACTION: 'yes' }, 'QUOTE_INTERACTION'],
    [{ GRANT_WAIT_SECONDS: '-1' }, 'GRANT_WAIT_SECONDS'],
    [{ DATABASE_SHARED_CONNECTIONS: '-1' }, 'DATABASE_SHARED_CONNECTIONS'],
    [{ INTERACT_FINISH_HASH_ENCODING: 'hex' }, 'INTERACT_FINISH_HASH_ENCODING'],
    [{ IDP_URL: 'not a url' }, 'IDP_URL'],
    [{ ILP_ADDRESS: 'nope' }, 'ILP_ADDRESS'],
    [{ STREAM_SECRET: 'dG9vIHNob3J0' }, 'STREAM_SECRET'],
    [{ CORE_BANKING_URL: 'ftp://core.example' }, 'CORE_BANKING_URL'],
    [{ CORE_BANKING_URL: 'https://core.example' }, 'CORE_BANKING_SECRET'],
    [{ CORE_BANKING_SECRET: 'whsec_dG9vIHNob3J0' }, 'CORE_BANKING_SECRET'],
    [{ CORE_BANKING_TIMEOUT_MS: '60000' }, 'CORE_BANKING_LEASE_SECONDS'],
  ]
  for (const [env, name] of bad) {
    assert.throws(
      () => loadConfig({ DATA_DIR: dataDir(), ...env }),
      (err: Error) =>
        err instanceof ConfigError &&
        err.message.startsWith(`Invalid configuration: ${name} `) &&
        !err.message.includes('\n'),
      name,
    )
  }
})

test('public URLs are normalised to their origin', () => {
  const config = loadConfig({
    DATA_DIR: dataDir(),
    OPEN_PAYMENTS_URL: 'https://Wallet.Example/',
    ROLES: 'open-payments, admin',
  })
  assert.equal(config.openPaymentsUrl, 'https://wallet.example')
  assert.deepEqual(config.roles, ['open-payments', 'admin'])
  // The defaults built from the ports too.
  const onDefaultPort = loadConfig({ DATA_DIR: dataDir(), OPEN_PAYMENTS_PORT: '80' })
  assert.equal(onDefaultPort.openPaymentsUrl, 'http://localhost')
})

test('outbound policy and rate limits: production denies private addresses; limits switch off', () => {
  const base = { DATA_DIR: dataDir(), ADMIN_API_KEY: 'k'.repeat(32) }
  const dev = loadConfig(base)
  assert.deepEqual(dev.outbound.policy, {
    httpsOnly: false,
    allowPrivate: true,
    allowedNetworks: [],
  })
  assert.equal(dev.rateLimits.ipPerMinute, 3000)
  assert.equal(dev.trustProxy, false)

  const prod = loadConfig({
    ...base,
    NODE_ENV: 'production',
    DATABASE_URL: 'postgres://db/x',
    IDP_URL: 'https://idp.example/consent',
    IDP_SECRET: 's'.repeat(32),
    AUTH_SECRET: 'a'.repeat(32),
    STREAM_SECRET: Buffer.alloc(32).toString('base64'),
    SERVER_PRIVATE_KEY: Buffer.alloc(32).toString('base64'),
    OUTBOUND_ALLOWED_NETWORKS: '10.20.0.0/16, fd00:1::/32',
    TRUST_PROXY: '10.0.0.0/8,192.168.1.1',
  })
  assert.equal(prod.outbound.policy.httpsOnly, true)
  assert.equal(prod.outbound.policy.allowPrivate, false)
  assert.deepEqual(
    prod.outbound.policy.allowedNetworks.map((n) => n.prefix),
    [16, 32],
  )
  assert.deepEqual(prod.trustProxy, ['10.0.0.0/8', '192.168.1.1'])

  const off = loadConfig({ ...base, RATE_LIMIT_ENABLED: 'false', RATE_LIMIT_IP_PER_MINUTE: '5' })
  assert.deepEqual(Object.values(off.rateLimits), [0, 0, 0, 0, 0])
  assert.equal(
    loadConfig({ ...base, RATE_LIMIT_PAGES_PER_MINUTE: '0' }).rateLimits.pagesPerMinute,
    0,
  )

  const fails = (env: Record<string, string>, message: string) =>
    assert.throws(
      () => loadConfig({ ...base, ...env }),
      (err: Error) => err instanceof ConfigError && err.message === message,
    )
  fails(
    { OUTBOUND_ALLOWED_NETWORKS: '10.0.0.0/33' },
    'Invalid configuration: OUTBOUND_ALLOWED_NETWORKS must be a comma-separated list of networks such as 10.20.0.0/16,fd00::/8',
  )
  fails(
    { RATE_LIMIT_IP_PER_MINUTE: '-1' },
    'Invalid configuration: RATE_LIMIT_IP_PER_MINUTE must not be negative',
  )
  fails(
    { TRUST_PROXY: 'proxy.example' },
    'Invalid configuration: TRUST_PROXY must be true, false, or a comma-separated list of proxy addresses/networks',
  )
  fails(
    { OUTBOUND_ALLOW_PRIVATE: 'yes' },
    'Invalid configuration: OUTBOUND_ALLOW_PRIVATE must be true or false',
  )
})
