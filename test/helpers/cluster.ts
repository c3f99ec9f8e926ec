import { randomBytes } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openDatabase } from '../../src/db/database.ts'
import { checkBooks } from '../../src/ledger/invariants.ts'
import { DATABASE_URL } from './db.ts'
import { type ServerProcess, spawnServer, waitReady } from './process.ts'
import { DEV_PASSWORD, freePort, request, type TestServer } from './server.ts'

/** One server process of several that share a database schema and public URLs. */
export interface ClusterNode {
  name: string
  env: Record<string, string>
  process: ServerProcess
  adminUrl: string
  /** Its own Open Payments and auth listeners, behind the shared public URLs. */
  openPaymentsPort: number
  authPort: number
}

/**
 * What every process of one deployment shares: the database schema, the public URLs (a load
 * balancer's, or one process's), and the secrets.
 */
export function clusterEnv(opts: {
  schema: string
  openPaymentsUrl: string
  authUrl: string
}): Record<string, string> {
  return {
    DATABASE_URL,
    DATABASE_SCHEMA: opts.schema,
    DATABASE_POOL_SIZE: '5',
    OPEN_PAYMENTS_URL: opts.openPaymentsUrl,
    AUTH_SERVER_URL: opts.authUrl,
    ADMIN_API_KEY: randomBytes(32).toString('base64url'),
    AUTH_SECRET: randomBytes(32).toString('base64url'),
    STREAM_SECRET: randomBytes(32).toString('base64'),
    SERVER_PRIVATE_KEY: randomBytes(32).toString('base64'),
    DEV_SIGN_IN_PASSWORD: DEV_PASSWORD,
  }
}

export async function nodePorts(): Promise<{
  op: number
  auth: number
  admin: number
  ilp: number
}> {
  return {
    op: await freePort(),
    auth: await freePort(),
    admin: await freePort(),
    ilp: await freePort(),
  }
}

/** Starts one process of the deployment on the given ports (waits until it is ready). */
export async function startNode(
  name: string,
  shared: Record<string, string>,
  ports: Awaited<ReturnType<typeof nodePorts>>,
  extra: Record<string, string> = {},
  spawnOpts: Parameters<typeof spawnServer>[1] = {},
): Promise<ClusterNode> {
  const env = {
    ...shared,
    DATA_DIR: mkdtempSync(join(tmpdir(), `op-${name}-`)),
    OPEN_PAYMENTS_PORT: String(ports.op),
    AUTH_PORT: String(ports.auth),
    ADMIN_PORT: String(ports.admin),
    ILP_PORT: String(ports.ilp),
    ...extra,
  }
  const process = spawnServer(env, spawnOpts)
  await waitReady(process)
  return {
    name,
    env,
    process,
    adminUrl: `http://127.0.0.1:${ports.admin}`,
    openPaymentsPort: ports.op,
    authPort: ports.auth,
  }
}

/** The deployment as the test helpers see a server: its public URLs and one process's admin API. */
export function asTestServer(node: ClusterNode): TestServer {
  const key = node.env.ADMIN_API_KEY!
  return {
    openPaymentsUrl: node.env.OPEN_PAYMENTS_URL!,
    authUrl: node.env.AUTH_SERVER_URL!,
    adminUrl: node.adminUrl,
    adminKey: key,
    admin: (method: string, path: string, body?: unknown) =>
      request(`${node.adminUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${key}`,
          ...(body !== undefined && { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      }),
  } as TestServer
}

/** `checkBooks` on the deployment's schema: debits equal credits, cached totals match transfers. */
export async function booksBalanced(schema: string): Promise<boolean> {
  const database = await openDatabase({
    databaseUrl: DATABASE_URL,
    schema,
    poolSize: 1,
    dataDir: '/nonexistent',
  })
  try {
    return (await checkBooks(database.db)).balanced
  } finally {
    await database.close()
  }
}
